//! Signals from operators: quiet and stop, sent from the dashboard, the CLI or Sidekiq's Web
//! UI to `<identity>-signals` (`signal.lua`), and read by this process's heartbeat. The
//! sender's notice on the wake channel makes the heartbeat run at once (`wake.rs`), so a
//! signal acts within a round trip; without the notice it acts on the next regular beat.

use queue_core::scripts::Signal;

use crate::shared::Shared;

/// Acts on `signals`, oldest first: quiet stops fetching (as the first step of a shutdown
/// does, but the process stays up and keeps its lease until stopped); stop starts the
/// shutdown, as SIGTERM does.
pub(crate) fn obey(shared: &Shared, signals: Vec<Signal>) {
    for signal in signals {
        match signal {
            Signal::Quiet => {
                if !shared.quiet.is_cancelled() {
                    tracing::info!("quiet signal received: no new jobs; running jobs finish");
                    shared.quiet.cancel();
                }
            }
            Signal::Stop => {
                tracing::info!("stop signal received: shutting down");
                shared.stop_requested.cancel();
            }
            Signal::Other(name) => {
                tracing::info!(signal = %name, "signal not supported; ignored")
            }
        }
    }
}

//! A pub/sub subscription that notices a server that stopped answering.
//!
//! A subscriber only reads, so a server that hangs (a frozen process, a host cut off by a
//! network partition) closes nothing and the subscription would wait forever: on one server
//! the calls of the rest of the process fail and recover with it, but in cluster mode the
//! subscriber's node is any node, and the app's master runs on and publishes to the others
//! while its wake-ups, cancels and long-poll changes never arrive. So after
//! [`CHECK_AFTER_SILENCE`] without a message the subscription sends a `PING` (allowed while
//! subscribed, answered through the same connection) and ends when no reply comes within
//! the client timeout; its owner then subscribes again, on the next node in cluster mode.

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use redis::aio::PubSub;
use redis::{Msg, Value};

/// Silence after which a subscription checks that its server still answers: a hung node is
/// noticed within this plus the client timeout. One `PING` per idle subscriber per period
/// costs the server nothing worth counting; a busy subscriber never sends one.
pub(crate) const CHECK_AFTER_SILENCE: Duration = Duration::from_secs(2);

/// The messages of `pubsub`, ending when its connection drops or a check is not answered
/// within `timeout`. Boxed, so that it is `Unpin` as the plain message stream was (callers
/// poll it with `next()` without pinning it).
pub(crate) fn checked(pubsub: PubSub, timeout: Duration) -> BoxStream<'static, Msg> {
    let (sink, messages) = pubsub.split();
    futures_util::stream::unfold(
        (sink, messages),
        move |(mut sink, mut messages)| async move {
            loop {
                tokio::select! {
                    msg = messages.next() => return msg.map(|msg| (msg, (sink, messages))),
                    () = tokio::time::sleep(CHECK_AFTER_SILENCE) => {
                        match tokio::time::timeout(timeout, sink.ping::<Value>()).await {
                            Ok(Ok(_)) => {}
                            Ok(Err(e)) => {
                                tracing::warn!(error = %e, "pub/sub connection failed its check; subscribing again");
                                return None;
                            }
                            Err(_) => {
                                tracing::warn!(timeout_ms = timeout.as_millis() as u64,
                                    "pub/sub server did not answer a ping; subscribing again");
                                return None;
                            }
                        }
                    }
                }
            }
        },
    )
    .boxed()
}

//! `dynoqueue`: the operators' command line, in the style of asynq's CLI.
//!
//! Run with `REDIS_URL` (or `REDIS_TLS_URL`) and `QUEUE_PREFIX` set as the dynos have them,
//! for example `heroku run dynoqueue stats`:
//!
//! ```text
//! dynoqueue stats                      totals, sets, processes, busy, latency
//! dynoqueue queues                     size, latency, paused, per queue
//! dynoqueue processes                  worker processes and what they run
//! dynoqueue ls retry|scheduled|dead    one page of a set (--page, --size)
//! dynoqueue ls queue NAME              one page of a queue
//! dynoqueue show ID                    a job's status record and where it waits
//! dynoqueue retry ID | --all SET       run a job from a set now
//! dynoqueue delete ID | --all SET      delete a job from a set
//! dynoqueue kill ID                    move a job to the dead set
//! dynoqueue pause|resume QUEUE         stop / restart taking from a queue
//! dynoqueue quiet|stop IDENTITY|--all  quiet or stop worker processes
//! dynoqueue cancel ID                  cancel a queued, scheduled or running job
//! ```
//!
//! Tables by default, JSON with `--json`. Exit status 0 on success, 1 when the job, queue or
//! process was not found or the action did nothing, 2 on bad usage, 3 when Redis failed.

mod commands;
mod table;

use clap::Parser;
use std::process::ExitCode;

use commands::Command;

/// Operate a dynoqueue deployment from the command line.
#[derive(Debug, Parser)]
#[command(
    name = "dynoqueue",
    version,
    about = "Operate a dynoqueue deployment: queues, sets, jobs and worker processes (reads REDIS_URL and QUEUE_PREFIX)"
)]
struct Cli {
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let client = match queue_core::Client::from_env().await {
        Ok(client) => client,
        Err(e) => {
            eprintln!("dynoqueue: cannot connect to Redis: {e}");
            return ExitCode::from(3);
        }
    };
    match commands::run(&client, cli.command, cli.json).await {
        Ok(commands::Done::Yes) => ExitCode::SUCCESS,
        Ok(commands::Done::Nothing(why)) => {
            eprintln!("dynoqueue: {why}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("dynoqueue: {e}");
            ExitCode::from(if bad_input(&e) { 2 } else { 3 })
        }
    }
}

/// Whether `e` is about what the user typed rather than about Redis.
fn bad_input(e: &queue_core::Error) -> bool {
    matches!(
        e,
        queue_core::Error::InvalidJobId
            | queue_core::Error::InvalidQueueName(_)
            | queue_core::Error::InvalidIdentity
    )
}

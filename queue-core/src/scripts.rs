//! Every Lua script, one `.lua` file per state transition, loaded once per process.
//!
//! `Script::invoke_async` sends `EVALSHA` and falls back to `EVAL` after `NOSCRIPT` (for
//! example after Redis restarted), so callers never see a missing script.

use redis::Script;
use std::sync::LazyLock;

macro_rules! script {
    ($name:ident, $file:literal, $doc:literal) => {
        #[doc = $doc]
        pub static $name: LazyLock<Script> =
            LazyLock::new(|| Script::new(include_str!(concat!("scripts/", $file))));
    };
}

script!(
    ENQUEUE,
    "enqueue.lua",
    "Push one job onto its queue, idempotently."
);
script!(
    ENQUEUE_BULK,
    "enqueue_bulk.lua",
    "Push many jobs of one queue."
);
script!(
    SCHEDULE,
    "schedule.lua",
    "Put one job into the schedule set, idempotently."
);
script!(CANCEL, "cancel.lua", "Cancel a job that has not started.");
script!(
    ACK_FETCH,
    "ack_fetch.lua",
    "Finish succeeded jobs, then move ready jobs into a worker's processing list."
);
script!(
    START,
    "start.lua",
    "Mark fetched jobs running; report cancelled ones."
);
script!(
    FAIL,
    "fail.lua",
    "Move a failed job to the retry or dead set."
);
script!(
    REQUEUE,
    "requeue.lua",
    "Hand a job back to the front of its queue."
);
script!(
    PROMOTE,
    "promote.lua",
    "Move due scheduled or retry jobs into their queues."
);
script!(
    HEARTBEAT,
    "heartbeat.lua",
    "Register or renew a worker process's lease."
);
script!(
    REAP,
    "reap.lua",
    "Claim the jobs of worker processes whose lease expired."
);
script!(
    UNREGISTER,
    "unregister.lua",
    "Forget a worker process at clean shutdown."
);
script!(PROGRESS, "progress.lua", "Record a running job's progress.");
script!(
    LIMIT_ACQUIRE,
    "limit_acquire.lua",
    "Take a global concurrency slot of a job class."
);
script!(
    DEFER,
    "defer.lua",
    "Put a job over its class's limit back into the schedule set."
);

/// The scripts the enqueue client uses, for preloading at connect.
pub fn client_scripts() -> [&'static Script; 4] {
    [&ENQUEUE, &ENQUEUE_BULK, &SCHEDULE, &CANCEL]
}

/// The scripts a worker process uses, for preloading at start.
pub fn worker_scripts() -> [&'static Script; 11] {
    [
        &ACK_FETCH,
        &START,
        &FAIL,
        &REQUEUE,
        &PROMOTE,
        &HEARTBEAT,
        &REAP,
        &UNREGISTER,
        &PROGRESS,
        &LIMIT_ACQUIRE,
        &DEFER,
    ]
}

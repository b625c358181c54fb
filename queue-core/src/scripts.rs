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

/// Every script of this crate, for preloading at connect.
pub fn all() -> [&'static Script; 4] {
    [&ENQUEUE, &ENQUEUE_BULK, &SCHEDULE, &CANCEL]
}

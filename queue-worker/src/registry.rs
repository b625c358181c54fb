//! The job types a worker knows, and how to turn a stored job into a running future.

use futures_util::future::BoxFuture;
use queue_core::{Job, JobPayload};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::context::JobContext;
use crate::failure::Failure;

/// What one attempt produced: a result to store, or a failure.
pub type Attempt = Result<Value, Failure>;

pub(crate) type Perform = dyn Fn(&[Value], JobContext) -> Result<BoxFuture<'static, Attempt>, queue_core::Error>
    + Send
    + Sync;

/// One registered job type.
#[derive(Clone)]
pub(crate) struct Registration {
    pub(crate) track_status: bool,
    pub(crate) timeout: Option<Duration>,
    pub(crate) concurrency_limit: Option<u32>,
    /// How long a succeeded job's record is kept, when its type says.
    pub(crate) status_retention: Option<Duration>,
    pub(crate) perform: Arc<Perform>,
}

/// Job types by Sidekiq class name.
#[derive(Clone, Default)]
pub struct Registry {
    jobs: HashMap<String, Registration>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.jobs.keys()).finish()
    }
}

impl Registry {
    /// Registers handler `f` for job type `J`; the handler's return value is stored as the result.
    pub fn register<J, F, Fut, R>(&mut self, f: F)
    where
        J: Job,
        F: Fn(J, JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, Failure>> + Send + 'static,
        R: Serialize,
    {
        let f = Arc::new(f);
        let perform = move |args: &[Value], ctx: JobContext| {
            let job = J::from_args(J::NAME, args)?;
            let f = Arc::clone(&f);
            let fut: BoxFuture<'static, Attempt> = Box::pin(async move {
                let out = f(job, ctx).await?;
                serde_json::to_value(out)
                    .map_err(|e| Failure::dead(format!("result failed to serialize: {e}")))
            });
            Ok(fut)
        };
        self.jobs.insert(
            J::NAME.to_owned(),
            Registration {
                track_status: J::TRACK_STATUS,
                timeout: J::timeout(),
                concurrency_limit: J::CONCURRENCY_LIMIT,
                status_retention: J::STATUS_RETENTION,
                perform: Arc::new(perform),
            },
        );
    }

    /// Replaces the perform step of `class` with `wrap(old)`; false when `class` is not
    /// registered.
    pub(crate) fn wrap(
        &mut self,
        class: &str,
        wrap: impl FnOnce(Arc<Perform>) -> Arc<Perform>,
    ) -> bool {
        match self.jobs.get_mut(class) {
            Some(reg) => {
                reg.perform = wrap(Arc::clone(&reg.perform));
                true
            }
            None => false,
        }
    }

    pub(crate) fn get(&self, class: &str) -> Option<&Registration> {
        self.jobs.get(class)
    }

    /// Whether any job type is registered.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Whether a status record is kept for jobs of `class` (unknown classes: yes).
    pub(crate) fn tracks(&self, payload: &JobPayload) -> bool {
        self.get(&payload.class).is_none_or(|r| r.track_status)
    }
}

//! [`Enqueue`]: what app code takes when it only pushes jobs, so that its tests can pass
//! [`FakeClient`](crate::testing::FakeClient) where production passes a [`Client`].
//!
//! A trait rather than a fake inside `Client`: the real client keeps its inherent methods,
//! so `client.enqueue(..)` compiles to the same call as before (no branch, no indirection on
//! the benchmarked path), and code that wants to be testable asks for `impl Enqueue`.

use std::future::Future;
use std::time::{Duration, SystemTime};

use crate::client::{Client, NewJob};
use crate::error::Result;
use crate::job::Job;
use crate::job_id::JobId;
use crate::options::EnqueueOptions;

/// Something jobs can be pushed to: a [`Client`], or in tests a
/// [`FakeClient`](crate::testing::FakeClient).
///
/// ```
/// use queue_core::{Enqueue, Job, JobId};
/// use queue_core::testing::FakeClient;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Welcome { user_id: u64 }
/// impl Job for Welcome { const NAME: &'static str = "Welcome"; }
///
/// /// App code: takes a `Client` in production, the fake in tests.
/// async fn sign_up(queue: &impl Enqueue, user_id: u64) -> queue_core::Result<JobId> {
///     queue.enqueue(&Welcome { user_id }).await
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let fake = FakeClient::new();
/// sign_up(&fake, 7).await.unwrap();
/// assert!(fake.enqueued(&Welcome { user_id: 7 }));
/// # });
/// ```
pub trait Enqueue: Send + Sync {
    /// Pushes one untyped job; see [`Client::push`].
    fn push(&self, job: NewJob) -> impl Future<Output = Result<JobId>> + Send;

    /// Enqueues `job` with its type's defaults; returns its id.
    fn enqueue<J: Job>(&self, job: &J) -> impl Future<Output = Result<JobId>> + Send {
        self.enqueue_with(job, EnqueueOptions::default())
    }

    /// Enqueues `job` with `options` (queue, delay, retry, id, owner, extra fields).
    fn enqueue_with<J: Job>(
        &self,
        job: &J,
        options: EnqueueOptions,
    ) -> impl Future<Output = Result<JobId>> + Send {
        let new = NewJob::typed(job, options);
        async move { self.push(new?).await }
    }

    /// Enqueues `job` to run after `delay`.
    fn enqueue_in<J: Job>(
        &self,
        job: &J,
        delay: Duration,
    ) -> impl Future<Output = Result<JobId>> + Send {
        self.enqueue_with(job, EnqueueOptions::new().delay(delay))
    }

    /// Enqueues `job` to run at `at`.
    fn enqueue_at<J: Job>(
        &self,
        job: &J,
        at: SystemTime,
    ) -> impl Future<Output = Result<JobId>> + Send {
        self.enqueue_with(job, EnqueueOptions::new().at(at))
    }
}

impl Enqueue for Client {
    fn push(&self, job: NewJob) -> impl Future<Output = Result<JobId>> + Send {
        Client::push(self, job)
    }
}

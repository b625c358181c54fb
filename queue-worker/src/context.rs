//! What a running job can see and do: its id, attempt, progress and cancellation.

use queue_core::{Client, JobId, JobPayload, Progress};
use std::sync::{Arc, Mutex, PoisonError};
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use crate::error::Result;
use crate::slot_leases::SlotLeases;

/// Longest progress message stored (it is shown to users, and kept in Redis).
const MAX_PROGRESS_MESSAGE_BYTES: usize = 1024;

/// Handed to every job attempt.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub(crate) id: JobId,
    pub(crate) attempt: u32,
    pub(crate) queue: String,
    pub(crate) tracked: bool,
    pub(crate) reports: Reports,
    pub(crate) cancel: CancellationToken,
    /// Where a concurrent limiter's slot is kept renewed while the job runs.
    pub(crate) slot_leases: SlotLeases,
}

/// Where progress goes: the job's status record, or a list a test reads.
#[derive(Debug, Clone)]
pub(crate) enum Reports {
    Redis(Client),
    Recorded(Arc<Mutex<Vec<Progress>>>),
}

impl JobContext {
    /// The Redis client of a context a worker made; `None` for [`JobContext::for_test`].
    pub(crate) fn client(&self) -> Option<&Client> {
        match &self.reports {
            Reports::Redis(client) => Some(client),
            Reports::Recorded(_) => None,
        }
    }

    /// A context for calling a handler directly in a test, without Redis: a new job id,
    /// attempt 1, queue `default`. [`JobContext::progress`] records into a list that
    /// [`JobContext::recorded_progress`] returns (clones share it).
    ///
    /// ```
    /// use queue_worker::{Failure, JobContext};
    ///
    /// async fn count_rows(rows: u32, ctx: JobContext) -> Result<u32, Failure> {
    ///     ctx.progress(50, "half way").await?;
    ///     Ok(rows * 2)
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let ctx = JobContext::for_test();
    /// assert_eq!(count_rows(21, ctx.clone()).await.unwrap(), 42);
    /// let progress = ctx.recorded_progress();
    /// assert_eq!(progress[0].percent, 50);
    /// assert_eq!(progress[0].message.as_deref(), Some("half way"));
    /// # });
    /// ```
    pub fn for_test() -> Self {
        Self {
            id: JobId::new(),
            attempt: 1,
            queue: "default".to_owned(),
            tracked: true,
            reports: Reports::Recorded(Arc::default()),
            cancel: CancellationToken::new(),
            // Never renewed: a test context takes no slots (its limiters admit at once).
            slot_leases: SlotLeases::new(std::time::Duration::ZERO),
        }
    }

    /// A test context for the stored job `job` (its id, attempt and queue).
    pub fn for_test_job(job: &JobPayload) -> Self {
        Self {
            id: job.jid.clone(),
            attempt: job.attempt(),
            queue: job.queue.clone(),
            ..Self::for_test()
        }
    }

    /// Progress reported through a [`JobContext::for_test`] context, oldest first (empty
    /// for a real one, whose progress is in Redis).
    pub fn recorded_progress(&self) -> Vec<Progress> {
        match &self.reports {
            Reports::Recorded(list) => list.lock().unwrap_or_else(PoisonError::into_inner).clone(),
            Reports::Redis(_) => Vec::new(),
        }
    }

    /// Asks the job to stop, as a timeout or a shutdown would: for tests of handlers that
    /// watch [`JobContext::cancelled`].
    pub fn cancel_for_test(&self) {
        if let Reports::Recorded(_) = self.reports {
            self.cancel.cancel();
        }
    }

    /// The job's id.
    pub fn id(&self) -> &JobId {
        &self.id
    }

    /// The attempt number: 1 on the first run.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The queue the job came from.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Records progress (`percent` is clamped to 100) in the job's status record.
    ///
    /// Does nothing for job types without status tracking. Returns an error only when Redis
    /// cannot be reached; a job may ignore it and carry on.
    pub async fn progress(&self, percent: u8, message: impl Into<String>) -> Result<()> {
        if !self.tracked {
            return Ok(());
        }
        let mut message: String = message.into();
        if message.len() > MAX_PROGRESS_MESSAGE_BYTES {
            let mut end = MAX_PROGRESS_MESSAGE_BYTES;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        match &self.reports {
            Reports::Redis(client) => {
                queue_core::scripts::progress(client, self.id.as_str(), percent, &message).await?;
            }
            Reports::Recorded(list) => {
                list.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(Progress {
                        percent: percent.min(100),
                        // As in Redis, an empty message keeps the last one.
                        message: (!message.is_empty()).then_some(message),
                    })
            }
        }
        Ok(())
    }

    /// Whether the job has been asked to stop (timeout or shutdown).
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Completes when the job is asked to stop; `select!` on it in long loops.
    pub fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.cancel.cancelled()
    }
}

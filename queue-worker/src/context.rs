//! What a running job can see and do: its id, attempt, progress and cancellation.

use queue_core::{Client, JobId};
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use crate::error::Result;

/// Longest progress message stored (it is shown to users, and kept in Redis).
const MAX_PROGRESS_MESSAGE_BYTES: usize = 1024;

/// Handed to every job attempt.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub(crate) id: JobId,
    pub(crate) attempt: u32,
    pub(crate) queue: String,
    pub(crate) tracked: bool,
    pub(crate) client: Client,
    pub(crate) cancel: CancellationToken,
}

impl JobContext {
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
        queue_core::scripts::progress(&self.client, self.id.as_str(), percent, &message).await?;
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

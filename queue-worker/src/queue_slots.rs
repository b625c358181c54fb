//! The queue slots one worker process works: one, or, when queues are spread over a
//! cluster's slots (`ClientConfig::spread_queues`), one per queue.
//!
//! Each slot gets a client aimed at it and a configuration naming only its queue, so the
//! fetch, the scheduler, the reaper and the heartbeat of each run there exactly as they run
//! on one server. What spreading gives up is the order across queues: strict priority and
//! weights hold within a slot, and each queue is its own slot.

use queue_core::Client;

use crate::config::WorkerConfig;
use crate::error::Result;
use crate::queues::Queues;

/// The (client, configuration) of each slot the worker configured by `config` works.
pub(crate) fn split(client: &Client, config: &WorkerConfig) -> Result<Vec<(Client, WorkerConfig)>> {
    if !client.config().spread_queues {
        return Ok(vec![(client.clone(), config.clone())]);
    }
    config
        .queues
        .names()
        .into_iter()
        .map(|queue| {
            let mut slot_config = config.clone();
            slot_config.queues = Queues::strict(&[queue])?;
            Ok((client.for_queue(queue).into_owned(), slot_config))
        })
        .collect()
}

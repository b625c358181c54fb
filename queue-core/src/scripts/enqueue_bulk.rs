//! `enqueue_bulk.lua`: up to 1,000 jobs of one queue due now, in one call.

use redis::Cmd;

use crate::client::Client;
use crate::error::Result;
use crate::scripts::{flag, lua};

lua!(ENQUEUE_BULK, "enqueue_bulk.lua");

/// One chunk of a bulk push: jobs of one queue sharing one set of status fields.
pub(crate) struct BulkChunk<'a, I> {
    /// The queue's name.
    pub(crate) queue: &'a str,
    /// The shared status fields, or `None` when the jobs are untracked.
    pub(crate) status: Option<&'a [(&'static str, &'a str)]>,
    /// Per job: its id, its JSON, and whether the caller chose the id (checked with `EXISTS`).
    pub(crate) jobs: I,
}

impl<'a, I> BulkChunk<'a, I>
where
    I: ExactSizeIterator<Item = (&'a str, &'a [u8], bool)> + Clone,
{
    /// The chunk's `EVALSHA`, built up front so that the next chunk is encoded while earlier
    /// ones are in flight.
    pub(crate) fn command(self, client: &Client) -> Cmd {
        let keys = client.keys();
        let tracked = self.status.is_some();
        let fields = self.status.unwrap_or_default();
        let n = self.jobs.len();
        let numkeys = 2 + if tracked { n } else { 0 };
        let status_prefix = keys.status_prefix();
        let bytes: usize = self
            .jobs
            .clone()
            .map(|(jid, json, _)| json.len() + status_prefix.len() + jid.len())
            .sum();
        let mut cmd = ENQUEUE_BULK.evalsha(numkeys, numkeys + 6 + 2 * fields.len() + n, bytes);
        cmd.arg(keys.queue(self.queue)).arg(keys.queues());
        let mut key = String::with_capacity(status_prefix.len() + 64);
        if tracked {
            for (jid, _, _) in self.jobs.clone() {
                key.clear();
                key.push_str(&status_prefix);
                key.push_str(jid);
                cmd.arg(key.as_str());
            }
        }
        cmd.arg(self.queue)
            .arg(flag(tracked))
            .arg(client.config().status_retention.active.as_secs())
            .arg(keys.wake_channel());
        if tracked && self.jobs.clone().any(|(_, _, given)| given) {
            let checks: String = self
                .jobs
                .clone()
                .map(|(_, _, given)| if given { '1' } else { '0' })
                .collect();
            cmd.arg(checks);
        } else {
            cmd.arg("");
        }
        cmd.arg(fields.len() * 2);
        for (f, v) in fields {
            cmd.arg(*f).arg(*v);
        }
        for (_, json, _) in self.jobs {
            cmd.arg(json);
        }
        cmd
    }
}

/// Sends a chunk built by [`BulkChunk::command`]; returns how many jobs were pushed.
pub(crate) async fn send(client: &Client, cmd: Cmd) -> Result<usize> {
    let pushed = ENQUEUE_BULK.int(ENQUEUE_BULK.call_cmd(client, cmd).await?)?;
    usize::try_from(pushed).map_err(|_| ENQUEUE_BULK.unexpected(pushed))
}

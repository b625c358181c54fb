//! What a worker process reads and names in Redis outside the scripts: the identities the
//! reaper walks, its own processing list for the audit, the server's version, its
//! connection name, the wake-up subscription, and the diagnostic jobs' ledger.

use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};

use crate::client::Client;
use crate::cluster::subscription_client;
use crate::connection::name_connection;
use crate::error::{Error, Result};
use crate::subscription_check::checked;

impl Client {
    /// The identities of our worker processes, alive or not (the reaper walks them).
    pub async fn registered_identities(&self) -> Result<Vec<String>> {
        let mut conn = self.connection();
        self.bounded(
            redis::cmd("SMEMBERS")
                .arg(self.keys().workers())
                .query_async(&mut conn),
        )
        .await
    }

    /// Whether the process `incarnation` (`host:pid:nonce`, the part every identity of one
    /// process shares) is alive: one of its identities is registered and holds its lease.
    /// A process that stalled past its lease and came back is alive; one that died is not.
    pub async fn incarnation_alive(&self, incarnation: &str) -> Result<bool> {
        let prefix = format!("{incarnation}:");
        for identity in self.registered_identities().await? {
            if !identity.starts_with(&prefix) {
                continue;
            }
            let mut conn = self.connection();
            let leased: bool = self
                .bounded(
                    redis::cmd("EXISTS")
                        .arg(self.keys().lease(&identity))
                        .query_async(&mut conn),
                )
                .await?;
            if leased {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Every entry of `identity`'s processing list, exactly as stored (the audit compares
    /// them with what the process holds). One `LRANGE` of the whole list: a processing list
    /// holds at most concurrency + prefetch entries.
    pub async fn processing_entries(&self, identity: &str) -> Result<Vec<Vec<u8>>> {
        let mut conn = self.connection();
        self.bounded(
            redis::cmd("LRANGE")
                .arg(self.keys().processing(identity))
                .arg(0)
                .arg(-1)
                .query_async(&mut conn),
        )
        .await
    }

    /// The server's `redis_version` (`INFO server`), as `(major, minor, text)`.
    pub async fn server_version(&self) -> Result<(u32, u32, String)> {
        let mut conn = self.connection();
        let info: String = self
            .bounded(redis::cmd("INFO").arg("server").query_async(&mut conn))
            .await?;
        let version = info
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .unwrap_or("")
            .trim()
            .to_owned();
        let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        Ok((major, minor, version))
    }

    /// Sets the shared connection's name again (a reconnect loses it).
    pub async fn rename_connection(&self) -> Result<()> {
        let mut conn = self.connection();
        let timeout = self.config().timeout;
        tokio::time::timeout(timeout, name_connection(&mut conn, self.config()))
            .await
            .map_err(|_| Error::Timeout(timeout))?
    }

    /// A subscription to the wake channel: yields each queue name our enqueue scripts
    /// announce (and the `:` notices). The stream ends when the connection carrying it drops.
    pub async fn wake_ups(&self) -> Result<impl Stream<Item = String> + Send + use<>> {
        let messages = self.subscription(self.keys().wake_channel()).await?;
        Ok(messages.map(|payload| String::from_utf8(payload).unwrap_or_default()))
    }

    /// Messages of `channel`, subscribed once this returns (bounded by the client timeout).
    /// They arrive on the shared connection where it speaks RESP3 ([`crate::pushes`]), else
    /// on a new pub/sub connection of their own. Either way the stream ends when that
    /// connection drops, and what is published until the next subscription is not redelivered.
    pub(crate) async fn subscription(
        &self,
        channel: String,
    ) -> Result<BoxStream<'static, Vec<u8>>> {
        if let Some(pushes) = self.pushes() {
            return Ok(pushes.subscribe(channel).await?.boxed());
        }
        let config = self.config();
        let client = subscription_client(config)?;
        let mut pubsub = tokio::time::timeout(config.timeout, client.get_async_pubsub())
            .await
            .map_err(|_| Error::Timeout(config.timeout))??;
        self.bounded(pubsub.subscribe(channel)).await?;
        // A frozen server closes nothing: the check ends the stream when it stops answering.
        Ok(checked(pubsub, config.timeout)
            .map(|msg| msg.get_payload_bytes().to_vec())
            .boxed())
    }

    /// Counts one completed execution of job `jid` in the diagnostics ledger (the
    /// `queue-worker` binary's diagnostic jobs; kill tests read it).
    pub async fn record_diagnostic_execution(&self, jid: &str) -> Result<u64> {
        let mut conn = self.connection();
        self.bounded(
            redis::cmd("HINCRBY")
                .arg(self.keys().diagnostics_ledger())
                .arg(jid)
                .arg(1)
                .query_async(&mut conn),
        )
        .await
    }

    /// Appends one `admitted start end` line (epoch ms) to the diagnostics span ledger (the
    /// `queue-worker` binary's limited diagnostic job; the limiter test reads it).
    pub async fn record_diagnostic_span(&self, admitted: u64, start: u64, end: u64) -> Result<()> {
        let mut conn = self.connection();
        self.bounded(
            redis::cmd("RPUSH")
                .arg(self.keys().diagnostics_spans())
                .arg(format!("{admitted} {start} {end}"))
                .query_async::<()>(&mut conn),
        )
        .await
    }
}

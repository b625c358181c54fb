//! Pub/sub on the shared connection: where the server speaks RESP3, a subscribed channel's
//! messages arrive as push messages on the one multiplexed connection every caller uses, so
//! a process needs no second connection for wake-ups or status announcements.
//!
//! The connection hands every push to one [`Pushes`] router, which passes each message to the
//! subscribers of its channel in this process ([`Pushes::subscribe`]). A subscription is a
//! stream that ends when the connection drops (the crate's `Disconnection` push), exactly as a
//! dedicated pub/sub connection's stream ends: the subscriber then subscribes again (which
//! waits for the manager's reconnect) and catches up on what was published meanwhile, as it
//! does after losing a dedicated connection. The manager's own automatic resubscription is not
//! used: a subscriber that was not told of the gap could not know it has to catch up.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use redis::aio::ConnectionManager;
use redis::{PushInfo, PushKind, Value};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::error::{Error, Result};

/// The live subscribers of each channel (by channel name, as bytes).
type Routes = HashMap<Vec<u8>, Vec<UnboundedSender<Vec<u8>>>>;

/// The router of one shared connection's push messages to this process's subscribers.
#[derive(Debug)]
pub(crate) struct Pushes {
    routes: Arc<Mutex<Routes>>,
    /// Held while a `SUBSCRIBE` or `UNSUBSCRIBE` is in flight, so that the last subscriber's
    /// `UNSUBSCRIBE` can never overtake a new subscriber's `SUBSCRIBE` on the wire.
    changes: tokio::sync::Mutex<()>,
    conn: ConnectionManager,
    timeout: Duration,
}

/// What the connection calls with each push it reads: routes it into `routes`. Returns
/// without blocking (the connection's reader runs it).
pub(crate) fn push_sender(
    routes: Arc<Mutex<Routes>>,
) -> impl Fn(PushInfo) -> std::result::Result<(), std::convert::Infallible> + Send + Sync + 'static
{
    move |push: PushInfo| {
        let mut routes = routes.lock().unwrap_or_else(PoisonError::into_inner);
        match push.kind {
            // Dropping every sender ends every subscription's stream: nothing is subscribed on
            // the connection the manager opens next.
            PushKind::Disconnection => routes.clear(),
            PushKind::Message => {
                if let [channel, payload] = push.data.as_slice()
                    && let Some(subscribers) = routes.get_mut(bytes(channel))
                {
                    let payload = bytes(payload).to_vec();
                    subscribers.retain(|tx| tx.send(payload.clone()).is_ok());
                }
            }
            // Confirmations of our (un)subscriptions, and pushes of features we do not use.
            _ => {}
        }
        Ok(())
    }
}

fn bytes(value: &Value) -> &[u8] {
    match value {
        Value::BulkString(b) => b,
        Value::SimpleString(s) => s.as_bytes(),
        _ => &[],
    }
}

impl Pushes {
    /// The routing table to pass to [`push_sender`] before the connection is opened.
    pub(crate) fn routes() -> Arc<Mutex<Routes>> {
        Arc::default()
    }

    pub(crate) fn new(
        routes: Arc<Mutex<Routes>>,
        conn: ConnectionManager,
        timeout: Duration,
    ) -> Self {
        Self {
            routes,
            changes: tokio::sync::Mutex::new(()),
            conn,
            timeout,
        }
    }

    /// Subscribes to `channel` on the shared connection, confirmed once this returns: yields
    /// each message's payload, and ends when the connection drops.
    pub(crate) async fn subscribe(self: &Arc<Self>, channel: String) -> Result<PushSubscription> {
        let (tx, rx) = unbounded_channel();
        // Registered before the SUBSCRIBE is sent: a message published right after the
        // confirmation is not missed, and a drop after it ends this stream.
        self.lock_routes()
            .entry(channel.as_bytes().to_vec())
            .or_default()
            .push(tx);
        let subscription = PushSubscription {
            rx,
            channel,
            pushes: Arc::downgrade(self),
        };
        // Sent again by every subscriber (Redis ignores a repeated SUBSCRIBE): after a
        // reconnect the first one back must not trust a state the old connection had.
        let _changing = self.changes.lock().await;
        let mut conn = self.conn.clone();
        match tokio::time::timeout(self.timeout, conn.subscribe(&subscription.channel)).await {
            Ok(Ok(())) => Ok(subscription),
            Ok(Err(e)) => Err(Error::from_bounded(e, self.timeout)),
            Err(_) => Err(Error::Timeout(self.timeout)),
        }
    }

    fn lock_routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `channel` has a subscriber in this process (dropping closed ones).
    fn listened(&self, channel: &[u8]) -> bool {
        let mut routes = self.lock_routes();
        let Some(subscribers) = routes.get_mut(channel) else {
            return false;
        };
        subscribers.retain(|tx| !tx.is_closed());
        if subscribers.is_empty() {
            routes.remove(channel);
            return false;
        }
        true
    }

    /// Unsubscribes from `channel` unless a subscriber came back meanwhile.
    async fn unsubscribe_if_unused(&self, channel: String) {
        let _changing = self.changes.lock().await;
        if self.listened(channel.as_bytes()) {
            return;
        }
        let mut conn = self.conn.clone();
        // A failure leaves the connection subscribed; its messages are dropped here, and
        // the next reconnect ends the subscription anyway.
        if let Ok(Err(e)) = tokio::time::timeout(self.timeout, conn.unsubscribe(&channel)).await {
            tracing::debug!(error = %e, "unsubscribing an unused channel failed");
        }
    }
}

/// One subscriber's messages (see [`Pushes::subscribe`]). Dropping the last subscriber of a
/// channel unsubscribes the connection from it.
#[derive(Debug)]
pub(crate) struct PushSubscription {
    rx: UnboundedReceiver<Vec<u8>>,
    channel: String,
    pushes: Weak<Pushes>,
}

impl Stream for PushSubscription {
    type Item = Vec<u8>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Vec<u8>>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for PushSubscription {
    fn drop(&mut self) {
        self.rx.close();
        let Some(pushes) = self.pushes.upgrade() else {
            return;
        };
        if pushes.listened(self.channel.as_bytes()) {
            return;
        }
        // UNSUBSCRIBE is a round trip; without a runtime (a process shutting down) the
        // subscription simply ends with the connection.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let channel = std::mem::take(&mut self.channel);
            runtime.spawn(async move { pushes.unsubscribe_if_unused(channel).await });
        }
    }
}

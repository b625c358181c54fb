//! `unregister.lua`: the last step of a clean shutdown forgets the process.

use crate::client::Client;
use crate::error::Result;
use crate::scripts::lua;

lua!(UNREGISTER, "unregister.lua");

/// Deletes `identity`'s lease and process record. Returns how many jobs were still in its
/// processing list (normally 0): they stay, and with the lease gone any live worker's reaper
/// recovers them at once.
pub async fn unregister(client: &Client, identity: &str) -> Result<usize> {
    let keys = client.keys();
    let mut inv = UNREGISTER.invocation();
    inv.key(keys.lease(identity))
        .key(keys.workers())
        .key(keys.processes())
        .key(keys.process(identity))
        .key(keys.process_work(identity))
        .key(keys.processing(identity))
        .arg(identity);
    let left: i64 = UNREGISTER.call(client, inv).await?;
    usize::try_from(left).map_err(|_| UNREGISTER.unexpected(left))
}

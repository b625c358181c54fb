//! `unique_release.lua`: a uniqueness key given back by the job that holds it.

use crate::client::Client;
use crate::error::Result;
use crate::scripts::lua;

lua!(UNIQUE_RELEASE, "unique_release.lua");

/// Releases uniqueness key `key` if job `jid` still holds it; true when it did.
pub async fn unique_release(client: &Client, key: &str, jid: &str) -> Result<bool> {
    let mut inv = UNIQUE_RELEASE.invocation();
    inv.key(client.keys().unique(key)).arg(jid);
    match UNIQUE_RELEASE.int(UNIQUE_RELEASE.call(client, inv).await?)? {
        1 => Ok(true),
        0 => Ok(false),
        other => Err(UNIQUE_RELEASE.unexpected(other)),
    }
}

//! `periodic_register.lua`: this process's periodic entries registered, removed ones forgotten.

use crate::client::Client;
use crate::error::Result;
use crate::periodic::PeriodicDefinition;
use crate::scripts::lua;

lua!(PERIODIC_REGISTER, "periodic_register.lua");

/// Registers `entries` and forgets the registered entries named in `removed`; returns how
/// many were forgotten.
pub(crate) async fn periodic_register(
    client: &Client,
    entries: &[PeriodicDefinition],
    removed: &[&str],
) -> Result<usize> {
    let keys = client.keys();
    let mut inv = PERIODIC_REGISTER.invocation();
    inv.key(keys.periodic());
    for e in entries {
        inv.key(keys.periodic_entry(&e.name));
    }
    for name in removed {
        inv.key(keys.periodic_entry(name));
    }
    inv.arg(entries.len());
    for e in entries {
        inv.arg(&e.name)
            .arg(e.digest())
            .arg(&e.cron)
            .arg(&e.tz)
            .arg(&e.job.class)
            .arg(e.job.options.queue.as_deref().unwrap_or(&e.job.queue))
            .arg(&e.missed);
    }
    let removed = PERIODIC_REGISTER.int(PERIODIC_REGISTER.call(client, inv).await?)?;
    Ok(usize::try_from(removed).unwrap_or(0))
}

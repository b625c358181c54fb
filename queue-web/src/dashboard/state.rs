//! What every dashboard handler shares.

use queue_core::Client;

use super::auth::DashboardAuth;
use super::signing::SigningKey;

/// The dashboard's state: the client it reads and acts through, the authentication choice
/// and the key that signs sessions and CSRF tokens.
#[derive(Debug)]
pub(crate) struct Dashboard {
    pub(crate) client: Client,
    pub(crate) auth: DashboardAuth,
    pub(crate) key: SigningKey,
    /// False when no secret key could be made: every POST is refused.
    pub(crate) forms_enabled: bool,
}

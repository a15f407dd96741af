//! Plugins built against older contracts, adapted to the current one's
//! records at the edge, so the rest of the host speaks one version.
//!
//! 0.1.0 and 0.2.0 share their records ([`before_0_3`]); 0.3.0's records
//! are its own ([`v0_3`]). Every adaptation is total: an older plugin
//! knows less (no sender, no part ids, a webhook error as a string), never
//! something the current contract cannot say.

pub mod before_0_3;
pub mod v0_3;

pub use before_0_3::{v1, v2};
pub use v0_3::v3;

use super::bindings::current::types as wit;
use super::sandbox::CallState;

/// The older contracts' host functions, beside the current one's on the same linker.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<CallState>) -> anyhow::Result<()> {
    before_0_3::add_to_linker(linker)?;
    v0_3::add_to_linker(linker)
}

/// Before 0.4.0 a webhook error is a string; the SDK put the kind in front
/// (`unauthorized: ...`). Plugins from older SDKs send bare text, read as
/// malformed.
pub fn webhook_error(text: String) -> wit::WebhookError {
    if let Some(why) = text.strip_prefix("unauthorized: ") {
        wit::WebhookError::Unauthorized(why.to_owned())
    } else if text.starts_with("unsupported: ") {
        wit::WebhookError::Unsupported
    } else {
        let why = text.strip_prefix("malformed: ").unwrap_or(&text);
        wit::WebhookError::Malformed(why.to_owned())
    }
}

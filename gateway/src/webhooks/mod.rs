//! Callbacks across the gateway's edge: provider callbacks in ([`inbound`]:
//! statuses, opt-outs, bounces) and status changes posted to the platform
//! (outbound, [`status`]).

pub mod inbound;
mod status;

pub use status::{CallbackSender, sign};

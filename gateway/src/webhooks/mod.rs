//! Callbacks across the gateway's edge: status changes posted to the
//! platform (outbound). Provider webhooks (inbound) come next.

mod status;

pub use status::{CallbackSender, sign};

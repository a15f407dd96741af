//! What a connector call comes to, in the gateway's terms: the dispatcher
//! decides retries and fallback from these, never from contract records.

use std::time::Duration;

/// The provider accepted the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub provider_message_id: String,
    /// The ids of the message's further parts, when the provider split it
    /// (a long SMS): their reports count for the message too.
    pub parts: Vec<String>,
    /// The gateway itself put it where the customer sees it (their inbox):
    /// no provider will report it delivered, so it is `delivered` at once.
    pub delivered: bool,
}

impl Receipt {
    /// A provider took it; whether it arrives is theirs to report.
    pub fn sent(provider_message_id: String) -> Receipt {
        Receipt {
            provider_message_id,
            parts: Vec::new(),
            delivered: false,
        }
    }
}

/// Why an attempt did not deliver, from the plugin or from the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub retryable: bool,
    pub retry_after: Option<Duration>,
    pub code: String,
    pub message: String,
}

impl Failure {
    pub(super) fn sandbox(code: &str, message: String) -> Self {
        // A fault of the plugin's own making is not retried on the same
        // connector: it would fail the same way. The dispatcher moves on.
        Failure {
            retryable: false,
            retry_after: None,
            code: code.to_owned(),
            message,
        }
    }
}

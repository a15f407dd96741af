//! Double opt-in: the platform asks a customer for consent in a message it
//! sends ("Reply YES to get our offers by SMS"), and the customer's YES on
//! the channel that message reached them by, within a window, is the one
//! reply that grants consent, recorded as such. Any other reply, YES to
//! anything else included, grants nothing.

use super::{Consent, ConsentStatus};

/// How long a request waits for its YES unless the send says otherwise.
pub const DEFAULT_WINDOW_MS: i64 = 24 * 3_600_000;
/// The longest a request may wait.
pub const MAX_WINDOW_MS: i64 = 7 * 24 * 3_600_000;

/// A message that asks its customer for consent in `category`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRequest {
    pub message_id: String,
    pub customer_id: String,
    pub category: String,
    pub created_at: i64,
    /// A YES after this grants nothing.
    pub open_until: i64,
}

/// What a YES confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmed {
    pub customer_id: String,
    pub category: String,
    /// The message that asked.
    pub message_id: String,
}

/// Whether a reply says yes, and nothing else.
pub fn is_yes(text: &str) -> bool {
    matches!(text.trim().to_ascii_uppercase().as_str(), "YES" | "Y")
}

/// The consent a confirmation records: opted in, at the reply, naming the
/// message that asked.
pub fn granted(message_id: &str, at_ms: i64) -> Consent {
    Consent {
        status: ConsentStatus::OptedIn,
        at: jiff::Timestamp::from_millisecond(at_ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH),
        source: Some(format!("double-opt-in {message_id}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bare_yes_is_a_yes() {
        assert!(is_yes(" yes "));
        assert!(is_yes("Y"));
        assert!(!is_yes("yes please stop"));
        assert!(!is_yes("START"));
    }
}

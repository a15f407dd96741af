//! The vocabulary shared by the API, the store and the dispatcher.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A channel Crossgate can reach a customer on.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
    Whatsapp,
    Push,
    /// The customer's notification feed in the platform's app, kept until
    /// archived. Delivered by the gateway itself (see [`crate::feed`]).
    Inbox,
    /// A banner or modal while the app is open, gone after its ttl.
    /// Delivered by the gateway itself, like the inbox.
    InApp,
}

impl Channel {
    pub const ALL: [Channel; 6] = [
        Channel::Email,
        Channel::Sms,
        Channel::Whatsapp,
        Channel::Push,
        Channel::Inbox,
        Channel::InApp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Whatsapp => "whatsapp",
            Channel::Push => "push",
            Channel::Inbox => "inbox",
            Channel::InApp => "in_app",
        }
    }

    /// Whether the gateway delivers it itself, into the customer's feed,
    /// rather than through a connector. Its one connector is named like
    /// the channel.
    pub fn is_feed(self) -> bool {
        matches!(self, Channel::Inbox | Channel::InApp)
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown channel {s:?}, expected one of email, sms, whatsapp, push, inbox, in_app"
                )
            })
    }
}

/// Where a message is in its life. A status never moves backwards: this
/// type is the one place that says which moves exist (the store's SQL is
/// built from it, not from its own lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    Scheduled,
    Queued,
    Sending,
    Sent,
    /// The provider reported the message delivered to the device.
    Delivered,
    /// The provider reported the message read.
    Read,
    Failed,
    Cancelled,
    Expired,
    /// Never sent, by decision: opt-out, suppressed address, frequency cap,
    /// no allowed channel.
    Suppressed,
}

impl MessageStatus {
    pub const ALL: [MessageStatus; 10] = [
        MessageStatus::Scheduled,
        MessageStatus::Queued,
        MessageStatus::Sending,
        MessageStatus::Sent,
        MessageStatus::Delivered,
        MessageStatus::Read,
        MessageStatus::Failed,
        MessageStatus::Cancelled,
        MessageStatus::Expired,
        MessageStatus::Suppressed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Scheduled => "scheduled",
            MessageStatus::Queued => "queued",
            MessageStatus::Sending => "sending",
            MessageStatus::Sent => "sent",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Read => "read",
            MessageStatus::Failed => "failed",
            MessageStatus::Cancelled => "cancelled",
            MessageStatus::Expired => "expired",
            MessageStatus::Suppressed => "suppressed",
        }
    }

    /// The gateway still has work to do: deliveries wait or are in flight.
    /// Only an open message can be cancelled, expired or failed by the gateway.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            MessageStatus::Scheduled | MessageStatus::Queued | MessageStatus::Sending
        )
    }

    /// The gateway is done with it; only a provider's report can still move
    /// it (`sent` -> `delivered` -> `read`, or `sent` -> `failed`).
    pub fn is_final(self) -> bool {
        !self.is_open()
    }

    /// Whether a message may move from `self` to `next`.
    pub fn may_become(self, next: MessageStatus) -> bool {
        use MessageStatus::*;
        match self {
            Scheduled | Queued => next != self && next != Scheduled,
            Sending => !matches!(next, Scheduled | Queued | Sending | Suppressed),
            Sent => matches!(next, Delivered | Read | Failed),
            Delivered => next == Read,
            Read | Failed | Cancelled | Expired | Suppressed => false,
        }
    }

    /// `('a', 'b')`: the statuses `keep` selects, as an SQL list, so queries
    /// ask this type instead of repeating its rules.
    pub fn sql_list(keep: impl Fn(MessageStatus) -> bool) -> String {
        let names: Vec<String> = MessageStatus::ALL
            .into_iter()
            .filter(|s| keep(*s))
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        format!("({})", names.join(", "))
    }
}

/// Where one delivery (the message on one connector) is. The dispatcher
/// decides the moves (`dispatch::retry::decide`); the stores write them,
/// with SQL lists built from this type and the states it names spelled by
/// it (a test holds the stores' SQL to these names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Behind an earlier delivery of the same message: its fallback.
    Waiting,
    /// Due at its `due_at`.
    Pending,
    /// Being attempted by the node named in `leased_by`, until `lease_until`.
    Leased,
    Sent,
    Failed,
    Cancelled,
    Expired,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 7] = [
        DeliveryState::Waiting,
        DeliveryState::Pending,
        DeliveryState::Leased,
        DeliveryState::Sent,
        DeliveryState::Failed,
        DeliveryState::Cancelled,
        DeliveryState::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Waiting => "waiting",
            DeliveryState::Pending => "pending",
            DeliveryState::Leased => "leased",
            DeliveryState::Sent => "sent",
            DeliveryState::Failed => "failed",
            DeliveryState::Cancelled => "cancelled",
            DeliveryState::Expired => "expired",
        }
    }

    /// A message's first delivery is due; the others wait behind it.
    pub fn initial(seq: usize) -> DeliveryState {
        if seq == 0 {
            DeliveryState::Pending
        } else {
            DeliveryState::Waiting
        }
    }

    /// No attempt has started: closing the message (a cancel, its ttl)
    /// still takes it. A leased delivery is in flight and is left to finish.
    pub fn is_unstarted(self) -> bool {
        matches!(self, DeliveryState::Waiting | DeliveryState::Pending)
    }

    /// What the unstarted deliveries of a message closed as `status`
    /// become: `cancelled` or `expired` like it; anything else fails them.
    pub fn closed_as(status: MessageStatus) -> DeliveryState {
        match status {
            MessageStatus::Cancelled => DeliveryState::Cancelled,
            MessageStatus::Expired => DeliveryState::Expired,
            _ => DeliveryState::Failed,
        }
    }

    /// `('a', 'b')`: the states `keep` selects, as an SQL list.
    pub fn sql_list(keep: impl Fn(DeliveryState) -> bool) -> String {
        let names: Vec<String> = DeliveryState::ALL
            .into_iter()
            .filter(|s| keep(*s))
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        format!("({})", names.join(", "))
    }
}

impl FromStr for DeliveryState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeliveryState::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| format!("unknown delivery state {s:?}"))
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MessageStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MessageStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown message status {s:?}"))
    }
}

/// What a provider reported about a message it accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderState {
    Sent,
    Delivered,
    Read,
    Failed,
}

impl ProviderState {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderState::Sent => "sent",
            ProviderState::Delivered => "delivered",
            ProviderState::Read => "read",
            ProviderState::Failed => "failed",
        }
    }
}

/// What the platform asked to say, already validated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// Passed to the connector as is: `data:*` for push payloads,
    /// `header:*` for email headers, provider options.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// An approved provider template (WhatsApp outside the 24-hour window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<ProviderTemplate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderTemplate {
    pub name: String,
    /// The template's language code, e.g. `en_US`.
    pub language: String,
    /// Body parameters, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<String>,
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Sent,
    Retryable,
    Permanent,
    /// The gateway stopped while the attempt was in flight: the provider
    /// may have the message. Recorded at the next start, before the retry.
    Interrupted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::Retryable => "retryable",
            Outcome::Permanent => "permanent",
            Outcome::Interrupted => "interrupted",
        }
    }
}

impl FromStr for Outcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sent" => Ok(Outcome::Sent),
            "retryable" => Ok(Outcome::Retryable),
            "permanent" => Ok(Outcome::Permanent),
            "interrupted" => Ok(Outcome::Interrupted),
            other => Err(format!("unknown attempt outcome {other:?}")),
        }
    }
}

/// Why `text` may not be stored or sent, if it may not: control characters
/// (NUL, ANSI escapes; tab and newlines are fine) and the bidirectional
/// embedding, override and isolate marks that make text read other than it is.
pub fn unsafe_text(text: &str) -> Option<String> {
    text.chars()
        .find(|&c| is_unsafe_char(c) && !matches!(c, '\t' | '\n' | '\r'))
        .map(|c| format!("contains the control character U+{:04X}", c as u32))
}

/// A control character, or a bidirectional embedding, override or isolate
/// mark: what may not reach a person, a provider or a log line unchecked.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::DeliveryState;
    use super::MessageStatus::{self, *};

    #[test]
    fn statuses_only_move_forward() {
        assert!(Queued.may_become(Sending) && Sending.may_become(Sent));
        assert!(Sent.may_become(Delivered) && Delivered.may_become(Read));
        assert!(Sent.may_become(Failed));
        assert!(!Delivered.may_become(Sent) && !Read.may_become(Delivered));
        assert!(!Suppressed.may_become(Cancelled), "suppressed is final");
        assert!(!Delivered.may_become(Cancelled) && !Sent.may_become(Expired));
        for status in MessageStatus::ALL {
            assert!(!status.may_become(status), "{status} to itself");
            assert_eq!(status.as_str().parse::<MessageStatus>(), Ok(status));
            if status.is_final() {
                assert!(
                    !status.may_become(Cancelled),
                    "{status} cannot be cancelled"
                );
            }
        }
    }

    #[test]
    fn control_and_bidi_characters_are_unsafe() {
        assert_eq!(super::unsafe_text("line one\nline two\ttab"), None);
        for bad in [
            "a\0b",
            "red \u{1b}[31m",
            "abc\u{202E}cba",
            "\u{2066}x\u{2069}",
            "\u{85}",
        ] {
            assert!(super::unsafe_text(bad).is_some(), "{bad:?}");
        }
        assert_eq!(super::unsafe_text("مرحبا שלום 你好"), None);
    }

    #[test]
    fn sql_lists_come_from_the_rules() {
        assert_eq!(
            MessageStatus::sql_list(MessageStatus::is_open),
            "('scheduled', 'queued', 'sending')"
        );
        assert_eq!(
            DeliveryState::sql_list(DeliveryState::is_unstarted),
            "('waiting', 'pending')"
        );
        for state in DeliveryState::ALL {
            assert_eq!(state.as_str().parse::<DeliveryState>(), Ok(state));
        }
    }
}

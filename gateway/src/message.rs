//! The vocabulary shared by the API, the store and the dispatcher.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A channel Crossgate can reach a customer on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
    Whatsapp,
    Push,
}

impl Channel {
    pub const ALL: [Channel; 4] = [
        Channel::Email,
        Channel::Sms,
        Channel::Whatsapp,
        Channel::Push,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Whatsapp => "whatsapp",
            Channel::Push => "push",
        }
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
                format!("unknown channel {s:?}, expected one of email, sms, whatsapp, push")
            })
    }
}

/// Where a message is in its life. A status never moves backwards.
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
    /// Never sent, by decision: frequency cap, no allowed channel.
    Suppressed,
}

impl MessageStatus {
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

    /// No further change can happen to a message in a final status.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            MessageStatus::Sent
                | MessageStatus::Delivered
                | MessageStatus::Read
                | MessageStatus::Failed
                | MessageStatus::Cancelled
                | MessageStatus::Expired
        )
    }
}

impl FromStr for MessageStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "scheduled" => Ok(MessageStatus::Scheduled),
            "queued" => Ok(MessageStatus::Queued),
            "sending" => Ok(MessageStatus::Sending),
            "sent" => Ok(MessageStatus::Sent),
            "delivered" => Ok(MessageStatus::Delivered),
            "read" => Ok(MessageStatus::Read),
            "failed" => Ok(MessageStatus::Failed),
            "cancelled" => Ok(MessageStatus::Cancelled),
            "expired" => Ok(MessageStatus::Expired),
            "suppressed" => Ok(MessageStatus::Suppressed),
            other => Err(format!("unknown message status {other:?}")),
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::Retryable => "retryable",
            Outcome::Permanent => "permanent",
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
            other => Err(format!("unknown attempt outcome {other:?}")),
        }
    }
}

/// A phone number in strict E.164 (`+` and country code), normalised.
pub fn e164(raw: &str) -> Result<String, String> {
    let invalid = |why: &str| format!("{raw:?} is not a valid E.164 phone number: {why}");
    if !raw.starts_with('+') {
        return Err(invalid("it must start with + and the country code"));
    }
    let number = phonenumber::parse(None, raw).map_err(|e| invalid(&e.to_string()))?;
    if !phonenumber::is_valid(&number) {
        return Err(invalid("no such number in its country's numbering plan"));
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

/// The ISO 3166 country of an E.164 number, e.g. `NL` for `+31...`.
pub fn phone_country(e164: &str) -> Option<String> {
    let number = phonenumber::parse(None, e164).ok()?;
    number.country().id().map(|id| id.as_ref().to_owned())
}

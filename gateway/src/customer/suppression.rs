//! The suppression list: addresses that get nothing on one channel, whoever
//! sends to them and whether or not a customer owns them (like the opt-out
//! lists of AWS End User Messaging). A STOP from any number, a hard bounce,
//! a spam complaint or a dead push token lands here.

use crate::message::Channel;
use crate::phone::e164;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Why an address is suppressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionReason {
    /// The address said stop (STOP keyword, unsubscribe, spam complaint
    /// reported as an opt-out). Only an opt-in (START) or staff lift it.
    OptOut,
    /// Email that hard-bounced: the mailbox does not exist.
    Bounce,
    /// The recipient reported a message as spam.
    Complaint,
    /// The provider says the address is gone (an unregistered push token).
    DeadAddress,
    /// Support staff put it there.
    Manual,
}

impl SuppressionReason {
    pub const ALL: [SuppressionReason; 5] = [
        SuppressionReason::OptOut,
        SuppressionReason::Bounce,
        SuppressionReason::Complaint,
        SuppressionReason::DeadAddress,
        SuppressionReason::Manual,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionReason::OptOut => "opt_out",
            SuppressionReason::Bounce => "bounce",
            SuppressionReason::Complaint => "complaint",
            SuppressionReason::DeadAddress => "dead_address",
            SuppressionReason::Manual => "manual",
        }
    }

    /// What the provider found out about the address, rather than what the
    /// person asked for: a category with `respect_suppressions = false`
    /// (a password reset) may still try. A STOP is never ignored.
    pub fn is_deliverability(self) -> bool {
        matches!(
            self,
            SuppressionReason::Bounce
                | SuppressionReason::Complaint
                | SuppressionReason::DeadAddress
        )
    }
}

impl fmt::Display for SuppressionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SuppressionReason {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SuppressionReason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown suppression reason {s:?}, expected one of opt_out, bounce, complaint, dead_address, manual"
                )
            })
    }
}

/// One suppressed address on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    pub channel: Channel,
    /// In the form [`address_key`] gives.
    pub address: String,
    pub reason: SuppressionReason,
    /// Who put it there: a connector (`twilio`), or `api` for support staff.
    pub source: String,
    /// What the provider or the staff member said.
    pub note: Option<String>,
    pub created_at: i64,
}

/// What writing a suppression came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// The entry is now the address's.
    pub written: bool,
    /// There was none before.
    pub created: bool,
}

impl Suppression {
    /// A provider said `address` (in [`address_key`] form) no longer
    /// exists: a hard bounce for email, a dead number or push token for the
    /// rest. Dispatch (a connector's answer to a send) and provider
    /// callbacks (a later bounce) both make it here.
    pub fn dead_address(
        channel: Channel,
        address: String,
        source: &str,
        note: Option<String>,
        now: i64,
    ) -> Suppression {
        Suppression {
            channel,
            address,
            reason: if channel == Channel::Email {
                SuppressionReason::Bounce
            } else {
                SuppressionReason::DeadAddress
            },
            source: source.to_owned(),
            note,
            created_at: now,
        }
    }

    /// Whether this entry may take the place of one for `existing`: what a
    /// provider found out (a bounce, a complaint, a dead address) never
    /// replaces what a person asked for (an opt-out, support's entry),
    /// unless support replaces it on purpose (`explicit`). Both stores ask
    /// this, so the rule has one owner.
    pub fn may_replace(&self, existing: SuppressionReason, explicit: bool) -> bool {
        explicit || existing.is_deliverability() || !self.reason.is_deliverability()
    }
}

/// An email address a mail provider will take: RFC 5322 syntax, and a
/// domain on the internet (a dot, no IP literal, not `localhost`): SendGrid
/// refuses the rest, and it is better said at the API than found at delivery.
pub fn email(raw: &str) -> Result<&str, String> {
    let invalid = |why: &str| format!("{raw:?} is not an email address{why}");
    if !email_address::EmailAddress::is_valid(raw) {
        return Err(invalid(""));
    }
    let domain = raw.rsplit_once('@').map_or("", |(_, d)| d);
    // Internationalised addresses need SMTPUTF8 end to end, which the mail
    // providers connectors speak to (SendGrid among them) refuse: accepted
    // here, such a message would only fail at delivery.
    if !raw.is_ascii() {
        return Err(invalid(
            ": only ASCII addresses are taken (mail providers refuse internationalised ones; write a domain in its xn-- form)",
        ));
    }
    if domain.starts_with('[') {
        return Err(invalid(
            ": the domain must be a name, not an address literal",
        ));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
        return Err(invalid(": the domain needs a dot, like example.com"));
    }
    if domain.eq_ignore_ascii_case("localhost")
        || domain.to_ascii_lowercase().ends_with(".localhost")
    {
        return Err(invalid(": localhost receives no mail from providers"));
    }
    Ok(raw)
}

/// An address in the one form it is stored and compared in: phone numbers
/// in E.164, email lower-cased, a Web Push subscription by its endpoint, a
/// push token as given. Two spellings of one address are one address.
pub fn address_key(channel: Channel, raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    match channel {
        Channel::Sms | Channel::Whatsapp => e164(raw),
        Channel::Email => email(raw).map(|e| e.to_lowercase()),
        Channel::Push => {
            if raw.is_empty() || raw.len() > 8192 {
                return Err("a push address is 1-8192 characters".into());
            }
            if raw.starts_with('{') {
                let subscription: super::WebPushSubscription = serde_json::from_str(raw)
                    .map_err(|e| format!("not a Web Push subscription: {e}"))?;
                return Ok(subscription.endpoint);
            }
            Ok(raw.to_owned())
        }
        // A feed is the customer's own: its address is their id.
        Channel::Inbox | Channel::InApp => super::check_id(raw)
            .map(|()| raw.to_owned())
            .map_err(|e| e.message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finding_never_replaces_a_persons_wish_unless_on_purpose() {
        let entry = |reason| Suppression {
            channel: Channel::Email,
            address: "a@example.com".into(),
            reason,
            source: "test".into(),
            note: None,
            created_at: 0,
        };
        let bounce = entry(SuppressionReason::Bounce);
        assert!(!bounce.may_replace(SuppressionReason::OptOut, false));
        assert!(bounce.may_replace(SuppressionReason::OptOut, true));
        assert!(bounce.may_replace(SuppressionReason::Complaint, false));
        assert!(entry(SuppressionReason::OptOut).may_replace(SuppressionReason::Bounce, false));
    }

    #[test]
    fn one_address_has_one_key() {
        assert_eq!(
            address_key(Channel::Sms, "+31 6 1234 5678").unwrap(),
            "+31612345678"
        );
        assert_eq!(
            address_key(Channel::Email, "Anna@Example.NL").unwrap(),
            "anna@example.nl"
        );
        let subscription =
            r#"{"endpoint":"https://push.example.net/s/1","keys":{"p256dh":"x","auth":"y"}}"#;
        assert_eq!(
            address_key(Channel::Push, subscription).unwrap(),
            "https://push.example.net/s/1"
        );
        assert_eq!(address_key(Channel::Push, "tok-1").unwrap(), "tok-1");
        assert!(address_key(Channel::Sms, "0612345678").is_err());
        assert!(address_key(Channel::Email, "nobody").is_err());
        for refused in [
            "ops@localhost",
            "a@[127.0.0.1]",
            "a@example",
            "a@x.localhost",
        ] {
            assert!(email(refused).is_err(), "{refused}");
        }
        assert_eq!(email("anna@example.nl"), Ok("anna@example.nl"));
    }

    #[test]
    fn a_stop_is_never_a_deliverability_matter() {
        assert!(!SuppressionReason::OptOut.is_deliverability());
        assert!(!SuppressionReason::Manual.is_deliverability());
        assert!(SuppressionReason::Bounce.is_deliverability());
        for reason in SuppressionReason::ALL {
            assert_eq!(reason.as_str().parse::<SuppressionReason>(), Ok(reason));
        }
    }
}

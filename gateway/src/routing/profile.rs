//! A customer as the platform describes them: where they can be reached,
//! where they are, and what they agreed to.

use crate::message::{Channel, e164};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default)]
    pub addresses: Addresses,
    /// ISO 3166-1 alpha-2, e.g. `NL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// A routing region from `[regions]`; overrides the country's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// IANA time zone, e.g. `Europe/Amsterdam`; quiet hours are in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// BCP 47, e.g. `nl-NL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// The customer's own channel order, ahead of the region's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preferred_channels: Vec<Channel>,
    /// Channel -> category -> consent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub consent: BTreeMap<Channel, BTreeMap<String, Consent>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Addresses {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// E.164, for SMS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// E.164 of the WhatsApp account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whatsapp: Option<String>,
    /// Push tokens or Web Push subscriptions, most recent first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub push: Vec<String>,
}

impl Addresses {
    /// Where this customer is reached on `channel`, if anywhere.
    pub fn on(&self, channel: Channel) -> Option<&str> {
        match channel {
            Channel::Email => self.email.as_deref(),
            Channel::Sms => self.phone.as_deref(),
            Channel::Whatsapp => self.whatsapp.as_deref(),
            Channel::Push => self.push.first().map(String::as_str),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    pub status: ConsentStatus,
    /// When the customer said so.
    pub at: jiff::Timestamp,
    /// Where they said so: `checkout`, `sms-keyword`, `support`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentStatus {
    OptedIn,
    OptedOut,
}

/// A field that failed validation: the JSON path and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub code: &'static str,
    pub field: String,
    pub message: String,
}

fn invalid(code: &'static str, field: &str, message: String) -> Invalid {
    Invalid {
        code,
        field: field.to_owned(),
        message,
    }
}

impl Profile {
    /// Check every field and normalise phone numbers and codes.
    pub fn validate(mut self) -> Result<Profile, Invalid> {
        let a = &mut self.addresses;
        if let Some(email) = &a.email
            && !email_address::EmailAddress::is_valid(email)
        {
            return Err(invalid(
                "invalid_email",
                "addresses.email",
                format!("{email:?} is not an email address"),
            ));
        }
        for (field, phone) in [
            ("addresses.phone", &mut a.phone),
            ("addresses.whatsapp", &mut a.whatsapp),
        ] {
            if let Some(number) = phone {
                *number = e164(number).map_err(|e| invalid("invalid_phone", field, e))?;
            }
        }
        if let Some(i) = a
            .push
            .iter()
            .position(|t| t.trim().is_empty() || t.len() > 4096)
        {
            return Err(invalid(
                "invalid_push_token",
                &format!("addresses.push[{i}]"),
                "push tokens must be 1-4096 characters".into(),
            ));
        }
        if let Some(country) = &mut self.country {
            *country = country.to_ascii_uppercase();
            if !is_country(country) {
                return Err(invalid(
                    "invalid_country",
                    "country",
                    format!("{country:?} is not an ISO 3166-1 alpha-2 country code"),
                ));
            }
        }
        if let Some(tz) = &self.timezone {
            jiff::tz::TimeZone::get(tz).map_err(|_| {
                invalid(
                    "invalid_timezone",
                    "timezone",
                    format!("{tz:?} is not an IANA time zone"),
                )
            })?;
        }
        if let Some(locale) = &self.locale
            && !is_locale(locale)
        {
            return Err(invalid(
                "invalid_locale",
                "locale",
                format!("{locale:?} is not a BCP 47 language tag like nl-NL"),
            ));
        }
        Ok(self)
    }

    /// The time zone quiet hours are computed in (UTC when unknown).
    pub fn time_zone(&self) -> jiff::tz::TimeZone {
        self.timezone
            .as_deref()
            .and_then(|tz| jiff::tz::TimeZone::get(tz).ok())
            .unwrap_or(jiff::tz::TimeZone::UTC)
    }
}

/// A country the numbering-plan metadata knows: every ISO 3166 country with phones.
fn is_country(code: &str) -> bool {
    code.len() == 2 && phonenumber::metadata::DATABASE.by_id(code).is_some()
}

/// `language[-Script][-REGION]`, the subset of BCP 47 that messaging uses.
fn is_locale(tag: &str) -> bool {
    let mut parts = tag.split(['-', '_']);
    let language = parts.next().unwrap_or("");
    if !(2..=3).contains(&language.len()) || !language.bytes().all(|b| b.is_ascii_lowercase()) {
        return false;
    }
    parts.all(|p| {
        (p.len() == 4 && p.bytes().all(|b| b.is_ascii_alphabetic()))
            || (p.len() == 2 && p.bytes().all(|b| b.is_ascii_uppercase()))
            || (p.len() == 3 && p.bytes().all(|b| b.is_ascii_digit()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: serde_json::Value) -> Result<Profile, Invalid> {
        serde_json::from_value::<Profile>(json).unwrap().validate()
    }

    #[test]
    fn valid_profile_is_normalised() {
        let p = profile(serde_json::json!({
            "addresses": {"email": "anna@example.nl", "phone": "+31 6 12345678"},
            "country": "nl", "timezone": "Europe/Amsterdam", "locale": "nl-NL"
        }))
        .unwrap();
        assert_eq!(p.addresses.phone.as_deref(), Some("+31612345678"));
        assert_eq!(p.country.as_deref(), Some("NL"));
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            (
                serde_json::json!({"addresses": {"email": "not-an-email"}}),
                "addresses.email",
            ),
            (
                serde_json::json!({"addresses": {"phone": "0612345678"}}),
                "addresses.phone",
            ),
            (
                serde_json::json!({"addresses": {"whatsapp": "+999"}}),
                "addresses.whatsapp",
            ),
            (serde_json::json!({"country": "XX"}), "country"),
            (serde_json::json!({"timezone": "Mars/Olympus"}), "timezone"),
            (serde_json::json!({"locale": "dutch"}), "locale"),
        ];
        for (json, field) in cases {
            assert_eq!(profile(json.clone()).unwrap_err().field, field, "{json}");
        }
    }
}

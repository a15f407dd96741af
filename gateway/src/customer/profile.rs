//! A customer as the platform describes them: where they can be reached,
//! where they are, and what they agreed to.

use crate::message::Channel;
use crate::phone::e164;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// Labels segments select by, e.g. `["vip", "newsletter"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The platform's own facts segments select by: strings, numbers or
    /// booleans, e.g. `{"tier": "gold"}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = Object)]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// Device tokens (FCM) and browser Web Push subscriptions, most recent first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub push: Vec<PushAddress>,
    /// The customer's own feed (inbox and in-app), by customer id: set by
    /// the send path only when they opened it within `[inbox]
    /// reachable_within`, so no plan picks a feed nobody looks at. Never
    /// given by the platform nor stored with the profile.
    #[serde(skip)]
    pub feed: Option<String>,
}

/// A push address: what one push connector can deliver to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, try_from = "serde_json::Value")]
pub enum PushAddress {
    /// A device registration token (FCM).
    Token(String),
    /// A browser's `PushSubscription.toJSON()`.
    WebPush(WebPushSubscription),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebPushSubscription {
    pub endpoint: String,
    pub keys: WebPushKeys,
    /// Browsers send `expirationTime` (usually null); it is not kept.
    #[serde(default, rename = "expirationTime", skip_serializing)]
    pub expiration_time: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebPushKeys {
    /// The browser's P-256 public key, base64url.
    pub p256dh: String,
    /// The 16-byte authentication secret, base64url.
    pub auth: String,
}

/// Which kind of push address a push connector takes (`push_format` in its config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PushFormat {
    #[default]
    Token,
    WebPush,
}

/// Says which of the two shapes was wrong, where `untagged` would only say "no variant matched".
impl TryFrom<serde_json::Value> for PushAddress {
    type Error = String;

    fn try_from(value: serde_json::Value) -> Result<Self, String> {
        match value {
            serde_json::Value::String(token) => Ok(PushAddress::Token(token)),
            object @ serde_json::Value::Object(_) => serde_json::from_value(object)
                .map(PushAddress::WebPush)
                .map_err(|e| format!("not a Web Push subscription: {e}")),
            _ => Err(
                "a push address is a device token (string) or a Web Push subscription (object)"
                    .into(),
            ),
        }
    }
}

impl PushAddress {
    pub fn format(&self) -> PushFormat {
        match self {
            PushAddress::Token(_) => PushFormat::Token,
            PushAddress::WebPush(_) => PushFormat::WebPush,
        }
    }

    /// The address as a connector gets it: the token, or the subscription as JSON.
    pub fn address(&self) -> String {
        match self {
            PushAddress::Token(token) => token.clone(),
            PushAddress::WebPush(subscription) => {
                serde_json::to_string(subscription).expect("a subscription serialises")
            }
        }
    }
}

impl Addresses {
    /// Whether the customer has any address on `channel`.
    pub fn has(&self, channel: Channel) -> bool {
        match channel {
            Channel::Email => self.email.is_some(),
            Channel::Sms => self.phone.is_some(),
            Channel::Whatsapp => self.whatsapp.is_some(),
            Channel::Push => !self.push.is_empty(),
            Channel::Inbox | Channel::InApp => self.feed.is_some(),
        }
    }

    /// Where a connector of `channel` taking `push_format` reaches this customer.
    pub fn for_connector(&self, channel: Channel, push_format: PushFormat) -> Option<String> {
        self.for_connector_all(channel, push_format)
            .into_iter()
            .next()
    }

    /// Every address a connector of `channel` taking `push_format` could
    /// use, best first (push: newest first), so a suppressed one can be passed over.
    pub fn for_connector_all(&self, channel: Channel, push_format: PushFormat) -> Vec<String> {
        match channel {
            Channel::Email => self.email.iter().cloned().collect(),
            Channel::Sms => self.phone.iter().cloned().collect(),
            Channel::Whatsapp => self.whatsapp.iter().cloned().collect(),
            Channel::Push => self
                .push
                .iter()
                .filter(|p| p.format() == push_format)
                .map(PushAddress::address)
                .collect(),
            Channel::Inbox | Channel::InApp => self.feed.iter().cloned().collect(),
        }
    }

    /// Every address with its channel, in the form suppressions and the
    /// address index use ([`super::address_key`]).
    pub fn keys(&self) -> Vec<(Channel, String)> {
        let mut keys = Vec::new();
        let mut add = |channel: Channel, raw: &str| {
            if let Ok(key) = super::address_key(channel, raw) {
                keys.push((channel, key));
            }
        };
        if let Some(email) = &self.email {
            add(Channel::Email, email);
        }
        if let Some(phone) = &self.phone {
            add(Channel::Sms, phone);
        }
        if let Some(whatsapp) = &self.whatsapp {
            add(Channel::Whatsapp, whatsapp);
        }
        for push in &self.push {
            add(Channel::Push, &push.address());
        }
        keys
    }

    /// Drop `address` from `channel` (a provider said it is dead). `true` when it was there.
    pub fn forget(&mut self, channel: Channel, address: &str) -> bool {
        // Compared as keys: `address` may come from a provider, in its own spelling.
        let key = super::address_key(channel, address).unwrap_or_else(|_| address.to_owned());
        let same = |stored: &str| super::address_key(channel, stored).ok().as_deref() == Some(&key);
        let slot = match channel {
            Channel::Email => &mut self.email,
            Channel::Sms => &mut self.phone,
            Channel::Whatsapp => &mut self.whatsapp,
            Channel::Push => {
                let before = self.push.len();
                self.push.retain(|p| !same(&p.address()));
                return self.push.len() != before;
            }
            // A feed is not an address a provider can find dead.
            Channel::Inbox | Channel::InApp => return false,
        };
        if slot.as_deref().is_some_and(same) {
            *slot = None;
            return true;
        }
        false
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    pub status: ConsentStatus,
    /// When the customer said so; when not given, the time it is recorded
    /// (as `PATCH .../consent` has always done), so both routes agree: the
    /// gateway's clock's, stamped by [`Profile::validate`].
    #[serde(default = "Consent::unstamped")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub at: jiff::Timestamp,
    /// Where they said so: `checkout`, `sms-keyword`, `support`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Consent {
    /// What a consent without `at` reads as until it is stamped.
    fn unstamped() -> jiff::Timestamp {
        jiff::Timestamp::MIN
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

/// Platform ids are opaque but bounded and URL-safe: not `.` or `..` or any
/// id starting with a dot, as ids end up in paths and logs.
pub fn check_id(id: &str) -> Result<(), Invalid> {
    let ok = (1..=128).contains(&id.len())
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "invalid_customer_id",
            "id",
            "customer ids are 1-128 characters of letters, digits and - _ . : @, not starting with ."
                .into(),
        ))
    }
}

fn invalid(code: &'static str, field: &str, message: String) -> Invalid {
    Invalid {
        code,
        field: field.to_owned(),
        message,
    }
}

/// The source recorded for a keyword a customer texted to `connector`
/// (`STOP` is `"twilio opt-out"`), so a later `START` can tell what a
/// keyword withdrew from what the customer or the platform decided.
pub fn keyword_source(connector: &str, status: ConsentStatus) -> String {
    match status {
        ConsentStatus::OptedOut => format!("{connector} opt-out"),
        ConsentStatus::OptedIn => format!("{connector} opt-in"),
    }
}

fn withdrawn_by_keyword(consent: &Consent) -> bool {
    consent.status == ConsentStatus::OptedOut
        && consent
            .source
            .as_deref()
            .is_some_and(|s| s.ends_with(" opt-out") || s == "sms-keyword")
}

impl Profile {
    /// What an inbound keyword does on `channel` in `categories`: `STOP`
    /// (`consent` opted out) withdraws consent in each; `START` lifts only
    /// what a keyword withdrew, back to the category's default, and grants
    /// nothing: carriers treat it as undoing the sender's STOP, and an
    /// opt-in category still needs the customer's own opt-in. Whether
    /// anything changed.
    pub fn apply_keyword(
        &mut self,
        channel: Channel,
        categories: &[String],
        consent: &Consent,
    ) -> bool {
        if consent.status == ConsentStatus::OptedOut {
            let changes: Vec<_> = categories
                .iter()
                .map(|c| (channel, c.clone(), consent.clone()))
                .collect();
            self.set_consent(&changes);
            return true;
        }
        let Some(given) = self.consent.get_mut(&channel) else {
            return false;
        };
        let before = given.len();
        given.retain(|category, c| !(categories.contains(category) && withdrawn_by_keyword(c)));
        let changed = given.len() != before;
        if given.is_empty() {
            self.consent.remove(&channel);
        }
        changed
    }

    /// Set consent for these (channel, category) pairs, keeping the rest.
    pub fn set_consent(&mut self, changes: &[(Channel, String, Consent)]) {
        for (channel, category, consent) in changes {
            self.consent
                .entry(*channel)
                .or_default()
                .insert(category.clone(), consent.clone());
        }
    }

    /// Check every field and normalise phone numbers and codes; a consent
    /// given without a time is given `now`.
    pub fn validate(mut self, now: i64) -> Result<Profile, Invalid> {
        let now = jiff::Timestamp::from_millisecond(now).unwrap_or(jiff::Timestamp::MIN);
        for consent in self.consent.values_mut().flat_map(|c| c.values_mut()) {
            if consent.at == Consent::unstamped() {
                consent.at = now;
            }
        }
        let a = &mut self.addresses;
        if let Some(email) = &a.email
            && let Err(why) = super::email(email)
        {
            return Err(invalid("invalid_email", "addresses.email", why));
        }
        for (field, phone) in [
            ("addresses.phone", &mut a.phone),
            ("addresses.whatsapp", &mut a.whatsapp),
        ] {
            if let Some(number) = phone {
                *number = e164(number).map_err(|e| invalid("invalid_phone", field, e))?;
            }
        }
        for (i, push) in a.push.iter().enumerate() {
            let field = format!("addresses.push[{i}]");
            match push {
                PushAddress::Token(t) if t.trim().is_empty() || t.len() > 4096 => {
                    return Err(invalid(
                        "invalid_push_token",
                        &field,
                        "push tokens must be 1-4096 characters".into(),
                    ));
                }
                PushAddress::Token(_) => {}
                PushAddress::WebPush(sub) => check_subscription(sub)
                    .map_err(|e| invalid("invalid_push_subscription", &field, e))?,
            }
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
            && !crate::locale::valid(locale)
        {
            return Err(invalid(
                "invalid_locale",
                "locale",
                format!("{locale:?} is not a BCP 47 language tag like nl-NL"),
            ));
        }
        super::traits::check(&self.tags, &self.attributes)
            .map_err(|(field, why)| invalid("invalid_profile", &field, why))?;
        Ok(self)
    }

    /// The profile an address send is planned with: that one address, and
    /// what the customers who own it agreed to on its channel. One owner's
    /// opt-out is enough to stop it; an opt-in needs one owner and no
    /// opt-out. Place and time zone count only when a single customer owns it.
    pub fn of_address(channel: Channel, address: &str, owners: &[Profile]) -> Profile {
        let mut profile = Profile::default();
        let a = &mut profile.addresses;
        match channel {
            Channel::Email => a.email = Some(address.to_owned()),
            Channel::Sms => a.phone = Some(address.to_owned()),
            Channel::Whatsapp => a.whatsapp = Some(address.to_owned()),
            Channel::Push => a.push = vec![PushAddress::Token(address.to_owned())],
            Channel::Inbox | Channel::InApp => a.feed = Some(address.to_owned()),
        }
        let mut consent: BTreeMap<String, Consent> = BTreeMap::new();
        for owner in owners {
            for (category, given) in owner.consent.get(&channel).into_iter().flatten() {
                let keep = match consent.get(category) {
                    Some(held) => {
                        held.status == ConsentStatus::OptedIn
                            && given.status == ConsentStatus::OptedOut
                    }
                    None => true,
                };
                if !keep {
                    continue;
                }
                consent.insert(category.clone(), given.clone());
            }
        }
        if !consent.is_empty() {
            profile.consent.insert(channel, consent);
        }
        if let [owner] = owners {
            profile.country = owner.country.clone();
            profile.region = owner.region.clone();
            profile.timezone = owner.timezone.clone();
            profile.locale = owner.locale.clone();
        }
        profile
    }

    /// The time zone quiet hours are computed in (UTC when unknown).
    pub fn time_zone(&self) -> jiff::tz::TimeZone {
        self.timezone
            .as_deref()
            .and_then(|tz| jiff::tz::TimeZone::get(tz).ok())
            .unwrap_or(jiff::tz::TimeZone::UTC)
    }
}

/// What a push service needs to accept a message for a subscription.
fn check_subscription(sub: &WebPushSubscription) -> Result<(), String> {
    use base64::Engine as _;
    let uri: http::Uri = sub
        .endpoint
        .parse()
        .map_err(|_| format!("endpoint {:?} is not a URL", sub.endpoint))?;
    if !matches!(uri.scheme_str(), Some("https" | "http")) || uri.host().is_none() {
        return Err(format!(
            "endpoint {:?} must be an absolute https URL",
            sub.endpoint
        ));
    }
    let decode = |value: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(value.trim_end_matches('='))
    };
    match decode(&sub.keys.p256dh) {
        Ok(key) if key.len() == 65 && key[0] == 4 => {}
        _ => return Err("keys.p256dh must be an uncompressed P-256 public key, base64url".into()),
    }
    match decode(&sub.keys.auth) {
        Ok(secret) if secret.len() == 16 => Ok(()),
        _ => Err("keys.auth must be a 16-byte secret, base64url".into()),
    }
}

/// A country the numbering-plan metadata knows: every ISO 3166 country with phones.
fn is_country(code: &str) -> bool {
    code.len() == 2 && phonenumber::metadata::DATABASE.by_id(code).is_some()
}

/// `language[-Script][-REGION]`, the subset of BCP 47 that messaging uses.
#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: serde_json::Value) -> Result<Profile, Invalid> {
        serde_json::from_value::<Profile>(json).unwrap().validate(0)
    }

    #[test]
    fn an_address_is_planned_with_its_owners_consent() {
        let consent = |status: ConsentStatus| Consent {
            status,
            at: jiff::Timestamp::UNIX_EPOCH,
            source: None,
        };
        let owner = |status| {
            let mut p = Profile::default();
            p.consent
                .entry(Channel::Sms)
                .or_default()
                .insert("marketing".into(), consent(status));
            p.timezone = Some("Europe/Amsterdam".into());
            p
        };
        let both = [
            owner(ConsentStatus::OptedIn),
            owner(ConsentStatus::OptedOut),
        ];
        let merged = Profile::of_address(Channel::Sms, "+31612345678", &both);
        assert_eq!(
            merged.consent[&Channel::Sms]["marketing"].status,
            ConsentStatus::OptedOut
        );
        assert_eq!(merged.timezone, None, "two owners: no single time zone");
        assert_eq!(merged.addresses.phone.as_deref(), Some("+31612345678"));
        let one = Profile::of_address(Channel::Sms, "+31612345678", &both[..1]);
        assert_eq!(
            one.consent[&Channel::Sms]["marketing"].status,
            ConsentStatus::OptedIn
        );
        assert_eq!(one.timezone.as_deref(), Some("Europe/Amsterdam"));
        assert!(
            Profile::of_address(Channel::Sms, "+31612345678", &[])
                .consent
                .is_empty()
        );
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

    const P256DH: &str =
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";

    fn subscription(endpoint: &str, p256dh: &str, auth: &str) -> serde_json::Value {
        serde_json::json!({"endpoint": endpoint, "expirationTime": null,
            "keys": {"p256dh": p256dh, "auth": auth}})
    }

    #[test]
    fn push_addresses_are_tokens_or_subscriptions_each_for_its_connector() {
        let sub = subscription(
            "https://push.example.net/s/1",
            P256DH,
            "BTBZMqHH6r4Tts7J_aSIgg",
        );
        let mut p = profile(serde_json::json!({"addresses": {"push": ["tok-1", sub]}})).unwrap();
        let a = &p.addresses;
        assert_eq!(
            a.for_connector(Channel::Push, PushFormat::Token).as_deref(),
            Some("tok-1")
        );
        let web = a.for_connector(Channel::Push, PushFormat::WebPush).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&web).unwrap();
        assert_eq!(parsed["endpoint"], "https://push.example.net/s/1");
        assert!(parsed.get("expirationTime").is_none(), "not passed on");

        assert!(p.addresses.forget(Channel::Push, &web));
        assert!(!p.addresses.forget(Channel::Push, &web), "already gone");
        assert_eq!(p.addresses.push, vec![PushAddress::Token("tok-1".into())]);
        assert!(p.addresses.forget(Channel::Push, "tok-1"));
        assert!(!p.addresses.has(Channel::Push));
    }

    #[test]
    fn malformed_subscriptions_are_refused_with_the_field() {
        let auth = "BTBZMqHH6r4Tts7J_aSIgg";
        for bad in [
            subscription("not a url", P256DH, auth),
            subscription("ftp://push.example.net/1", P256DH, auth),
            subscription("https://push.example.net/1", "AAAA", auth),
            subscription("https://push.example.net/1", P256DH, "short"),
        ] {
            let err = profile(serde_json::json!({"addresses": {"push": ["ok", bad]}})).unwrap_err();
            assert_eq!(err.code, "invalid_push_subscription", "{err:?}");
            assert_eq!(err.field, "addresses.push[1]");
        }
        let missing_keys =
            serde_json::json!({"addresses": {"push": [{"endpoint": "https://x.example/1"}]}});
        let err = serde_json::from_value::<Profile>(missing_keys)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not a Web Push subscription: missing field `keys`"),
            "{err}"
        );
    }
}

//! What segments select customers by, as short strings: one indexed row per
//! fact in both stores (`customer_traits`), so a segment is a few index
//! lookups, never a scan of profiles in Rust.
//!
//! `customer` (everyone), `country:NL`, `region:europe`, `locale:nl-nl`,
//! `language:nl`, `tag:vip`, `attr:tier=gold`, `has:email`,
//! `consent:email:marketing=opted_in`.

use super::{ConsentStatus, Profile};
use crate::message::Channel;
use serde_json::Value;
use std::collections::BTreeMap;

const MAX_TAGS: usize = 100;
const MAX_ATTRIBUTES: usize = 100;
const MAX_NAME: usize = 64;
const MAX_VALUE: usize = 256;

/// Every trait of a profile.
pub fn of(profile: &Profile) -> Vec<String> {
    let mut traits = vec!["customer".to_owned()];
    if let Some(country) = &profile.country {
        traits.push(format!("country:{country}"));
    }
    if let Some(region) = &profile.region {
        traits.push(format!("region:{region}"));
    }
    if let Some(locale) = &profile.locale {
        let locale = locale.to_ascii_lowercase();
        let language = locale.split(['-', '_']).next().unwrap_or_default();
        traits.push(format!("language:{language}"));
        traits.push(format!("locale:{locale}"));
    }
    traits.extend(profile.tags.iter().map(|tag| format!("tag:{tag}")));
    traits.extend(
        profile
            .attributes
            .iter()
            .filter_map(|(name, value)| Some(attribute(name, &scalar(value)?))),
    );
    for channel in Channel::ALL {
        if profile.addresses.has(channel) {
            traits.push(format!("has:{channel}"));
        }
    }
    for (channel, categories) in &profile.consent {
        for (category, consent) in categories {
            traits.push(consent_trait(*channel, category, consent.status));
        }
    }
    traits.sort();
    traits.dedup();
    traits
}

/// `attr:<name>=<value>`.
pub fn attribute(name: &str, value: &str) -> String {
    format!("attr:{name}={value}")
}

/// `consent:<channel>:<category>=opted_in|opted_out`.
pub fn consent_trait(channel: Channel, category: &str, status: ConsentStatus) -> String {
    let status = match status {
        ConsentStatus::OptedIn => "opted_in",
        ConsentStatus::OptedOut => "opted_out",
    };
    format!("consent:{channel}:{category}={status}")
}

/// An attribute value as segments compare it: strings as they are,
/// numbers and booleans in their JSON spelling.
pub fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Tags and attributes a profile may hold: bounded, and values a segment
/// can compare. The error names the field.
pub fn check(
    tags: &[String],
    attributes: &BTreeMap<String, Value>,
) -> Result<(), (String, String)> {
    if tags.len() > MAX_TAGS {
        return Err(("tags".into(), format!("at most {MAX_TAGS} tags")));
    }
    for (i, tag) in tags.iter().enumerate() {
        if !is_name(tag) {
            return Err((
                format!("tags[{i}]"),
                format!("a tag is 1-{MAX_NAME} letters, digits, '_', '-' or '.'"),
            ));
        }
    }
    if attributes.len() > MAX_ATTRIBUTES {
        return Err((
            "attributes".into(),
            format!("at most {MAX_ATTRIBUTES} attributes"),
        ));
    }
    for (name, value) in attributes {
        let field = format!("attributes.{name}");
        if !is_name(name) {
            return Err((
                field,
                format!("an attribute name is 1-{MAX_NAME} letters, digits, '_', '-' or '.'"),
            ));
        }
        match scalar(value) {
            Some(v) if v.len() <= MAX_VALUE && !v.chars().any(char::is_control) => {}
            Some(_) => {
                return Err((
                    field,
                    format!("at most {MAX_VALUE} bytes, no control characters"),
                ));
            }
            None => return Err((field, "a string, a number or a boolean".into())),
        }
    }
    Ok(())
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_has_one_trait_per_fact() {
        let profile: Profile = serde_json::from_value(serde_json::json!({
            "addresses": {"email": "ana@shop.example"},
            "country": "NL", "locale": "nl-NL", "tags": ["vip"],
            "attributes": {"tier": "gold", "orders": 3, "beta": true, "note": null},
            "consent": {"email": {"marketing": {"status": "opted_in", "at": "2026-01-01T00:00:00Z"}}},
        }))
        .unwrap();
        assert_eq!(
            of(&profile),
            [
                "attr:beta=true",
                "attr:orders=3",
                "attr:tier=gold",
                "consent:email:marketing=opted_in",
                "country:NL",
                "customer",
                "has:email",
                "language:nl",
                "locale:nl-nl",
                "tag:vip",
            ]
        );
    }

    #[test]
    fn tags_and_attributes_are_bounded_and_comparable() {
        let nested = BTreeMap::from([("tier".to_owned(), serde_json::json!({"a": 1}))]);
        assert_eq!(check(&[], &nested).unwrap_err().0, "attributes.tier");
        assert_eq!(
            check(&["bad tag".to_owned()], &BTreeMap::new())
                .unwrap_err()
                .0,
            "tags[0]"
        );
    }
}

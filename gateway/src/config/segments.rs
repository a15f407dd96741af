//! Segments: named groups of customers, written the same way in TOML
//! (`[segments.<name>]`) and over the API (`PUT /v1/segments/{name}`).
//! Every filter given must hold; a list inside one filter is "any of".

use crate::message::Channel;
use crate::routing::policy::CategoryConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    /// `countries = ["NL", "BE"]`: in any of these countries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub countries: Vec<String>,
    /// `regions = ["europe"]`: in any of these `[regions]` (by the
    /// profile's region, or its country's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// `locales = ["nl", "fr-BE"]`: a language matches every locale of it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locales: Vec<String>,
    /// `tags = ["vip"]`: every one of these tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// `attributes = { tier = "gold" }`: each attribute equal.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = Object)]
    pub attributes: BTreeMap<String, serde_json::Value>,
    /// `reachable = ["email"]`: an address on each of these channels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reachable: Vec<Channel>,
    /// `consent = [{ channel = "email", category = "marketing" }]`: may get
    /// the category on the channel (an opt-in category needs the opt-in).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consent: Vec<ConsentFilter>,
    /// `did = [{ event = "purchase", within = "30d" }]`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub did: Vec<EventFilter>,
    /// `did_not = [{ event = "purchase", within = "30d" }]`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub did_not: Vec<EventFilter>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentFilter {
    pub channel: Channel,
    pub category: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventFilter {
    pub event: String,
    /// `"30d"`
    #[serde(with = "super::journeys::duration")]
    #[schema(value_type = String)]
    pub within: i64,
}

/// Event and consent filters in one segment, together. Each becomes a
/// subquery; SQLite refuses an expression tree past about a thousand, and a
/// segment nobody can count would leave its broadcasts planning forever.
pub const MAX_FILTERS: usize = 32;
/// Entries of one list of values (countries, regions, locales, tags).
pub const MAX_VALUES: usize = 256;

/// What is wrong with a segment, each with the field it is about.
/// `events_kept` is `retention.events`: a segment cannot look back on
/// events older than that.
pub fn check(
    segment: &Segment,
    is_region: &dyn Fn(&str) -> bool,
    categories: &BTreeMap<String, CategoryConfig>,
    events_kept: i64,
) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let filters = segment.did.len() + segment.did_not.len() + segment.consent.len();
    if filters > MAX_FILTERS {
        problems.push((
            "did".to_owned(),
            format!("{filters} event and consent filters: at most {MAX_FILTERS} together"),
        ));
    }
    for (list, len) in [
        ("countries", segment.countries.len()),
        ("regions", segment.regions.len()),
        ("locales", segment.locales.len()),
        ("tags", segment.tags.len()),
        ("attributes", segment.attributes.len()),
        ("reachable", segment.reachable.len()),
    ] {
        if len > MAX_VALUES {
            problems.push((list.to_owned(), format!("at most {MAX_VALUES} entries")));
        }
    }
    if !problems.is_empty() {
        return problems;
    }
    for (i, country) in segment.countries.iter().enumerate() {
        if country.len() != 2 || !country.chars().all(|c| c.is_ascii_uppercase()) {
            problems.push((
                format!("countries[{i}]"),
                format!("{country:?} is not an ISO 3166-1 alpha-2 code like NL"),
            ));
        }
    }
    for (i, region) in segment.regions.iter().enumerate() {
        if !is_region(region) {
            problems.push((
                format!("regions[{i}]"),
                format!("unknown region {region:?}: not in [regions]"),
            ));
        }
    }
    for (i, locale) in segment.locales.iter().enumerate() {
        if !crate::locale::valid(locale) {
            problems.push((
                format!("locales[{i}]"),
                format!("{locale:?} is not a BCP 47 language tag like nl or nl-NL"),
            ));
        }
    }
    if let Err((field, why)) = crate::customer::traits::check(&segment.tags, &segment.attributes) {
        problems.push((field, why));
    }
    for (i, filter) in segment.consent.iter().enumerate() {
        if !categories.contains_key(&filter.category) {
            problems.push((
                format!("consent[{i}].category"),
                format!("unknown category {:?}", filter.category),
            ));
        }
    }
    for (list, filters) in [("did", &segment.did), ("did_not", &segment.did_not)] {
        for (i, filter) in filters.iter().enumerate() {
            if !crate::config::journeys::valid_name(&filter.event) {
                problems.push((
                    format!("{list}[{i}].event"),
                    format!("{:?} is not an event name", filter.event),
                ));
            }
            if filter.within > events_kept {
                problems.push((
                    format!("{list}[{i}].within"),
                    format!(
                        "longer than retention.events ({}): older events are not kept",
                        crate::routing::policy::humane(events_kept)
                    ),
                ));
            }
        }
    }
    problems
}

//! A segment's definition turned into what the store runs: traits every
//! member holds (or none may hold) and events they did or did not have.

use crate::config::segments::Segment;
use crate::customer::ConsentStatus;
use crate::customer::traits;
use crate::routing::policy::{ConsentMode, Policy};
use crate::store::segments::SegmentQuery;
use crate::store::{Store, StoreError};

/// Where a segment is defined.
pub enum Defined {
    Config(Segment),
    Api(Segment),
}

impl Defined {
    pub fn segment(&self) -> &Segment {
        match self {
            Defined::Config(s) | Defined::Api(s) => s,
        }
    }
}

/// The segment named `name`: from the configuration first (`routing`, as
/// of the latest reload), else as defined over the API in the store.
pub async fn find(
    store: &dyn Store,
    routing: &crate::live::Routing,
    name: &str,
) -> Result<Option<Defined>, StoreError> {
    if let Some(segment) = routing.segments.get(name) {
        return Ok(Some(Defined::Config(segment.clone())));
    }
    let Some(stored) = store.segment(name).await? else {
        return Ok(None);
    };
    let segment = serde_json::from_str(&stored)
        .map_err(|e| StoreError::Corrupt(format!("segment {name}: {e}")))?;
    Ok(Some(Defined::Api(segment)))
}

/// The store's query for `segment` as of `now` (event windows end now).
pub fn query(segment: &Segment, policy: &Policy, now: i64) -> SegmentQuery {
    let mut all_of: Vec<Vec<String>> = Vec::new();
    let mut none_of = Vec::new();
    let mut any = |group: Vec<String>| {
        if !group.is_empty() {
            all_of.push(group);
        }
    };
    any(segment
        .countries
        .iter()
        .map(|c| format!("country:{c}"))
        .collect());
    // A region holds customers placed in it, and those whose country is in it.
    any(segment
        .regions
        .iter()
        .flat_map(|region| {
            let countries = policy
                .regions
                .iter()
                .filter(move |(_, r)| *r == region)
                .map(|(country, _)| format!("country:{country}"));
            std::iter::once(format!("region:{region}")).chain(countries)
        })
        .collect());
    any(segment
        .locales
        .iter()
        .map(|locale| {
            let locale = locale.to_ascii_lowercase();
            if locale.contains(['-', '_']) {
                format!("locale:{locale}")
            } else {
                format!("language:{locale}")
            }
        })
        .collect());
    for tag in &segment.tags {
        any(vec![format!("tag:{tag}")]);
    }
    for (name, value) in &segment.attributes {
        if let Some(value) = traits::scalar(value) {
            any(vec![traits::attribute(name, &value)]);
        }
    }
    for channel in &segment.reachable {
        any(vec![format!("has:{channel}")]);
    }
    for filter in &segment.consent {
        any(vec![format!("has:{}", filter.channel)]);
        let mode = policy.categories.get(&filter.category).map(|c| c.consent);
        match mode {
            Some(ConsentMode::OptIn) => any(vec![traits::consent_trait(
                filter.channel,
                &filter.category,
                ConsentStatus::OptedIn,
            )]),
            _ => none_of.push(traits::consent_trait(
                filter.channel,
                &filter.category,
                ConsentStatus::OptedOut,
            )),
        }
    }
    let since = |filters: &[crate::config::segments::EventFilter]| {
        filters
            .iter()
            .map(|f| (f.event.clone(), now.saturating_sub(f.within)))
            .collect()
    };
    SegmentQuery {
        all_of,
        none_of,
        did: since(&segment.did),
        did_not: since(&segment.did_not),
    }
}

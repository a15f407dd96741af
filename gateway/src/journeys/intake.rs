//! Events in: what `POST /v1/events` accepts. An event is checked as a
//! whole ([`check`], pure), then stored once per caller's key and credited
//! as a conversion where `[conversions]` names it ([`record`]). The HTTP
//! edge parses the body, answers, and wakes the runner.

use crate::config::conversions::Conversion;
use crate::customer::Invalid;
use crate::routing::policy::humane;
use crate::store::journeys::{EventInserted, NewEvent};
use crate::store::reports::NewConversion;
use crate::store::{Store, StoreError};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The largest `properties` object, as JSON.
pub const MAX_PROPERTIES_BYTES: usize = 16 * 1024;
/// Events in one batch.
pub const MAX_BATCH: usize = 1000;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventRequest {
    pub customer_id: String,
    /// `cart_abandoned`, `purchase`: 1-64 of A-Z a-z 0-9 _ . - :
    pub name: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub properties: Map<String, Value>,
    /// RFC 3339; default now.
    #[serde(default)]
    pub occurred_at: Option<String>,
    /// The same key names the same event: a retry stores nothing twice.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// An event ready to store, with the conversion it makes, if any.
pub struct Checked {
    event: NewEvent,
    conversion: Option<NewConversion>,
    /// Why the conversion has no value, when it has none.
    warning: Option<String>,
    /// Why the event starts no journey, when it came too late.
    late: Option<String>,
}

/// What storing one event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The stored event's id (the first one's, for a repeated key).
    pub id: String,
    pub duplicate: bool,
    /// Set when the event is a conversion recorded without value, and why.
    pub conversion_warning: Option<String>,
    /// Set when the event arrived too long after it occurred to start a
    /// journey (see [`too_late_to_start`]), and why.
    pub late_warning: Option<String>,
}

/// Why an event that occurred at `occurred_at` and arrived at
/// `received_at` starts no journey: it arrived more than `max_delay` after
/// it occurred. Such an event is still stored and applied: it ends runs
/// and counts for waits, judged by when it occurred. The runner and the
/// answer to `POST /v1/events` both ask this.
pub fn too_late_to_start(occurred_at: i64, received_at: i64, max_delay: i64) -> Option<String> {
    let late_by = received_at.saturating_sub(occurred_at);
    (late_by > max_delay).then(|| {
        format!(
            "arrived {} after it occurred, more than [journey_runner] max_event_delay ({}): \
             it starts no journey, but still ends runs and counts for waits",
            humane(late_by),
            humane(max_delay)
        )
    })
}

/// Check every event of a request; the first refusal names its field
/// (`events[3].name` in a batch). The event is the customer's fact and is
/// stored whatever its value says: a journey's exit must not hang on a
/// reporting setting, so a conversion without a usable value is credited
/// at none, with a warning.
pub fn check(
    requests: Vec<EventRequest>,
    batch: bool,
    caller: &str,
    now: i64,
    max_event_delay: i64,
    conversions: &BTreeMap<String, Conversion>,
) -> Result<Vec<Checked>, Invalid> {
    if requests.is_empty() || requests.len() > MAX_BATCH {
        return Err(invalid(
            "invalid_batch",
            "events".into(),
            format!("1-{MAX_BATCH} events"),
        ));
    }
    requests
        .into_iter()
        .enumerate()
        .map(|(i, request)| {
            let at = |field: &str| {
                if batch {
                    format!("events[{i}].{field}")
                } else {
                    field.to_owned()
                }
            };
            let value = conversions.get(&request.name).map(|c| {
                let value = c.value_of(&Value::Object(request.properties.clone()));
                (c, value)
            });
            let event = one(request, caller, now, &at)?;
            let (conversion, warning) = match value {
                None => (None, None),
                Some((config, value)) => {
                    let conversion = NewConversion {
                        event_id: event.id.clone(),
                        customer_id: event.customer_id.clone(),
                        name: event.name.clone(),
                        value: value.as_ref().ok().copied(),
                        currency: config.currency.clone(),
                        occurred_at: event.occurred_at,
                        window_ms: config.window,
                    };
                    (Some(conversion), value.err())
                }
            };
            let late = too_late_to_start(event.occurred_at, event.received_at, max_event_delay);
            Ok(Checked {
                event,
                conversion,
                warning,
                late,
            })
        })
        .collect()
}

/// Store the events (a repeated key stores nothing twice), then credit
/// their conversions; a retried batch credits the stored event, so a
/// failure between the two is mended by the platform's retry.
pub async fn record(store: &dyn Store, checked: Vec<Checked>) -> Result<Vec<Recorded>, StoreError> {
    let (events, rest): (Vec<NewEvent>, Vec<_>) = checked
        .into_iter()
        .map(|c| (c.event, (c.conversion, c.warning, c.late)))
        .unzip();
    let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    let inserted = store.record_events(events).await?;
    let mut recorded = Vec::with_capacity(ids.len());
    for ((id, inserted), (conversion, warning, late)) in ids.into_iter().zip(inserted).zip(rest) {
        let (id, duplicate) = match inserted {
            EventInserted::New => (id, false),
            EventInserted::Duplicate { id } => (id, true),
        };
        if let Some(mut conversion) = conversion {
            conversion.event_id.clone_from(&id);
            store.record_conversion(conversion).await?;
        }
        recorded.push(Recorded {
            id,
            duplicate,
            conversion_warning: warning
                .map(|why| format!("recorded as a conversion without value: {why}")),
            late_warning: late,
        });
    }
    Ok(recorded)
}

fn one(
    request: EventRequest,
    caller: &str,
    now: i64,
    at: &dyn Fn(&str) -> String,
) -> Result<NewEvent, Invalid> {
    crate::customer::check_id(&request.customer_id).map_err(|mut e| {
        e.field = at("customer_id");
        e
    })?;
    if !super::valid_name(&request.name) {
        return Err(invalid(
            "invalid_event_name",
            at("name"),
            "event names are 1-64 of A-Z a-z 0-9 _ . - :".into(),
        ));
    }
    if super::reserved_name(&request.name) {
        return Err(invalid(
            "reserved_event_name",
            at("name"),
            "names starting with `message.` are the gateway's own (provider reports, replies)"
                .into(),
        ));
    }
    let properties = Value::Object(request.properties).to_string();
    if properties.len() > MAX_PROPERTIES_BYTES {
        return Err(invalid(
            "properties_too_large",
            at("properties"),
            format!("properties are at most {MAX_PROPERTIES_BYTES} bytes of JSON"),
        ));
    }
    let occurred_at = match &request.occurred_at {
        Some(text) => text
            .parse::<jiff::Timestamp>()
            .map_err(|e| {
                invalid(
                    "invalid_time",
                    at("occurred_at"),
                    format!("occurred_at must be RFC 3339: {e}"),
                )
            })?
            .as_millisecond(),
        None => now,
    };
    if let Some(key) = &request.idempotency_key
        && !crate::send::keys::valid_key(key)
    {
        return Err(invalid(
            "invalid_key",
            at("idempotency_key"),
            "1-255 printable ASCII characters".into(),
        ));
    }
    Ok(NewEvent {
        id: format!("evt_{}", uuid::Uuid::now_v7().simple()),
        customer_id: request.customer_id,
        name: request.name,
        properties,
        occurred_at,
        received_at: now,
        idempotency_key: request
            .idempotency_key
            .map(|k| crate::send::keys::scoped(caller, &k)),
    })
}

fn invalid(code: &'static str, field: String, message: String) -> Invalid {
    Invalid {
        code,
        field,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn request(customer_id: &str, name: &str) -> EventRequest {
        EventRequest {
            customer_id: customer_id.into(),
            name: name.into(),
            properties: Map::new(),
            occurred_at: None,
            idempotency_key: Some("k1".into()),
        }
    }

    #[test]
    fn a_refusal_names_the_event_of_a_batch_and_keys_are_the_callers() {
        let none = BTreeMap::new();
        let refused = check(
            vec![request("ada", "signed_up"), request("bo", "message.read")],
            true,
            "shop",
            1_000,
            DAY,
            &none,
        )
        .err()
        .unwrap();
        assert_eq!(
            (refused.code, refused.field.as_str()),
            ("reserved_event_name", "events[1].name")
        );
        let one = check(
            vec![request(".x", "signed_up")],
            false,
            "shop",
            1_000,
            DAY,
            &none,
        )
        .err()
        .unwrap();
        assert_eq!(one.field, "customer_id");
        assert_eq!(
            check(vec![], true, "shop", 1_000, DAY, &none)
                .err()
                .unwrap()
                .code,
            "invalid_batch"
        );
        let checked = check(
            vec![request("ada", "signed_up")],
            false,
            "shop",
            1_000,
            DAY,
            &none,
        )
        .ok()
        .unwrap();
        assert_eq!(
            checked[0].event.idempotency_key.as_deref(),
            Some("api:shop:k1")
        );
        assert_eq!(checked[0].event.occurred_at, 1_000);
    }

    #[test]
    fn an_event_arriving_after_the_delay_starts_nothing_and_says_why() {
        assert_eq!(too_late_to_start(0, DAY, DAY), None, "exactly the delay");
        let why = too_late_to_start(0, 2 * DAY + 3_661_000, DAY).unwrap();
        assert!(
            why.starts_with("arrived 2d 1h 1m 1s after it occurred"),
            "{why}"
        );
        assert!(why.contains("max_event_delay (1d)"), "{why}");
        // A clock ahead of ours: not late.
        assert_eq!(too_late_to_start(DAY, 0, DAY), None);
    }
}

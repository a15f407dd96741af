//! From a send request to a message ready to store: validation, the route
//! plan for customer sends, and the content each channel gets.

use super::idempotency;
use super::{ApiError, AppState};
use crate::message::{Channel, Content, ProviderTemplate};
use crate::routing::{self, Plan};
use crate::store::{DedupKey, NewDelivery, NewMessage};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The longest text accepted; Twilio's own limit for one SMS body.
const MAX_TEXT_CHARS: usize = 1600;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// With `to`: send to an address on this channel.
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub to: Option<Recipient>,
    /// With `category`: send to a customer on the channel their plan picks.
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    /// For customer sends: an explicit channel order, still subject to consent.
    #[serde(default)]
    pub channels: Option<Vec<Channel>>,
    pub content: ContentRequest,
    /// Same as the `Idempotency-Key` header.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// At most one message per recipient and key within `messages.dedup_window_secs`.
    #[serde(default)]
    pub dedup_key: Option<String>,
    /// `POST /v1/cancellations` with this key cancels the message while it is pending.
    #[serde(default)]
    pub cancel_key: Option<String>,
    /// RFC 3339: hold the message until then.
    #[serde(default)]
    pub send_at: Option<String>,
    /// Seconds, or a duration like `"2h"`: not delivered by then means `expired`.
    #[serde(default)]
    pub ttl: Option<Ttl>,
    /// Where status changes are posted (default: `callbacks.default_url`).
    #[serde(default)]
    pub callback_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Ttl {
    Seconds(u64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentRequest {
    /// The shared default; a channel's variant overrides it field by field.
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub html: Option<String>,
    #[serde(default)]
    pub email: Option<Variant>,
    #[serde(default)]
    pub sms: Option<Variant>,
    #[serde(default)]
    pub whatsapp: Option<Variant>,
    #[serde(default)]
    pub push: Option<Variant>,
    /// For every channel's connector; a variant's entries win.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub html: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub template: Option<ProviderTemplate>,
}

/// Bounds on what is handed to connectors as metadata.
const MAX_METADATA_ENTRIES: usize = 32;
const MAX_METADATA_KEY: usize = 64;
const MAX_METADATA_VALUE: usize = 1024;
const MAX_TEMPLATE_PARAMETERS: usize = 32;

fn check_metadata(field: &str, metadata: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if metadata.len() > MAX_METADATA_ENTRIES {
        return Err(ApiError::invalid(
            "invalid_metadata",
            field,
            format!("at most {MAX_METADATA_ENTRIES} entries"),
        ));
    }
    for (key, value) in metadata {
        let key_ok = (1..=MAX_METADATA_KEY).contains(&key.len())
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b));
        if !key_ok {
            return Err(ApiError::invalid(
                "invalid_metadata",
                &format!("{field}.{key}"),
                format!("keys are 1-{MAX_METADATA_KEY} characters of A-Z, a-z, 0-9, _ - . :"),
            ));
        }
        if value.chars().count() > MAX_METADATA_VALUE {
            return Err(ApiError::invalid(
                "invalid_metadata",
                &format!("{field}.{key}"),
                format!("values are at most {MAX_METADATA_VALUE} characters"),
            ));
        }
    }
    Ok(())
}

fn check_template(field: &str, template: &ProviderTemplate) -> Result<(), ApiError> {
    let invalid = |message: String| ApiError::invalid("invalid_template", field, message);
    if !(1..=512).contains(&template.name.len()) {
        return Err(invalid("name must be 1-512 characters".into()));
    }
    let language_ok = (2..=15).contains(&template.language.len())
        && template
            .language
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !language_ok {
        return Err(invalid("language must be a code like en_US".into()));
    }
    if template.parameters.len() > MAX_TEMPLATE_PARAMETERS
        || template
            .parameters
            .iter()
            .any(|p| p.chars().count() > MAX_METADATA_VALUE)
    {
        return Err(invalid(format!(
            "at most {MAX_TEMPLATE_PARAMETERS} parameters of at most {MAX_METADATA_VALUE} characters"
        )));
    }
    Ok(())
}

impl ContentRequest {
    fn variant(&self, channel: Channel) -> Option<&Variant> {
        match channel {
            Channel::Email => self.email.as_ref(),
            Channel::Sms => self.sms.as_ref(),
            Channel::Whatsapp => self.whatsapp.as_ref(),
            Channel::Push => self.push.as_ref(),
        }
    }

    /// The content `channel` gets: its variant over the shared default.
    pub fn for_channel(&self, channel: Channel) -> Result<Content, ApiError> {
        let variant = self.variant(channel);
        let pick = |own: Option<&Option<String>>, shared: &Option<String>| {
            own.and_then(|o| o.clone()).or_else(|| shared.clone())
        };
        let text = pick(variant.map(|v| &v.text), &self.text).ok_or_else(|| {
            ApiError::invalid(
                "missing_content",
                &format!("content.{channel}.text"),
                format!("no text for {channel}: give content.text or content.{channel}.text"),
            )
        })?;
        let field = if variant.is_some_and(|v| v.text.is_some()) {
            format!("content.{channel}.text")
        } else {
            "content.text".to_owned()
        };
        if text.trim().is_empty() {
            return Err(ApiError::invalid(
                "empty_text",
                &field,
                format!("{field} is empty"),
            ));
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(ApiError::invalid(
                "text_too_long",
                &field,
                format!("{field} exceeds {MAX_TEXT_CHARS} characters"),
            ));
        }
        check_metadata("content.metadata", &self.metadata)?;
        let mut metadata = self.metadata.clone();
        if let Some(variant) = variant {
            check_metadata(&format!("content.{channel}.metadata"), &variant.metadata)?;
            metadata.extend(variant.metadata.clone());
            if metadata.len() > MAX_METADATA_ENTRIES {
                return Err(ApiError::invalid(
                    "invalid_metadata",
                    &format!("content.{channel}.metadata"),
                    format!("at most {MAX_METADATA_ENTRIES} entries with content.metadata"),
                ));
            }
        }
        let template = variant.and_then(|v| v.template.clone());
        if let Some(template) = &template {
            check_template(&format!("content.{channel}.template"), template)?;
        }
        Ok(Content {
            subject: pick(variant.map(|v| &v.subject), &self.subject),
            text,
            html: pick(variant.map(|v| &v.html), &self.html),
            metadata,
            template,
        })
    }
}

/// The longest a message may be scheduled ahead.
const MAX_SCHEDULE_AHEAD_MS: i64 = 366 * 24 * 3600 * 1000;

/// A validated message and, for customer sends, its plan.
pub struct Composed {
    pub message: NewMessage,
    pub plan: Option<Plan>,
}

pub fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// Everything a request must satisfy before it is stored, and the plan for
/// customer sends. Reads the store (profile, recent messages) but writes nothing.
pub async fn compose(
    state: &AppState,
    request: SendRequest,
    now: i64,
) -> Result<Composed, ApiError> {
    for (field, value) in [
        ("dedup_key", &request.dedup_key),
        ("cancel_key", &request.cancel_key),
    ] {
        if value.as_deref().is_some_and(|k| !idempotency::valid_key(k)) {
            return Err(ApiError::invalid(
                "invalid_key",
                field,
                format!(
                    "{field} must be 1-{} printable ASCII characters",
                    idempotency::MAX_KEY_LEN
                ),
            ));
        }
    }
    let mut send_at = request
        .send_at
        .as_deref()
        .map(|text| {
            let at: jiff::Timestamp = text.parse().map_err(|e| {
                ApiError::invalid(
                    "invalid_send_at",
                    "send_at",
                    format!("{text:?} is not an RFC 3339 time: {e}"),
                )
            })?;
            let at = at.as_millisecond();
            if at > now.saturating_add(MAX_SCHEDULE_AHEAD_MS) {
                return Err(ApiError::invalid(
                    "invalid_send_at",
                    "send_at",
                    "send_at is more than 366 days ahead",
                ));
            }
            Ok(at)
        })
        .transpose()?;
    let expires_at = request
        .ttl
        .as_ref()
        .map(|ttl| ttl_ms(ttl).map(|ms| now.saturating_add(ms)))
        .transpose()?;
    let callback_url = match request
        .callback_url
        .clone()
        .or_else(|| state.default_callback_url.clone())
    {
        Some(url) => {
            if !state.callbacks_enabled {
                return Err(ApiError::invalid(
                    "callbacks_disabled",
                    "callback_url",
                    "status callbacks need [callbacks].secret in the gateway's configuration",
                ));
            }
            crate::config::callback_url(&url)
                .map_err(|e| ApiError::invalid("invalid_callback_url", "callback_url", e))?;
            Some(url)
        }
        None => None,
    };

    let route = match (&request.customer_id, &request.channel) {
        (Some(customer_id), None) => customer_route(state, &request, customer_id, now).await?,
        (None, Some(channel)) => address_route(state, &request, channel)?,
        _ => {
            return Err(ApiError::invalid(
                "invalid_recipient",
                "customer_id",
                "give either customer_id and category, or channel and to",
            ));
        }
    };
    if let Some(deferred) = route.plan.as_ref().and_then(|p| p.deferred_until) {
        send_at = Some(send_at.unwrap_or(now).max(deferred.as_millisecond()));
    }
    if let (Some(expires), Some(send_at)) = (expires_at, send_at)
        && send_at >= expires
    {
        return Err(ApiError::invalid(
            "invalid_ttl",
            "ttl",
            "ttl runs out before the message may be sent",
        ));
    }
    let plan_json = route
        .plan
        .as_ref()
        .map(|p| serde_json::to_string(p).map_err(ApiError::internal))
        .transpose()?;
    Ok(Composed {
        message: NewMessage {
            id: format!("msg_{}", uuid::Uuid::now_v7().simple()),
            channel: route.channel,
            recipient: route.recipient,
            scope: route.scope,
            content: route.content,
            created_at: now,
            send_at,
            expires_at,
            cancel_key: request.cancel_key,
            dedup: request.dedup_key.map(|key| DedupKey {
                key,
                expires_at: now.saturating_add(secs_to_ms(state.messages.dedup_window_secs)),
            }),
            idempotency: None,
            callback_url,
            customer_id: request.customer_id,
            category: request.category,
            plan: plan_json,
            suppressed: route
                .plan
                .as_ref()
                .and_then(|p| p.suppressed.as_ref())
                .map(|s| format!("{}: {}", s.reason, s.detail)),
            deliveries: route.deliveries,
        },
        plan: route.plan,
    })
}

/// Where and what a message goes: the deliveries, in order.
struct Route {
    channel: Channel,
    recipient: String,
    scope: String,
    content: Content,
    deliveries: Vec<NewDelivery>,
    plan: Option<Plan>,
}

/// `channel` + `to`: every connector of that channel, in failover order.
fn address_route(
    state: &AppState,
    request: &SendRequest,
    channel: &str,
) -> Result<Route, ApiError> {
    if request.category.is_some() || request.channels.is_some() {
        return Err(ApiError::invalid(
            "invalid_recipient",
            "category",
            "category and channels apply to customer sends (customer_id)",
        ));
    }
    let channel: Channel = channel
        .parse()
        .map_err(|e: String| ApiError::invalid("unknown_channel", "channel", e))?;
    let connectors = state
        .routes
        .get(&channel)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            ApiError::invalid(
                "channel_unavailable",
                "channel",
                format!("no connector is configured for channel {channel}"),
            )
        })?;
    let to = request
        .to
        .as_ref()
        .ok_or_else(|| ApiError::invalid("missing_recipient", "to", "channel sends need to"))?;
    let (address, scope) = match channel {
        Channel::Sms | Channel::Whatsapp => {
            let phone = to.phone.as_deref().ok_or_else(|| {
                ApiError::invalid(
                    "missing_phone",
                    "to.phone",
                    format!("{channel} needs to.phone"),
                )
            })?;
            let phone = e164(phone)?;
            (phone.clone(), format!("phone:{phone}"))
        }
        Channel::Email => {
            let email = to.email.as_deref().ok_or_else(|| {
                ApiError::invalid("missing_email", "to.email", "email needs to.email")
            })?;
            if !email_address::EmailAddress::is_valid(email) {
                return Err(ApiError::invalid(
                    "invalid_email",
                    "to.email",
                    format!("{email:?} is not an email address"),
                ));
            }
            (
                email.to_owned(),
                format!("email:{}", email.to_ascii_lowercase()),
            )
        }
        Channel::Push => {
            return Err(ApiError::invalid(
                "channel_unavailable",
                "channel",
                "push goes to customers' devices: send by customer_id",
            ));
        }
    };
    Ok(Route {
        channel,
        recipient: address.clone(),
        scope,
        content: request.content.for_channel(channel)?,
        deliveries: connectors
            .iter()
            .map(|connector| NewDelivery {
                channel,
                connector: connector.clone(),
                address: address.clone(),
                content: None,
            })
            .collect(),
        plan: None,
    })
}

/// `customer_id` + `category`: the planner picks the channels.
async fn customer_route(
    state: &AppState,
    request: &SendRequest,
    customer_id: &str,
    now: i64,
) -> Result<Route, ApiError> {
    if request.to.is_some() {
        return Err(ApiError::invalid(
            "invalid_recipient",
            "to",
            "give customer_id or to, not both",
        ));
    }
    let category = request.category.as_deref().ok_or_else(|| {
        ApiError::invalid(
            "missing_category",
            "category",
            "customer sends need a category",
        )
    })?;
    let record = state
        .store
        .customer(customer_id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::invalid(
                "unknown_customer",
                "customer_id",
                format!("no customer {customer_id:?}"),
            )
        })?;
    let cap = state
        .policy
        .categories
        .get(category)
        .and_then(|c| c.frequency_cap.as_ref());
    let recent = match cap {
        Some(cap) => state
            .store
            .recent_messages(customer_id, category, now.saturating_sub(cap.per))
            .await
            .map_err(ApiError::internal)?,
        None => 0,
    };
    let now_ts = jiff::Timestamp::from_millisecond(now).map_err(ApiError::internal)?;
    let plan = routing::plan(
        routing::Request {
            category,
            channels: request.channels.as_deref(),
        },
        &record.profile,
        &state.policy,
        now_ts,
        recent,
    )
    .map_err(|e| {
        ApiError::invalid(
            "unknown_category",
            "category",
            format!("no category {:?} is configured", e.0),
        )
    })?;
    let mut deliveries = Vec::with_capacity(plan.deliveries.len());
    for planned in &plan.deliveries {
        deliveries.push(NewDelivery {
            channel: planned.channel,
            connector: planned.connector.clone(),
            address: planned.address.clone(),
            content: Some(request.content.for_channel(planned.channel)?),
        });
    }
    let first = deliveries.first();
    let content = match (&request.content.text, first) {
        (Some(_), Some(d)) => request.content.for_channel(d.channel)?,
        (_, Some(d)) => d.content.clone().unwrap_or_default(),
        (text, None) => Content {
            subject: request.content.subject.clone(),
            text: text.clone().unwrap_or_default(),
            html: request.content.html.clone(),
            metadata: request.content.metadata.clone(),
            template: None,
        },
    };
    Ok(Route {
        channel: first.map_or(Channel::Sms, |d| d.channel),
        recipient: format!("customer:{customer_id}"),
        scope: format!("customer:{customer_id}"),
        content,
        deliveries,
        plan: Some(plan),
    })
}

fn ttl_ms(ttl: &Ttl) -> Result<i64, ApiError> {
    let invalid = |why: String| ApiError::invalid("invalid_ttl", "ttl", why);
    let ms = match ttl {
        Ttl::Seconds(secs) => secs_to_ms(*secs),
        Ttl::Text(text) => {
            let duration: jiff::SignedDuration = text.parse().map_err(|e| {
                invalid(format!(
                    "{text:?} is not a duration like \"90s\" or \"2h\": {e}"
                ))
            })?;
            i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
        }
    };
    if ms <= 0 {
        return Err(invalid("ttl must be positive".into()));
    }
    Ok(ms)
}

/// A phone number in strict E.164, or the API's `invalid_phone` error.
pub fn e164(raw: &str) -> Result<String, ApiError> {
    crate::message::e164(raw).map_err(|e| ApiError::invalid("invalid_phone", "to.phone", e))
}

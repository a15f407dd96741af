//! The send use-case: from a send request to a message ready to store:
//! validation, the route plan (every send, by customer or by address, goes
//! through the planner), and the words each chosen channel gets
//! ([`words`]). The API, journeys and broadcasts all come here; what it
//! refuses is a [`SendError`], which each of them answers in its own terms.

mod content;
mod error;
pub mod keys;
pub mod on_behalf;
mod request;
mod time;
mod words;

pub use content::ContentRequest;
pub use error::SendError;
pub use request::{ConsentRequestBody, OfferGroup, Recipient, SendRequest};
pub use time::{secs_to_ms, send_at};
pub use words::UnsubscribeLinks;

use std::sync::Arc;

/// What composing a send reads besides the request: the live routing,
/// templates and connectors, the store, and the configuration's send rules.
pub struct Context {
    pub store: Arc<dyn crate::store::Store>,
    /// Routing, categories and connectors, as of the latest reload.
    pub live: Arc<crate::live::Live>,
    pub messages: crate::config::MessagesConfig,
    /// `[retention]`: no window a request asks for may look back further.
    pub retention: crate::config::RetentionConfig,
    /// Callbacks are signed; without a secret they are refused.
    pub callbacks_enabled: bool,
    pub default_callback_url: Option<String>,
    /// Origins callbacks may reach although they are not public.
    pub callback_hosts: Vec<crate::origin::Origin>,
    /// How one-click unsubscribe links (and preference-page links) are signed.
    pub unsubscribe: Option<UnsubscribeLinks>,
    /// `[inbox] reachable_within`: a feed opened longer ago than this is
    /// not a channel the plan may choose; `None` when the feed is off
    /// (then planning does not read when it was opened).
    pub feed_reachable_within: Option<i64>,
    /// Sends the gateway makes itself are counted like the API's.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Tells the dispatcher that new work is waiting.
    pub wake: Arc<tokio::sync::Notify>,
    pub clock: Arc<crate::clock::Clock>,
    /// Connectors whose circuit is open are planned last.
    pub health: Arc<crate::health::Health>,
}
use crate::customer::{Profile, address_key};
use crate::live::Routing;
use crate::message::{Channel, Content};
use crate::routing::policy::{CategoryConfig, DEFAULT_CATEGORY};
use crate::routing::{self, Plan};
use crate::store::{Audience, DedupKey, NewDelivery, NewMessage, PlanningFacts};
use crate::templates::Templates;
use words::{ChannelWords, Reader, Source, Words};

/// A validated message and its plan.
pub struct Composed {
    pub message: NewMessage,
    pub plan: Plan,
}

/// Everything a request must satisfy before it is stored, and its plan.
/// Reads the store (profiles, suppressions, recent messages) but writes nothing.
pub async fn compose(
    state: &Context,
    request: SendRequest,
    now: i64,
) -> Result<Composed, SendError> {
    for (field, value) in [
        ("dedup_key", &request.dedup_key),
        ("cancel_key", &request.cancel_key),
    ] {
        if value.as_deref().is_some_and(|k| !keys::valid_key(k)) {
            return Err(SendError::invalid(
                "invalid_key",
                field,
                format!(
                    "{field} must be 1-{} printable ASCII characters",
                    keys::MAX_KEY_LEN
                ),
            ));
        }
    }
    let mut send_at = request
        .send_at
        .as_deref()
        .map(|text| time::send_at(text, now))
        .transpose()?;
    let expires_at = request
        .ttl
        .as_ref()
        .map(|ttl| time::ttl_ms(ttl).map(|ms| now.saturating_add(ms)))
        .transpose()?;
    let callback_url = match request
        .callback_url
        .clone()
        .or_else(|| state.default_callback_url.clone())
    {
        Some(url) => {
            if !state.callbacks_enabled {
                return Err(SendError::invalid(
                    "callbacks_disabled",
                    "callback_url",
                    "status callbacks need [callbacks].secret in the gateway's configuration",
                ));
            }
            crate::config::callback_url(&url, &state.callback_hosts).map_err(|e| {
                SendError::invalid(
                    "invalid_callback_url",
                    "callback_url",
                    format!("callback_url {e}"),
                )
            })?;
            Some(url)
        }
        None => None,
    };

    // One version of routing, categories and templates for the whole send,
    // even if a reload lands meanwhile.
    let routing = state.live.current();
    let source = source(&routing.templates, &request)?;
    let route = match (&request.customer_id, &request.channel) {
        (Some(customer_id), None) => {
            customer_route(state, &routing, &request, source, customer_id, now).await?
        }
        (None, Some(channel)) => {
            address_route(state, &routing, &request, source, channel, now).await?
        }
        _ => {
            return Err(SendError::invalid(
                "invalid_recipient",
                "customer_id",
                "give either customer_id and category, or channel and to",
            ));
        }
    };
    let plan = route.plan;
    if let Some(deferred) = plan.deferred_until {
        send_at = Some(send_at.unwrap_or(now).max(deferred.as_millisecond()));
    }
    if let (Some(expires), Some(send_at)) = (expires_at, send_at)
        && send_at >= expires
    {
        return Err(SendError::invalid(
            "invalid_ttl",
            "ttl",
            "ttl runs out before the message may be sent",
        ));
    }
    let plan_json = serde_json::to_string(&plan).map_err(SendError::internal)?;
    let dedup = dedup(state, request.dedup_key, request.offer_group.as_ref(), now)?;
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
            dedup,
            idempotency: None,
            callback_url,
            customer_id: request.customer_id,
            category: Some(plan.category.clone()),
            plan: Some(plan_json),
            template: route.template.map(|t| t.to_string()),
            campaign: None,
            region: Some(plan.region.clone()),
            suppressed: plan
                .suppressed
                .as_ref()
                .map(|s| format!("{}: {}", s.reason, s.detail)),
            deliveries: route.deliveries,
        },
        plan,
    })
}

/// The message's dedup key: the request's `dedup_key` for
/// `messages.dedup_window_secs`, or its offer group for the group's window.
pub fn dedup(
    state: &Context,
    key: Option<String>,
    offer: Option<&request::OfferGroup>,
    now: i64,
) -> Result<Option<DedupKey>, SendError> {
    match (key, offer) {
        (Some(_), Some(_)) => Err(SendError::invalid(
            "invalid_key",
            "offer_group",
            "give dedup_key or offer_group, not both",
        )),
        (Some(key), None) => Ok(Some(DedupKey {
            key,
            expires_at: now.saturating_add(secs_to_ms(state.messages.dedup_window_secs)),
        })),
        (None, Some(offer)) => {
            let window = crate::routing::policy::parse_duration(&offer.window)
                .map_err(|e| SendError::invalid("invalid_offer_group", "offer_group.window", e))?;
            // The earlier message of the group must still be there to be found.
            if window > state.retention.messages {
                return Err(SendError::invalid(
                    "invalid_offer_group",
                    "offer_group.window",
                    format!(
                        "longer than retention.messages ({})",
                        crate::routing::policy::humane(state.retention.messages)
                    ),
                ));
            }
            let key = format!("offer:{}", offer.name);
            if !keys::valid_key(&key) {
                return Err(SendError::invalid(
                    "invalid_offer_group",
                    "offer_group.name",
                    "names are printable ASCII, at most a key's length",
                ));
            }
            Ok(Some(DedupKey {
                key,
                expires_at: now.saturating_add(window),
            }))
        }
        (None, None) => Ok(None),
    }
}

/// Where and what a message goes: the deliveries, in order, and why.
struct Route {
    channel: Channel,
    recipient: String,
    scope: String,
    content: Content,
    deliveries: Vec<NewDelivery>,
    plan: Plan,
    /// What a template rendered, per channel.
    template: Option<serde_json::Value>,
}

/// Refuse, before any member is planned, what every member of a broadcast
/// would be refused for: neither content nor template, or inline content
/// no channel it may use can send (empty, control characters, too long).
pub fn check_content(state: &Context, request: &SendRequest) -> Result<(), SendError> {
    let routing = state.live.current();
    let Source::Inline(content) = source(&routing.templates, request)? else {
        return Ok(());
    };
    let channels = request.channels.as_deref().unwrap_or(&Channel::ALL);
    let mut refusals = Vec::new();
    for &channel in channels {
        match content.for_channel(channel) {
            Ok(_) => {}
            // A channel without text of its own is skipped at planning time.
            Err(e) if e.code() == "missing_content" => refusals.push(e),
            Err(e) => return Err(e),
        }
    }
    if !refusals.is_empty() && refusals.len() == channels.len() {
        return Err(refusals.swap_remove(0));
    }
    Ok(())
}

/// The request's content, or the template it names with its data.
fn source<'a>(templates: &'a Templates, request: &'a SendRequest) -> Result<Source<'a>, SendError> {
    match (&request.content, &request.template) {
        (Some(content), None) => {
            if !request.data.is_empty() {
                return Err(SendError::invalid(
                    "invalid_content",
                    "data",
                    "data is for templates: give template with it",
                ));
            }
            Ok(Source::Inline(content))
        }
        (None, Some(name)) => {
            let template = templates.get(name).ok_or_else(|| {
                SendError::invalid(
                    "unknown_template",
                    "template",
                    format!("no template {name:?} is configured"),
                )
            })?;
            Ok(Source::Template {
                templates,
                template,
                data: &request.data,
            })
        }
        (Some(_), Some(_)) => Err(SendError::invalid(
            "invalid_content",
            "template",
            "give content or template, not both",
        )),
        (None, None) => Err(SendError::invalid(
            "missing_content",
            "content",
            "give content, or template and data",
        )),
    }
}

/// The send's category: the request's, else its template's; an address
/// send of inline content defaults to `transactional`.
fn category(request: &SendRequest, source: &Source<'_>) -> Result<Option<String>, SendError> {
    match (&request.category, source) {
        (Some(asked), Source::Template { template, .. }) if *asked != template.category => {
            Err(SendError::invalid(
                "category_mismatch",
                "category",
                format!(
                    "template {:?} is for category {:?}, not {asked:?}",
                    template.name, template.category
                ),
            ))
        }
        (Some(asked), _) => Ok(Some(asked.clone())),
        (None, Source::Template { template, .. }) => Ok(Some(template.category.clone())),
        (None, Source::Inline(_)) => Ok(None),
    }
}

/// `channel` + `to` (+ optional `category`, default `transactional`): planned
/// like a customer send of that one channel, with the consent of the
/// customers who own the address and the address's suppressions.
async fn address_route(
    state: &Context,
    routing: &Routing,
    request: &SendRequest,
    source: Source<'_>,
    channel: &str,
    now: i64,
) -> Result<Route, SendError> {
    if request.channels.is_some() {
        return Err(SendError::invalid(
            "invalid_recipient",
            "channels",
            "channels apply to customer sends (customer_id); an address send has its channel",
        ));
    }
    let channel: Channel = channel
        .parse()
        .map_err(|e: String| SendError::invalid("unknown_channel", "channel", e))?;
    if !channel.is_feed() && routing.routes.get(&channel).is_none_or(|c| c.is_empty()) {
        return Err(SendError::invalid(
            "channel_unavailable",
            "channel",
            format!("no connector is configured for channel {channel}"),
        ));
    }
    let to = request
        .to
        .as_ref()
        .ok_or_else(|| SendError::invalid("missing_recipient", "to", "channel sends need to"))?;
    let (address, scope) = match channel {
        Channel::Sms | Channel::Whatsapp => {
            let phone = to.phone.as_deref().ok_or_else(|| {
                SendError::invalid(
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
                SendError::invalid("missing_email", "to.email", "email needs to.email")
            })?;
            crate::customer::email(email)
                .map_err(|why| SendError::invalid("invalid_email", "to.email", why))?;
            (
                email.to_owned(),
                format!("email:{}", email.to_ascii_lowercase()),
            )
        }
        Channel::Push => {
            return Err(SendError::invalid(
                "channel_unavailable",
                "channel",
                "push goes to customers' devices: send by customer_id",
            ));
        }
        Channel::Inbox | Channel::InApp => {
            return Err(SendError::invalid(
                "channel_unavailable",
                "channel",
                format!("{channel} is the customer's own feed: send by customer_id"),
            ));
        }
    };
    let category = category(request, &source)?.unwrap_or_else(|| DEFAULT_CATEGORY.to_owned());
    let category_config = category_config(routing, &category)?;
    // A phone number is in E.164 already: its key needs no second parse.
    let key = match channel {
        Channel::Sms | Channel::Whatsapp => address.clone(),
        _ => address_key(channel, &address)
            .map_err(|e| SendError::invalid("invalid_recipient", "to", e))?,
    };
    let audience = Audience::Address {
        channel,
        address: key,
    };
    let facts = facts(state, routing, audience, &scope, &category, now).await?;
    let profile = Profile::of_address(channel, &address, &facts.profiles);
    let words = Words::new(
        source,
        (&category, category_config),
        reader(routing, request, &profile, None)?,
        state.unsubscribe.as_ref(),
        now,
    );
    // An address send says one thing on its one channel, sent or not.
    let said = words.for_channel(channel)?;
    let plan = plan_for(
        routing,
        routing::Request {
            category: &category,
            channels: Some(&[channel]),
            sms: said.segments,
            unhealthy: &state.health.unhealthy(),
        },
        &profile,
        &facts,
        now,
    )?;
    let template = words.summary(&[(channel, &said)]);
    Ok(Route {
        channel,
        recipient: address,
        scope,
        deliveries: plan
            .deliveries
            .iter()
            .map(|planned| NewDelivery {
                channel: planned.channel,
                connector: planned.connector.clone(),
                address: planned.address.clone(),
                content: None,
                cost: planned.cost,
                escalate_after: planned.escalate_after,
                ends_on_delivery: planned.ends_on_delivery,
            })
            .collect(),
        content: said.content,
        plan,
        template,
    })
}

/// `customer_id` + `category`: the planner picks the channels, and each
/// chosen channel gets its own words.
async fn customer_route(
    state: &Context,
    routing: &Routing,
    request: &SendRequest,
    source: Source<'_>,
    customer_id: &str,
    now: i64,
) -> Result<Route, SendError> {
    if request.to.is_some() {
        return Err(SendError::invalid(
            "invalid_recipient",
            "to",
            "give customer_id or to, not both",
        ));
    }
    let category = category(request, &source)?.ok_or_else(|| {
        SendError::invalid(
            "missing_category",
            "category",
            "customer sends need a category (or a template, which has one)",
        )
    })?;
    let category_config = category_config(routing, &category)?;
    let inline_shared = match &source {
        Source::Inline(content) => Some(content.shared()),
        Source::Template { .. } => None,
    };
    let scope = format!("customer:{customer_id}");
    let audience = Audience::Customer(customer_id.to_owned());
    let mut facts = facts(state, routing, audience, &scope, &category, now).await?;
    // The feed is an address only while the customer looks at it.
    let reachable = facts
        .feed_opened_at
        .zip(state.feed_reachable_within)
        .is_some_and(|(at, within)| at > now.saturating_sub(within));
    if let Some(profile) = facts.profiles.first_mut() {
        profile.addresses.feed = reachable.then(|| customer_id.to_owned());
    }
    let profile = facts.profiles.first().ok_or_else(|| {
        SendError::invalid(
            "unknown_customer",
            "customer_id",
            format!("no customer {customer_id:?}"),
        )
    })?;
    let words = Words::new(
        source,
        (&category, category_config),
        reader(routing, request, profile, Some(customer_id))?,
        state.unsubscribe.as_ref(),
        now,
    );
    // The SMS text first: the plan prices SMS by its segments. It only
    // fails the send if the plan picks SMS.
    let mut sms = Some(words.for_channel(Channel::Sms));
    let segments = sms
        .as_ref()
        .and_then(|s| s.as_ref().ok())
        .and_then(|s| s.segments);
    let mut plan = plan_for(
        routing,
        routing::Request {
            category: &category,
            channels: request.channels.as_deref(),
            sms: segments,
            unhealthy: &state.health.unhealthy(),
        },
        profile,
        &facts,
        now,
    )?;
    if plan.suppressed.is_none()
        && let Some(why) = routing.policy.control.withholds(customer_id, &category)
    {
        plan.suppressed = Some(routing::plan::Suppression {
            reason: "control_group",
            detail: why,
        });
        plan.deliveries.clear();
    }
    let mut said: Vec<(Channel, ChannelWords)> = Vec::new();
    let mut deliveries = Vec::with_capacity(plan.deliveries.len());
    for planned in &plan.deliveries {
        if !said.iter().any(|(c, _)| *c == planned.channel) {
            let words = match planned.channel {
                Channel::Sms => sms
                    .take()
                    .unwrap_or_else(|| words.for_channel(Channel::Sms))?,
                channel => words.for_channel(channel)?,
            };
            said.push((planned.channel, words));
        }
        let content = said
            .iter()
            .find(|(c, _)| *c == planned.channel)
            .map(|(_, w)| w.content.clone());
        deliveries.push(NewDelivery {
            channel: planned.channel,
            connector: planned.connector.clone(),
            address: planned.address.clone(),
            content,
            cost: planned.cost,
            escalate_after: planned.escalate_after,
            ends_on_delivery: planned.ends_on_delivery,
        });
    }
    let rendered: Vec<(Channel, &ChannelWords)> = said.iter().map(|(c, w)| (*c, w)).collect();
    let template = words.summary(&rendered);
    let content = match (said.first(), inline_shared) {
        (Some((_, first)), _) => first.content.clone(),
        (None, Some(shared)) => shared,
        (None, None) => Content::default(),
    };
    Ok(Route {
        channel: deliveries.first().map_or(Channel::Sms, |d| d.channel),
        recipient: scope.clone(),
        scope,
        content,
        deliveries,
        plan,
        template,
    })
}

/// Who reads the send; a `locale` that is not a BCP 47 tag is refused.
fn reader<'r>(
    routing: &Routing,
    request: &'r SendRequest,
    profile: &'r Profile,
    customer_id: Option<&'r str>,
) -> Result<Reader<'r>, SendError> {
    if let Some(asked) = &request.locale
        && !crate::locale::valid(&crate::locale::normalise(asked))
    {
        return Err(SendError::invalid(
            "invalid_locale",
            "locale",
            format!("{asked:?} is not a BCP 47 locale tag like nl or nl-BE"),
        ));
    }
    Ok(Reader {
        customer_id,
        locale: request.locale.as_deref().or(profile.locale.as_deref()),
        region: routing::plan::region(profile, &routing.policy).0,
    })
}

/// The category's rules, or `422` for a category nobody configured.
fn category_config<'r>(
    routing: &'r Routing,
    category: &str,
) -> Result<&'r CategoryConfig, SendError> {
    routing
        .policy
        .categories
        .get(category)
        .ok_or_else(|| unknown_category(category))
}

fn unknown_category(category: &str) -> SendError {
    SendError::invalid(
        "unknown_category",
        "category",
        format!("no category {category:?} is configured"),
    )
}

/// What the store knows that planning needs, in one read: the audience's
/// profiles, their addresses' suppressions and, under a frequency cap, what
/// they got lately.
async fn facts(
    state: &Context,
    routing: &Routing,
    audience: Audience,
    scope: &str,
    category: &str,
    now: i64,
) -> Result<PlanningFacts, SendError> {
    let cap = routing
        .policy
        .categories
        .get(category)
        .and_then(|c| c.frequency_cap.as_ref())
        .map(|cap| (category.to_owned(), now.saturating_sub(cap.per)));
    state
        .store
        .planning_facts(audience, scope, cap, state.feed_reachable_within.is_some())
        .await
        .map_err(SendError::from)
}

/// The plan for one audience's profile, from the facts read for it.
fn plan_for(
    routing: &Routing,
    request: routing::Request<'_>,
    profile: &Profile,
    facts: &PlanningFacts,
    now: i64,
) -> Result<Plan, SendError> {
    let now_ts = jiff::Timestamp::from_millisecond(now).map_err(SendError::internal)?;
    routing::plan(
        request,
        profile,
        &facts.suppressions,
        &routing.policy,
        now_ts,
        facts.recent,
    )
    .map_err(|e| unknown_category(&e.0))
}

/// A phone number in strict E.164, or the API's `invalid_phone` error.
pub fn e164(raw: &str) -> Result<String, SendError> {
    crate::phone::e164(raw).map_err(|e| SendError::invalid("invalid_phone", "to.phone", e))
}

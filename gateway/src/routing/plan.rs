//! Route planning: a pure function from (request, profile, suppressions,
//! policy, clock) to a [`Plan`] that says which channels will be tried, in
//! what order, and why every other channel was skipped.

use super::policy::{ConsentMode, Policy, Strategy};
use crate::customer::address_key;
use crate::customer::{ConsentStatus, Profile, Suppression as Listed};
use crate::message::Channel;
use crate::phone::phone_country;
use crate::sms::Segments;
use jiff::{Timestamp, ToSpan as _};
use serde::Serialize;
use std::collections::BTreeMap;

/// What the platform asked for.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub category: &'a str,
    /// An explicit channel order; still subject to consent.
    pub channels: Option<&'a [Channel]>,
    /// The SMS text's encoding and segments, when there is one: an SMS
    /// costs the connector's price per segment.
    pub sms: Option<Segments>,
    /// Connectors whose circuit is open ([`crate::health`]): tried after
    /// the channel's healthy ones.
    pub unhealthy: &'a [String],
}

/// The explanation and the deliveries of one message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub category: String,
    pub region: String,
    /// `profile`, `country`, `phone` or `default`.
    pub region_source: &'static str,
    /// `request`, `customer_preference`, `region` or `default`.
    pub order_source: &'static str,
    pub strategy: Strategy,
    /// Every channel considered, in the order considered.
    pub channels: Vec<ChannelDecision>,
    /// When quiet hours hold the message back, the time it may go.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deferred_until: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<Suppression>,
    #[serde(skip)]
    pub deliveries: Vec<PlannedDelivery>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelDecision {
    pub channel: Channel,
    /// `chosen`, or the reason the channel was skipped.
    pub decision: Reason,
    /// The connectors that serve the customer's region, in the order tried.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connectors: Vec<String>,
    /// `region` when the region orders this channel's connectors
    /// (`[routing.connectors.<region>]`), else `configured`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector_order: Option<&'static str>,
    /// This channel's connectors that do not serve the customer's region.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_in_region: Vec<String>,
    /// Connectors whose circuit is open (`connector_unhealthy`): in
    /// `connectors`, after the healthy ones.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unhealthy: Vec<String>,
    /// The sender each connector's pool gives this recipient, and the pool.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub senders: Vec<super::senders::Chosen>,
    /// The cheapest connector's price, times the segments for SMS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    /// SMS only: the text's encoding and segment count.
    #[serde(skip_serializing_if = "Option::is_none", flatten)]
    pub sms: Option<Segments>,
    /// A chosen channel with a chosen one after it: the next goes this long
    /// after this one unless the message is read (`"2h"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalate_after: Option<String>,
    /// Connectors of this channel whose send no report called delivered
    /// within this long hands the message to the plan's next delivery
    /// (`expect_report_within`), by name (`{"vonage": "10m"}`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub failover_on_silence: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Chosen,
    /// The customer has no address on this channel.
    NoAddress,
    /// The category needs an opt-in the customer has not given.
    NoConsent,
    /// The customer opted out of this channel for this category.
    OptedOut,
    /// No connector serves this channel.
    NoConnector,
    /// This channel's connectors all serve other regions than the customer's.
    NoConnectorInRegion,
    /// Every address on this channel is on the suppression list (a STOP
    /// from the number, a hard bounce, a dead token).
    SuppressedAddress,
    /// A feed channel (inbox, in-app) of a customer who has not opened
    /// their feed lately (`[inbox] reachable_within`): nobody would see it.
    Unreachable,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Chosen => "chosen",
            Reason::NoAddress => "no_address",
            Reason::NoConsent => "no_consent",
            Reason::OptedOut => "opted_out",
            Reason::NoConnector => "no_connector",
            Reason::NoConnectorInRegion => "no_connector_in_region",
            Reason::SuppressedAddress => "suppressed_address",
            Reason::Unreachable => "unreachable",
        }
    }

    fn explain(self) -> &'static str {
        match self {
            Reason::Chosen => "chosen",
            Reason::NoAddress => "no address on this channel",
            Reason::NoConsent => "the category needs an opt-in that was not given",
            Reason::OptedOut => "opted out of this channel for this category",
            Reason::NoConnector => "no connector serves this channel",
            Reason::NoConnectorInRegion => {
                "no connector of this channel serves the customer's region"
            }
            Reason::SuppressedAddress => "the address is on the suppression list",
            Reason::Unreachable => "the customer has not opened their feed lately",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suppression {
    /// `frequency_cap`; the channels' one reason when they all share it
    /// (`opted_out`, `suppressed_address`, ...); else `no_channel`.
    pub reason: &'static str,
    pub detail: String,
}

/// One delivery of the plan: a connector and the address it sends to.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedDelivery {
    pub channel: Channel,
    pub connector: String,
    pub address: String,
    /// This connector's price in the message's region (times the segments
    /// of an SMS), fixed now so a later price change rewrites no history.
    pub cost: Option<f64>,
    /// Set on the deliveries of a chosen channel that has a chosen channel
    /// after it: see [`ChannelDecision::escalate_after`].
    pub escalate_after: Option<i64>,
    /// The escalation is failover on silence: a report of delivery (not
    /// only a read) ends it ([`ChannelDecision::failover_on_silence`]).
    pub ends_on_delivery: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCategory(pub String);

/// Plan a message. `suppressed` holds the suppression-list entries of the
/// profile's addresses; `recent` is how many messages of this category the
/// customer got within the category's frequency-cap window.
pub fn plan(
    request: Request<'_>,
    profile: &Profile,
    suppressed: &[Listed],
    policy: &Policy,
    now: Timestamp,
    recent: u32,
) -> Result<Plan, UnknownCategory> {
    let category = policy
        .categories
        .get(request.category)
        .ok_or_else(|| UnknownCategory(request.category.to_owned()))?;
    let (region, region_source) = region(profile, policy);
    let (mut order, order_source) = order(request, profile, policy, &region);
    if policy.routing.strategy == Strategy::Cheapest {
        // Stable: equal costs keep the order's preference.
        order.sort_by(|a, b| {
            let cost = |c| cost(policy, c, &region, request.sms);
            let (a, b) = (cost(*a), cost(*b));
            a.unwrap_or(f64::MAX).total_cmp(&b.unwrap_or(f64::MAX))
        });
    }

    let mut channels = Vec::with_capacity(order.len());
    let mut deliveries = Vec::new();
    for channel in order {
        let in_region = policy.connectors_in(channel, &region);
        let mut routes = in_region.routes;
        let mut unhealthy = Vec::new();
        if !request.unhealthy.is_empty() {
            // Stable: the healthy keep their order, the unhealthy follow theirs.
            routes.sort_by_key(|c| request.unhealthy.contains(&c.name));
            unhealthy.extend(
                routes
                    .iter()
                    .filter(|c| request.unhealthy.contains(&c.name))
                    .map(|c| c.name.clone()),
            );
        }
        let routes = &routes;
        let connectors: Vec<String> = routes.iter().map(|c| c.name.clone()).collect();
        // A push connector takes one kind of push address (token or Web
        // Push subscription): each gets the customer's newest of its kind
        // that is not suppressed.
        // Most channels have no entry at all: then no address is parsed.
        let listed = suppressed.iter().any(|s| s.channel == channel);
        let is_suppressed = |address: &str| {
            if !listed {
                return false;
            }
            let Ok(key) = address_key(channel, address) else {
                return false;
            };
            suppressed.iter().any(|s| {
                s.channel == channel
                    && s.address == key
                    && (category.respect_suppressions || !s.reason.is_deliverability())
            })
        };
        let mut any_suppressed = false;
        let mut senders = Vec::new();
        let addressed: Vec<PlannedDelivery> = routes
            .iter()
            .filter_map(|c| {
                let candidates = profile.addresses.for_connector_all(channel, c.push_format);
                let address = candidates.into_iter().find(|a| {
                    let skip = is_suppressed(a);
                    any_suppressed |= skip;
                    !skip
                })?;
                let price = c.cost_in(&region);
                if matches!(channel, Channel::Sms | Channel::Whatsapp) {
                    senders.extend(super::senders::choose(c, &policy.regions, &address));
                }
                Some(PlannedDelivery {
                    channel,
                    connector: c.name.clone(),
                    address,
                    cost: match (channel, request.sms) {
                        (Channel::Sms, Some(sms)) => price.map(|p| p * f64::from(sms.segments)),
                        _ => price,
                    },
                    escalate_after: None,
                    ends_on_delivery: false,
                })
            })
            .collect();
        let consent = profile
            .consent
            .get(&channel)
            .and_then(|by_category| by_category.get(request.category))
            .map(|c| c.status);
        let decision = if consent == Some(ConsentStatus::OptedOut) {
            Reason::OptedOut
        } else if category.consent == ConsentMode::OptIn && consent != Some(ConsentStatus::OptedIn)
        {
            Reason::NoConsent
        } else if channel.is_feed() && !profile.addresses.has(channel) {
            Reason::Unreachable
        } else if !profile.addresses.has(channel) {
            Reason::NoAddress
        } else if connectors.is_empty() && !in_region.not_in_region.is_empty() {
            Reason::NoConnectorInRegion
        } else if connectors.is_empty() {
            Reason::NoConnector
        } else if addressed.is_empty() && any_suppressed {
            Reason::SuppressedAddress
        } else if addressed.is_empty() {
            Reason::NoAddress
        } else {
            Reason::Chosen
        };
        if decision == Reason::Chosen {
            deliveries.extend(addressed);
        }
        channels.push(ChannelDecision {
            channel,
            decision,
            cost: cost(policy, channel, &region, request.sms),
            connector_order: (!connectors.is_empty()).then_some(if in_region.region_ordered {
                "region"
            } else {
                "configured"
            }),
            not_in_region: in_region
                .not_in_region
                .iter()
                .map(|n| n.to_string())
                .collect(),
            connectors,
            unhealthy,
            senders: if decision == Reason::Chosen {
                senders
            } else {
                Vec::new()
            },
            sms: request.sms.filter(|_| channel == Channel::Sms),
            escalate_after: None,
            failover_on_silence: BTreeMap::new(),
        });
    }
    escalate(&mut channels, &mut deliveries, policy, category);
    failover_on_silence(&mut channels, &mut deliveries, policy, category);

    let suppressed = match &category.frequency_cap {
        Some(cap) if recent >= cap.max => Some(Suppression {
            reason: "frequency_cap",
            detail: format!(
                "{recent} {} messages within the cap of {} per {}",
                request.category,
                cap.max,
                super::policy::humane(cap.per)
            ),
        }),
        _ if deliveries.is_empty() => Some(no_channel(&channels)),
        _ => None,
    };
    let deferred_until = category
        .quiet_hours
        .and_then(|quiet| quiet_until(quiet, &profile.time_zone(), now));
    Ok(Plan {
        category: request.category.to_owned(),
        region,
        region_source,
        order_source,
        strategy: policy.routing.strategy,
        channels,
        deferred_until: if suppressed.is_some() {
            None
        } else {
            deferred_until
        },
        suppressed,
        deliveries,
    })
}

/// Escalation: a chosen channel followed by another chosen one hands over
/// after its `escalate_after` unless the message was read. Every delivery
/// of the channel carries it: whichever of its connectors sends, the
/// escalation starts from that send (a failure still fails over at once).
fn escalate(
    channels: &mut [ChannelDecision],
    deliveries: &mut [PlannedDelivery],
    policy: &Policy,
    category: &super::policy::CategoryConfig,
) {
    let chosen: Vec<usize> = (0..channels.len())
        .filter(|&i| channels[i].decision == Reason::Chosen)
        .collect();
    for pair in chosen.windows(2) {
        let channel = channels[pair[0]].channel;
        let Some(after) = policy.escalate_after(category, channel) else {
            continue;
        };
        channels[pair[0]].escalate_after = Some(super::policy::humane(after));
        for d in deliveries.iter_mut().filter(|d| d.channel == channel) {
            d.escalate_after = Some(after);
        }
    }
}

/// A delivery whose connector expects a report within a time, with a
/// delivery after it, hands the message on when none came: the same
/// machinery as escalation, ended by `delivered` instead of `read`. An
/// escalation the category set keeps its own rule; the last delivery has
/// nothing to hand on to.
fn failover_on_silence(
    channels: &mut [ChannelDecision],
    deliveries: &mut [PlannedDelivery],
    policy: &Policy,
    category: &super::policy::CategoryConfig,
) {
    if !category.failover_on_silence {
        return;
    }
    let last = deliveries.len().saturating_sub(1);
    for d in deliveries.iter_mut().take(last) {
        if d.escalate_after.is_some() || d.channel.is_feed() {
            continue;
        }
        let within = policy
            .connectors
            .iter()
            .find(|c| c.name == d.connector)
            .and_then(|c| c.expect_report_within);
        let Some(within) = within else { continue };
        d.escalate_after = Some(within);
        d.ends_on_delivery = true;
        if let Some(channel) = channels.iter_mut().find(|c| c.channel == d.channel) {
            channel
                .failover_on_silence
                .insert(d.connector.clone(), super::policy::humane(within));
        }
    }
}

/// Why nothing can go: the one reason every channel with an address was
/// skipped for, when they agree (an address send has one channel), else
/// `no_channel`.
fn no_channel(channels: &[ChannelDecision]) -> Suppression {
    let addressed: Vec<&ChannelDecision> = channels
        .iter()
        .filter(|c| c.decision != Reason::NoAddress)
        .collect();
    let shared = addressed
        .first()
        .filter(|first| addressed.iter().all(|c| c.decision == first.decision));
    match shared {
        Some(first) => Suppression {
            reason: first.decision.as_str(),
            detail: match addressed[..] {
                [only] => format!("{}: {}", only.channel, only.decision.explain()),
                _ => format!(
                    "every channel with an address: {}",
                    first.decision.explain()
                ),
            },
        },
        None => Suppression {
            reason: "no_channel",
            detail: "no channel has an address, consent and a connector".to_owned(),
        },
    }
}

/// The profile's region, else its country's, else its phone number's, else `default`.
pub fn region(profile: &Profile, policy: &Policy) -> (String, &'static str) {
    if let Some(region) = &profile.region {
        return (region.clone(), "profile");
    }
    if let Some(region) = profile.country.as_ref().and_then(|c| policy.regions.get(c)) {
        return (region.clone(), "country");
    }
    let phone = profile
        .addresses
        .phone
        .as_deref()
        .or(profile.addresses.whatsapp.as_deref());
    if let Some(region) = phone
        .and_then(phone_country)
        .and_then(|c| policy.regions.get(&c))
    {
        return (region.clone(), "phone");
    }
    ("default".to_owned(), "default")
}

/// The request's channels, else the customer's preference ahead of the
/// region's order, else the region's order, else the default.
fn order(
    request: Request<'_>,
    profile: &Profile,
    policy: &Policy,
    region: &str,
) -> (Vec<Channel>, &'static str) {
    let mut order = Vec::new();
    let mut push = |c: Channel| {
        if !order.contains(&c) {
            order.push(c);
        }
    };
    if let Some(channels) = request.channels {
        channels.iter().copied().for_each(&mut push);
        return (order, "request");
    }
    let (base, source) = match policy.routing.regions.get(region) {
        Some(order) => (order, "region"),
        None => (&policy.routing.default, "default"),
    };
    let source = if profile.preferred_channels.is_empty() {
        source
    } else {
        "customer_preference"
    };
    profile
        .preferred_channels
        .iter()
        .copied()
        .for_each(&mut push);
    base.iter().copied().for_each(&mut push);
    (order, source)
}

/// What one message costs on `channel` with its cheapest connector that
/// serves the region: an SMS is billed per segment.
fn cost(policy: &Policy, channel: Channel, region: &str, sms: Option<Segments>) -> Option<f64> {
    // The cheapest does not depend on the order: no list is built.
    let price = policy
        .connectors
        .iter()
        .filter(|c| c.channel == channel && c.serves(region))
        .filter_map(|c| c.cost_in(region))
        .min_by(f64::total_cmp)?;
    match (channel, sms) {
        (Channel::Sms, Some(sms)) => Some(price * f64::from(sms.segments)),
        _ => Some(price),
    }
}

/// The end of the quiet window `now` falls in, in the customer's zone, or
/// `None` when `now` is outside it. DST-correct: the end is a local time.
fn quiet_until(
    quiet: super::policy::QuietHours,
    tz: &jiff::tz::TimeZone,
    now: Timestamp,
) -> Option<Timestamp> {
    let local = now.to_zoned(tz.clone());
    let time = local.time();
    let wraps = quiet.start > quiet.end;
    let inside = if wraps {
        time >= quiet.start || time < quiet.end
    } else {
        time >= quiet.start && time < quiet.end
    };
    if !inside {
        return None;
    }
    let mut date = local.date();
    if wraps && time >= quiet.start {
        date = date.checked_add(1.day()).ok()?;
    }
    date.to_datetime(quiet.end)
        .to_zoned(tz.clone())
        .ok()
        .map(|z| z.timestamp())
}

#[cfg(test)]
mod tests;

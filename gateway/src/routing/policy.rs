//! The operator's routing policy, from `[regions]`, `[routing]`,
//! `[categories.*]` and each connector's `cost`.

use crate::message::Channel;
use jiff::civil::Time;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// `[routing]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// `default = ["email", "push", "sms"]`: the order where no region order applies.
    #[serde(default = "default_order")]
    pub default: Vec<Channel>,
    /// `strategy = "ordered"` (or `"cheapest"`: the cheapest channel first, order breaks ties).
    #[serde(default)]
    pub strategy: Strategy,
    /// `[routing.regions] LATAM = ["whatsapp", "sms", "email"]`
    #[serde(default)]
    pub regions: BTreeMap<String, Vec<Channel>>,
    /// `[routing.connectors.EU] sms = ["vonage", "twilio"]`: in a region,
    /// a channel's connectors in this order first, then the others that
    /// serve the region, in the order of `[[connectors]]`.
    #[serde(default)]
    pub connectors: BTreeMap<String, BTreeMap<Channel, Vec<String>>>,
    /// `escalate_after = { inbox = "2h", email = "1d" }`: once a message
    /// went on this channel, the plan's next channel goes this long after
    /// unless the message was read by then (the read cancels it). Without,
    /// the next channel goes only when this one fails.
    #[serde(default)]
    pub escalate_after: EscalateAfter,
}

/// Channel to milliseconds, written as durations (`"2h"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "BTreeMap<Channel, String>")]
pub struct EscalateAfter(pub BTreeMap<Channel, i64>);

impl TryFrom<BTreeMap<Channel, String>> for EscalateAfter {
    type Error = String;

    fn try_from(written: BTreeMap<Channel, String>) -> Result<Self, Self::Error> {
        written
            .into_iter()
            .map(|(channel, text)| {
                parse_duration(&text)
                    .map(|ms| (channel, ms))
                    .map_err(|e| format!("{channel}: {e}"))
            })
            .collect::<Result<_, _>>()
            .map(EscalateAfter)
    }
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            default: default_order(),
            strategy: Strategy::Ordered,
            regions: BTreeMap::new(),
            connectors: BTreeMap::new(),
            escalate_after: EscalateAfter::default(),
        }
    }
}

fn default_order() -> Vec<Channel> {
    vec![
        Channel::Email,
        Channel::Push,
        Channel::Sms,
        Channel::Whatsapp,
    ]
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    #[default]
    Ordered,
    Cheapest,
}

/// `[categories.<name>]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryConfig {
    /// `consent = "opt-in"`: needs an explicit opt-in per channel; `"opt-out"`: allowed unless opted out.
    pub consent: ConsentMode,
    /// `quiet_hours = "21:00-08:00"`: in the customer's local time; messages are deferred, not dropped.
    #[serde(default)]
    pub quiet_hours: Option<QuietHours>,
    /// `frequency_cap = { max = 3, per = "7d" }`: messages of this category per customer, all channels together.
    #[serde(default)]
    pub frequency_cap: Option<FrequencyCap>,
    /// `respect_suppressions = false`: still send to addresses suppressed for
    /// deliverability (hard bounces, complaints, dead tokens), e.g. password
    /// resets. Opt-outs (STOP) and staff suppressions hold regardless.
    #[serde(default = "yes")]
    pub respect_suppressions: bool,
    /// `max_segments = 3`: an SMS text longer than this many segments is
    /// refused (`422`) rather than billed.
    #[serde(default)]
    pub max_segments: Option<u32>,
    /// `smart_encoding = true`: typographic quotes, dashes, ellipses and odd
    /// spaces become their GSM-7 look-alikes when that keeps an SMS in
    /// GSM-7 (160 characters a segment instead of 70).
    #[serde(default)]
    pub smart_encoding: bool,
    /// `sms_footer.NA = { default = "Reply STOP to opt out" }`: region (or
    /// `default`) to locale (or `default`) to a line added to every SMS of
    /// the category, in the customer's language.
    #[serde(default)]
    pub sms_footer: BTreeMap<String, BTreeMap<String, String>>,
    /// `escalate_after = { inbox = "30m" }`: this category's own
    /// escalation per channel, over `[routing] escalate_after`.
    #[serde(default)]
    pub escalate_after: EscalateAfter,
    /// `failover_on_silence = true`: a connector's `expect_report_within`
    /// holds for this category; `false` for messages that must not arrive
    /// twice (a late report after the failover means both went).
    #[serde(default = "yes")]
    pub failover_on_silence: bool,
    /// `title = { en = "Offers", nl = "Aanbiedingen" }`: the category's name
    /// on the customer's preference page, per locale (`en` when theirs is missing).
    #[serde(default)]
    pub title: BTreeMap<String, String>,
    /// `description = { en = "Deals and new arrivals, at most weekly" }`.
    #[serde(default)]
    pub description: BTreeMap<String, String>,
}

fn yes() -> bool {
    true
}

impl CategoryConfig {
    /// What `transactional` means when the configuration does not say:
    /// sent unless opted out, no quiet hours, no cap. Address sends default to it.
    pub fn transactional() -> Self {
        CategoryConfig {
            consent: ConsentMode::OptOut,
            quiet_hours: None,
            frequency_cap: None,
            respect_suppressions: true,
            max_segments: None,
            smart_encoding: false,
            sms_footer: BTreeMap::new(),
            escalate_after: EscalateAfter::default(),
            failover_on_silence: true,
            title: BTreeMap::new(),
            description: BTreeMap::new(),
        }
    }
}

impl CategoryConfig {
    /// The SMS footer for a customer in `region` reading the first of
    /// `locales` the footer has, else its `default`.
    pub fn sms_footer(&self, region: &str, locales: &[String]) -> Option<&str> {
        let by_locale = self
            .sms_footer
            .get(region)
            .or_else(|| self.sms_footer.get("default"))?;
        locales
            .iter()
            .find_map(|l| by_locale.get(l))
            .or_else(|| by_locale.get("default"))
            .map(String::as_str)
    }
}

/// The category address sends take when the request names none.
pub const DEFAULT_CATEGORY: &str = "transactional";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ConsentMode {
    #[serde(rename = "opt-in")]
    OptIn,
    #[serde(rename = "opt-out")]
    OptOut,
}

/// A daily window in local time; it may wrap midnight (`21:00-08:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct QuietHours {
    pub start: Time,
    pub end: Time,
}

impl TryFrom<String> for QuietHours {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let invalid = || format!("invalid quiet hours {value:?}: expected HH:MM-HH:MM");
        let (start, end) = value.split_once('-').ok_or_else(invalid)?;
        let parse = |t: &str| -> Result<Time, String> {
            let (h, m) = t.trim().split_once(':').ok_or_else(invalid)?;
            let (h, m): (i8, i8) = (
                h.parse().map_err(|_| invalid())?,
                m.parse().map_err(|_| invalid())?,
            );
            Time::new(h, m, 0, 0).map_err(|_| invalid())
        };
        let (start, end) = (parse(start)?, parse(end)?);
        if start == end {
            return Err(format!(
                "invalid quiet hours {value:?}: start and end are equal"
            ));
        }
        Ok(QuietHours { start, end })
    }
}

impl fmt::Display for QuietHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}",
            self.start.strftime("%H:%M"),
            self.end.strftime("%H:%M")
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrequencyCap {
    pub max: u32,
    /// A duration: `"7d"`, `"24h"`.
    #[serde(deserialize_with = "duration_ms")]
    pub per: i64,
}

pub(crate) fn duration_ms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

/// A positive duration like `"7d"`, `"24h"` or `"90s"`, in milliseconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let span: jiff::Span = text
        .parse()
        .map_err(|e| format!("invalid duration {text:?}: {e}"))?;
    let duration = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|e| format!("invalid duration {text:?}: {e}"))?;
    let ms = duration.as_millis();
    if ms <= 0 {
        return Err(format!("duration {text:?} must be positive"));
    }
    Ok(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// A duration for people, in the form [`parse_duration`] reads back:
/// largest units first, `"7d"`, `"1d 1h"`, `"1m 30s"`, `"250ms"`.
pub fn humane(ms: i64) -> String {
    let mut rest = ms;
    let mut parts = Vec::new();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if rest >= size {
            parts.push(format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    if parts.is_empty() {
        "0s".to_owned()
    } else {
        parts.join(" ")
    }
}

/// Everything planning needs from the configuration, in lookup-friendly form.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Country (ISO 3166 alpha-2) to region.
    pub regions: BTreeMap<String, String>,
    pub routing: RoutingConfig,
    pub categories: BTreeMap<String, CategoryConfig>,
    /// Connectors in failover order, with their channel and cost per region.
    pub connectors: Vec<ConnectorRoute>,
    /// `[inbox] in_app_ttl`: an in-app message unseen this long is gone,
    /// and the plan's next channel goes.
    pub in_app_ttl: i64,
    /// `[experiments] control_group`: who never gets which categories.
    pub control: super::control::ControlGroup,
}

impl Policy {
    /// How long after a message went on `channel` in `category` its next
    /// channel follows unless it was read (seen, in-app); `None`: only
    /// when this one fails. The category's own setting wins over routing's.
    pub fn escalate_after(&self, category: &CategoryConfig, channel: Channel) -> Option<i64> {
        let configured = category
            .escalate_after
            .0
            .get(&channel)
            .or_else(|| self.routing.escalate_after.0.get(&channel))
            .copied();
        match channel {
            // Unseen within its ttl it is gone: the next channel goes then at the latest.
            Channel::InApp => Some(configured.map_or(self.in_app_ttl, |c| c.min(self.in_app_ttl))),
            _ => configured,
        }
    }
}

/// A channel's connectors for a customer's region, in the order they are
/// tried, and why that order.
#[derive(Debug)]
pub struct RegionConnectors<'a> {
    pub routes: Vec<&'a ConnectorRoute>,
    /// The region's own order (`[routing.connectors.<region>]`) applies.
    pub region_ordered: bool,
    /// Connectors of the channel that do not serve the region.
    pub not_in_region: Vec<&'a str>,
}

impl Policy {
    /// The connectors of `channel` that serve `region`, the region's order
    /// first, then the configured order.
    pub fn connectors_in(&self, channel: Channel, region: &str) -> RegionConnectors<'_> {
        let of_channel = || self.connectors.iter().filter(move |c| c.channel == channel);
        let order = self
            .routing
            .connectors
            .get(region)
            .and_then(|by_channel| by_channel.get(&channel));
        let mut routes: Vec<&ConnectorRoute> = order
            .into_iter()
            .flatten()
            .filter_map(|name| of_channel().find(|c| &c.name == name && c.serves(region)))
            .collect();
        let listed = routes.len();
        for c in of_channel().filter(|c| c.serves(region)) {
            if !routes[..listed].iter().any(|r| r.name == c.name) {
                routes.push(c);
            }
        }
        RegionConnectors {
            routes,
            region_ordered: listed > 0,
            not_in_region: of_channel()
                .filter(|c| !c.serves(region))
                .map(|c| c.name.as_str())
                .collect(),
        }
    }
}

impl Policy {
    /// A profile names only regions and categories this configuration has:
    /// a consent for a category nobody configured would never be asked.
    pub fn admits(
        &self,
        profile: &crate::customer::Profile,
    ) -> Result<(), crate::customer::Invalid> {
        use crate::customer::Invalid;
        if let Some(region) = &profile.region
            && !self.regions.values().any(|r| r == region)
            && !self.routing.regions.contains_key(region)
        {
            return Err(Invalid {
                code: "unknown_region",
                field: "region".into(),
                message: format!("no region {region:?} in [regions]"),
            });
        }
        for (channel, by_category) in &profile.consent {
            if let Some(category) = by_category
                .keys()
                .find(|c| !self.categories.contains_key(*c))
            {
                return Err(Invalid {
                    code: "unknown_category",
                    field: format!("consent.{channel}.{category}"),
                    message: format!("no category {category:?} is configured"),
                });
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct ConnectorRoute {
    pub name: String,
    pub channel: Channel,
    /// Region (or `default`) to price per message.
    pub cost: BTreeMap<String, f64>,
    /// Which push addresses it takes (push connectors only).
    pub push_format: crate::customer::PushFormat,
    /// The regions whose customers it serves; `None`: every region.
    pub regions: Option<Vec<String>>,
    /// Senders per destination country, region or `default`
    /// ([`super::senders`]).
    pub senders: BTreeMap<String, Vec<String>>,
    /// Failover on silence: the plan's next delivery goes this long (ms)
    /// after a send no report called delivered.
    pub expect_report_within: Option<i64>,
}

impl ConnectorRoute {
    pub fn serves(&self, region: &str) -> bool {
        self.regions
            .as_ref()
            .is_none_or(|regions| regions.iter().any(|r| r == region))
    }

    pub fn cost_in(&self, region: &str) -> Option<f64> {
        self.cost
            .get(region)
            .or_else(|| self.cost.get("default"))
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::{humane, parse_duration};

    #[test]
    fn durations_are_written_as_they_are_read() {
        for (ms, text) in [
            (7 * 86_400_000, "7d"),
            (90_061_000, "1d 1h 1m 1s"),
            (90_000, "1m 30s"),
            (1_250, "1s 250ms"),
        ] {
            assert_eq!(humane(ms), text);
            assert_eq!(parse_duration(text), Ok(ms));
        }
        assert_eq!(humane(0), "0s");
    }
}

//! `[journeys.<name>]`: what starts a journey, what ends it, and its steps.

use crate::message::Channel;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// One journey as the operator wrote it.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct JourneyConfig {
    /// The event that starts a run.
    pub trigger: String,
    /// `condition = "event.total > 50 and profile.country == 'NL'"`: a
    /// minijinja expression over `event` (the trigger's properties) and
    /// `profile`; without it every trigger starts a run.
    #[serde(default)]
    pub condition: Option<String>,
    /// `entry = "once"` (the default: one run per customer, ever) or a
    /// duration (`"30d"`): again once that long has passed since the last start.
    #[serde(default)]
    pub entry: Entry,
    /// Events that end a run at once, also in the middle of a wait; its
    /// messages not yet sent are cancelled.
    #[serde(default)]
    pub exit_on: Vec<String>,
    /// The event the journey is for: it ends the run as `converted`, its
    /// messages not yet sent cancelled.
    #[serde(default)]
    pub goal: Option<String>,
    /// `throttle = { max = 2, per = "1d" }`: at most `max` of this
    /// journey's messages to one customer within `per`, across their runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<Throttle>,
    pub steps: Vec<Step>,
}

/// A journey's own cap per customer, beside the categories' caps.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Throttle {
    pub max: u32,
    #[serde(with = "duration")]
    pub per: i64,
    /// What a `send` step over the throttle does.
    #[serde(default)]
    pub then: OverThrottle,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OverThrottle {
    /// Record the step as `throttled` and go on to the next one.
    #[default]
    Skip,
    /// Wait until the customer is under the throttle again, then send.
    Wait,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(try_from = "String", into = "String")]
pub enum Entry {
    #[default]
    Once,
    /// Milliseconds since the last start before the next may start.
    Again(i64),
}

impl TryFrom<String> for Entry {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        if text == "once" {
            return Ok(Entry::Once);
        }
        crate::routing::policy::parse_duration(&text)
            .map(Entry::Again)
            .map_err(|e| format!("entry is \"once\" or a cool-down like \"30d\": {e}"))
    }
}

impl From<Entry> for String {
    fn from(entry: Entry) -> String {
        match entry {
            Entry::Once => "once".into(),
            Entry::Again(ms) => format!("{}s", ms / 1000),
        }
    }
}

/// One step: an id other steps and branches refer to, and what it does.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub id: String,
    #[serde(flatten)]
    pub kind: StepKind,
}

#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Send a message, routed by the planner as any customer send.
    Send(SendStep),
    /// `wait = "7d"`, or `wait = { until = "09:00" }` in the customer's zone.
    Wait(WaitStep),
    /// Wait for an event, at most `timeout`; the step records which came first.
    WaitFor(WaitForStep),
    /// Go to `then` when `if` holds, else to `else` (default: the next step).
    Branch(BranchStep),
    /// Collect the customer's trigger events over a window into one digest
    /// that the next `send` renders once (`digest.events`, `digest.count`).
    Digest(DigestStep),
}

/// `digest = { window = "1h", key = "{{ event.thread_id }}", max = 50 }`.
///
/// The journey's first step: its trigger opens a digest, and the same
/// customer's further triggers with the same key join it until the window
/// (counted from when the first one occurred) ends or `max` are in; then
/// the run moves on. A trigger no open digest takes starts the next one,
/// whatever `entry` says.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DigestStep {
    #[serde(with = "duration")]
    pub window: i64,
    /// Digests are kept apart by this, rendered over `event` (default: one
    /// digest at a time per customer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default = "default_digest_max")]
    pub max: u32,
    /// `unread_only = true`: what the customer saw in their inbox before
    /// the digest closed is left out (events that occurred before they last
    /// opened it); with nothing left, the next send is skipped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unread_only: bool,
}

/// Events in one digest unless `max` says otherwise.
fn default_digest_max() -> u32 {
    50
}

/// The most events one digest may hold: each is kept in the run until
/// its message is made.
pub const MAX_DIGEST_EVENTS: u32 = 1000;

impl JourneyConfig {
    /// The journey's digest, when it starts with one.
    pub fn digest(&self) -> Option<&DigestStep> {
        match &self.steps.first()?.kind {
            StepKind::Digest(digest) => Some(digest),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SendStep {
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub template: Option<String>,
    /// Inline text, for a journey without templates.
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    /// Template data; the trigger's properties are there too, as `event`.
    #[serde(default)]
    pub data: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub channels: Option<Vec<Channel>>,
    /// At most one message of this group per customer per window, across
    /// journeys and channels.
    #[serde(default)]
    pub offer_group: Option<String>,
    #[serde(default, with = "optional_duration")]
    pub offer_window: Option<i64>,
    /// An experiment: each customer gets one of these, by weight, and keeps
    /// it across runs (see [`crate::journeys::experiments`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<Variant>,
    /// `holdout = "10%"`: this share of customers gets nothing from the
    /// step, and is tracked to measure what the step adds.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::routing::control::optional_share"
    )]
    pub holdout: Option<u32>,
    /// What assignment hashes with the customer's id (default
    /// `<journey>.<step>`): a new seed deals the customers again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
}

/// The holdout arm's name: no variant may take it.
pub const HOLDOUT: &str = "holdout";

/// One arm of a step's experiment: what it changes of the step.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub name: String,
    pub weight: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<Channel>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

impl SendStep {
    /// Whether the step is an experiment (variants, a holdout or both).
    pub fn is_experiment(&self) -> bool {
        !self.variants.is_empty() || self.holdout.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum WaitStep {
    /// A duration: `"7d"`, `"1h"`.
    For(#[serde(with = "duration")] i64),
    /// The next time the customer's clock shows `until` (`"09:00"`).
    Until { until: String },
}

#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct WaitForStep {
    pub event: String,
    #[serde(with = "duration")]
    pub timeout: i64,
}

#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct BranchStep {
    /// An expression over `profile`, `event` and `steps` (each earlier
    /// step's record: `steps.welcome.status == "read"`).
    #[serde(rename = "if")]
    pub condition: String,
    pub then: String,
    #[serde(default, rename = "else")]
    pub otherwise: Option<String>,
}

pub(crate) mod duration {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let text = String::deserialize(d)?;
        crate::routing::policy::parse_duration(&text).map_err(serde::de::Error::custom)
    }

    pub fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}s", ms / 1000))
    }
}

pub(crate) mod optional_duration {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        let text = String::deserialize(d)?;
        crate::routing::policy::parse_duration(&text)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }

    pub fn serialize<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match ms {
            Some(ms) => s.serialize_str(&format!("{}s", ms / 1000)),
            None => s.serialize_none(),
        }
    }
}

/// Every journey, by name.
pub type Journeys = BTreeMap<String, JourneyConfig>;

/// A journey as runs are pinned to it: its configuration and the hash
/// that names this version of it.
#[derive(Debug, Clone)]
pub struct Pinned {
    pub name: String,
    pub version: String,
    pub config: std::sync::Arc<JourneyConfig>,
}

impl Pinned {
    pub fn new(name: &str, config: JourneyConfig) -> Self {
        Pinned {
            name: name.to_owned(),
            version: version(&config),
            config: std::sync::Arc::new(config),
        }
    }
}

/// The journeys of one configuration, as a reload swaps them whole.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    current: BTreeMap<String, Pinned>,
}

impl Catalogue {
    pub fn new(journeys: &Journeys) -> Self {
        Catalogue {
            current: journeys
                .iter()
                .map(|(name, config)| (name.clone(), Pinned::new(name, config.clone())))
                .collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Pinned> {
        self.current.get(name)
    }

    /// Every journey, by name.
    pub fn all(&self) -> impl Iterator<Item = &Pinned> {
        self.current.values()
    }

    /// How many journeys are configured.
    pub fn len(&self) -> usize {
        self.current.len()
    }

    pub fn is_empty(&self) -> bool {
        self.current.is_empty()
    }

    /// The journeys an event named `event` starts.
    pub fn triggered_by<'c>(&'c self, event: &'c str) -> impl Iterator<Item = &'c Pinned> + 'c {
        self.current
            .values()
            .filter(move |p| p.config.trigger == event)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Pinned> {
        self.current.values()
    }
}

/// The version of a journey's configuration: a hash of all of it, so any
/// change makes a new version and runs already going keep theirs.
pub fn version(config: &JourneyConfig) -> String {
    use sha2::{Digest, Sha256};
    let text = serde_json::to_string(config).unwrap_or_default();
    let hash = Sha256::digest(text.as_bytes());
    hash.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The longest an event or journey name may be.
pub const MAX_NAME: usize = 64;

/// Event and journey names: what a platform and an operator can both write.
pub fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-:".contains(&b))
}

/// Names the gateway gives events it records itself (provider reports such as
/// `message.read`, replies as `message.received`): a platform cannot post
/// them, so a journey waiting for a read is never told of a fake one.
pub fn reserved_name(name: &str) -> bool {
    name.starts_with("message.")
}

/// Every mistake in `journeys`, as `(key, message)`: unknown templates,
/// categories and steps, bad conditions, steps no path reaches.
pub fn check(
    journeys: &Journeys,
    categories: &BTreeSet<String>,
    template_category: &dyn Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    for (name, journey) in journeys {
        let key = |rest: &str| format!("journeys.{name}{rest}");
        let mut push = |k: String, m: String| errors.push((k, m));
        if !valid_name(name) {
            push(key(""), "names are 1-64 of A-Z a-z 0-9 _ . - :".into());
        }
        for event in [&journey.trigger]
            .into_iter()
            .chain(&journey.exit_on)
            .chain(&journey.goal)
        {
            if !valid_name(event) {
                push(key(""), format!("{event:?} is not an event name"));
            }
        }
        if let Some(condition) = &journey.condition
            && let Err(e) = crate::expression::check(condition)
        {
            push(key(".condition"), e);
        }
        if let Some(throttle) = &journey.throttle
            && (throttle.max == 0 || throttle.per <= 0)
        {
            push(
                key(".throttle"),
                "a throttle is at least one message per a positive duration".into(),
            );
        }
        if journey.steps.is_empty() {
            push(key(".steps"), "a journey needs at least one step".into());
        }
        let mut ids = BTreeMap::new();
        for (i, step) in journey.steps.iter().enumerate() {
            if ids.contains_key(step.id.as_str()) {
                push(
                    key(&format!(".steps[{i}].id")),
                    format!("{:?} is used twice", step.id),
                );
            } else {
                ids.insert(step.id.as_str(), i);
            }
        }
        for (i, step) in journey.steps.iter().enumerate() {
            let at = |rest: &str| key(&format!(".steps[{i}]{rest}"));
            match &step.kind {
                StepKind::Send(send) => {
                    match (&send.template, &send.text) {
                        (Some(t), None) => match template_category(t) {
                            None => push(at(".send.template"), format!("no template {t:?}")),
                            Some(category) => {
                                if let Some(c) = &send.category
                                    && *c != category
                                {
                                    push(
                                        at(".send.category"),
                                        format!("template {t:?} is for category {category:?}"),
                                    );
                                }
                            }
                        },
                        (None, Some(_)) => {
                            if send.category.is_none() {
                                push(at(".send.category"), "a text send needs a category".into());
                            }
                        }
                        _ => push(at(".send"), "give template or text".into()),
                    }
                    if let Some(c) = &send.category
                        && !categories.contains(c)
                    {
                        push(
                            at(".send.category"),
                            format!("no category {c:?} is configured"),
                        );
                    }
                    if send.offer_group.is_some() != send.offer_window.is_some() {
                        push(
                            at(".send"),
                            "offer_group and offer_window go together".into(),
                        );
                    }
                    if send.holdout.is_some_and(|bp| bp > 5_000) {
                        push(at(".send.holdout"), "a holdout is at most 50%".into());
                    }
                    let mut names = BTreeSet::new();
                    for (v, variant) in send.variants.iter().enumerate() {
                        let at = |rest: &str| at(&format!(".send.variants[{v}]{rest}"));
                        if !valid_name(&variant.name) || !names.insert(variant.name.as_str()) {
                            push(
                                at(".name"),
                                format!(
                                    "{:?}: one name per variant, 1-64 of A-Z a-z 0-9 _ . - :",
                                    variant.name
                                ),
                            );
                        }
                        if variant.name == HOLDOUT {
                            push(at(".name"), "\"holdout\" is the holdout's name".into());
                        }
                        if variant.weight == 0 {
                            push(at(".weight"), "a weight is at least 1".into());
                        }
                        if variant.template.is_some() && variant.text.is_some() {
                            push(at(""), "give template or text, not both".into());
                        }
                        if let Some(t) = &variant.template
                            && template_category(t).is_none()
                        {
                            push(at(".template"), format!("no template {t:?}"));
                        }
                        if let Some(c) = &variant.category
                            && !categories.contains(c)
                        {
                            push(at(".category"), format!("no category {c:?} is configured"));
                        }
                    }
                }
                StepKind::Wait(WaitStep::Until { until }) => {
                    if jiff::civil::Time::strptime("%H:%M", until).is_err() {
                        push(
                            at(".wait.until"),
                            format!("{until:?} is not a time like 09:00"),
                        );
                    }
                }
                StepKind::Wait(_) => {}
                StepKind::WaitFor(wait) => {
                    if !valid_name(&wait.event) {
                        push(
                            at(".wait_for.event"),
                            format!("{:?} is not an event name", wait.event),
                        );
                    }
                }
                StepKind::Digest(digest) => {
                    if i != 0 {
                        push(
                            at(".digest"),
                            "a digest collects the journey's triggers: it is the first step".into(),
                        );
                    }
                    if !(1..=MAX_DIGEST_EVENTS).contains(&digest.max) {
                        push(at(".digest.max"), format!("1-{MAX_DIGEST_EVENTS} events"));
                    }
                    if let Some(key) = &digest.key
                        && let Err(e) = crate::expression::check_template(key)
                    {
                        push(at(".digest.key"), e);
                    }
                }
                StepKind::Branch(branch) => {
                    if let Err(e) = crate::expression::check(&branch.condition) {
                        push(at(".branch.if"), e);
                    }
                    for target in [Some(&branch.then), branch.otherwise.as_ref()]
                        .into_iter()
                        .flatten()
                    {
                        if !ids.contains_key(target.as_str()) {
                            push(at(".branch"), format!("no step {target:?}"));
                        }
                    }
                }
            }
        }
        for i in unreachable(journey, &ids) {
            push(
                key(&format!(".steps[{i}]")),
                format!("step {:?} is never reached", journey.steps[i].id),
            );
        }
    }
    errors
}

/// Steps no path from the first step reaches.
fn unreachable(journey: &JourneyConfig, ids: &BTreeMap<&str, usize>) -> Vec<usize> {
    let mut seen = vec![false; journey.steps.len()];
    let mut stack = vec![0];
    while let Some(i) = stack.pop() {
        if i >= seen.len() || seen[i] {
            continue;
        }
        seen[i] = true;
        match &journey.steps[i].kind {
            StepKind::Branch(branch) => {
                stack.extend(ids.get(branch.then.as_str()));
                match &branch.otherwise {
                    Some(other) => stack.extend(ids.get(other.as_str())),
                    None => stack.push(i + 1),
                }
            }
            _ => stack.push(i + 1),
        }
    }
    (0..seen.len()).filter(|i| !seen[*i]).collect()
}

/// [`check`] over a whole configuration, as configuration errors;
/// `template_category` names the category of each template there is.
pub fn check_config(
    config: &crate::config::Config,
    template_category: &dyn Fn(&str) -> Option<String>,
) -> Vec<crate::config::ConfigError> {
    let categories = config.policy().categories.into_keys().collect();
    check(&config.journeys, &categories, template_category)
        .into_iter()
        .map(|(key, message)| crate::config::ConfigError::new(key, None, message))
        .collect()
}

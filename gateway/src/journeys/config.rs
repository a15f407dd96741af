//! `[journeys.<name>]`: what starts a journey, what ends it, and its steps.

use crate::message::Channel;
use serde::Deserialize;
use std::collections::BTreeMap;

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
    pub steps: Vec<Step>,
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

mod duration {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let text = String::deserialize(d)?;
        crate::routing::policy::parse_duration(&text).map_err(serde::de::Error::custom)
    }

    pub fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}s", ms / 1000))
    }
}

mod optional_duration {
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

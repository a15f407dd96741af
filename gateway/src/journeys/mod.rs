//! Journeys: customer events drive runs through steps across channels (a
//! welcome email, a week's wait, an SMS unless they bought). A journey is
//! configured in TOML ([`config`]); a run is a pure state machine
//! ([`engine`]) stored whole, with its timer, so any node can move it on and
//! a restart loses nothing; conditions are minijinja expressions
//! ([`condition`]).

pub mod condition;
pub mod config;
pub mod engine;
pub mod runner;

pub use config::{JourneyConfig, Journeys};

use crate::templates::Templates;
use config::StepKind;
use std::collections::{BTreeMap, BTreeSet};

/// The longest an event or journey name may be.
pub const MAX_NAME: usize = 64;

/// Event and journey names: what a platform and an operator can both write.
pub fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-:".contains(&b))
}

/// Every mistake in `journeys`, as `(key, message)`: unknown templates,
/// categories and steps, bad conditions, steps no path reaches.
pub fn check(
    journeys: &Journeys,
    categories: &BTreeSet<String>,
    templates: &Templates,
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
            && let Err(e) = condition::check(condition)
        {
            push(key(".condition"), e);
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
                        (Some(t), None) => match templates.get(t) {
                            None => push(at(".send.template"), format!("no template {t:?}")),
                            Some(template) => {
                                if let Some(c) = &send.category
                                    && *c != template.category
                                {
                                    push(
                                        at(".send.category"),
                                        format!(
                                            "template {t:?} is for category {:?}",
                                            template.category
                                        ),
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
                }
                StepKind::Wait(config::WaitStep::Until { until }) => {
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
                StepKind::Branch(branch) => {
                    if let Err(e) = condition::check(&branch.condition) {
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

/// [`check`] over a whole configuration, as configuration errors.
pub fn check_config(
    config: &crate::config::Config,
    templates: &Templates,
) -> Vec<crate::config::ConfigError> {
    let categories = config.policy().categories.into_keys().collect();
    check(&config.journeys, &categories, templates)
        .into_iter()
        .map(|(key, message)| crate::config::ConfigError::new(key, None, message))
        .collect()
}

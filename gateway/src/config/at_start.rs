//! What a running gateway reads from its configuration only when it starts.
//!
//! A reload switches regions, routing, categories, the global control group,
//! connectors (their plugins and routes), templates, journeys, segments and
//! conversions. Everything else was read once, at start, by the part that
//! uses it (the server, the store, the dispatcher and its pacing, the API's
//! keys and limits...). The
//! sections are kept as written so that a reload can say which of the
//! file's changes wait for a restart, rather than leave an operator
//! believing a new `[dispatch]` is in effect.

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::{Spanned, Value};

/// Top-level sections read once, at start.
const SECTIONS: &[&str] = &[
    "broadcasts",
    "callbacks",
    "clock",
    "dispatch",
    "health",
    "inbox",
    "journey_runner",
    "messages",
    "retention",
    "server",
    "storage",
    "unsubscribe",
];

/// Keys of a `[[connectors]]` entry read once, at start: the pacing of each
/// connector is set up when the dispatcher starts.
const CONNECTOR_KEYS: &[&str] = &["rate", "burst"];

/// The start-only part of one configuration file, as written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AtStart {
    /// By key (`dispatch`, `connectors.twilio.rate`); a key the file leaves
    /// out is absent, so adding or removing a section counts as a change.
    values: BTreeMap<String, Value>,
}

impl AtStart {
    /// The start-only part of a file already parsed (`root`, as the loader
    /// holds it), so the text is not parsed a second time.
    pub fn of(root: &DeTable<'_>) -> AtStart {
        let as_written = |value: &Spanned<DeValue<'_>>| {
            Value::deserialize(ValueDeserializer::from(value.clone())).ok()
        };
        let mut values = BTreeMap::new();
        for (key, value) in root.iter() {
            let key = key.get_ref().as_ref();
            if SECTIONS.contains(&key) {
                if let Some(value) = as_written(value) {
                    values.insert(key.to_owned(), value);
                }
            } else if key == "connectors"
                && let Some(Value::Array(connectors)) = as_written(value)
            {
                for connector in connectors.iter().filter_map(|c| c.as_table()) {
                    let Some(name) = connector.get("name").and_then(|n| n.as_str()) else {
                        continue;
                    };
                    for &key in CONNECTOR_KEYS {
                        if let Some(value) = connector.get(key) {
                            values.insert(format!("connectors.{name}.{key}"), value.clone());
                        }
                    }
                }
            }
        }
        AtStart { values }
    }

    /// The keys whose value in `next` differs from this one's, sorted: what
    /// only a restart would apply.
    pub fn changed_in(&self, next: &AtStart) -> Vec<String> {
        let keys: BTreeSet<&String> = self.values.keys().chain(next.values.keys()).collect();
        keys.into_iter()
            .filter(|key| self.values.get(*key) != next.values.get(*key))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::AtStart;

    fn of(text: &str) -> AtStart {
        AtStart::of(toml::de::DeTable::parse(text).unwrap().get_ref())
    }

    const RUNNING: &str = r#"
[dispatch]
concurrency = 64

[routing]
sms = ["twilio"]

[[connectors]]
name = "twilio"
plugin = "sms_twilio.wasm"
rate = "30/s"
"#;

    #[test]
    fn only_what_a_reload_cannot_apply_is_reported() {
        let running = of(RUNNING);
        assert_eq!(running.changed_in(&of(RUNNING)), Vec::<String>::new());

        // Routing and a connector's plugin switch at a reload: nothing to say.
        let rerouted = RUNNING
            .replace(r#"sms = ["twilio"]"#, r#"sms = ["vonage", "twilio"]"#)
            .replace("sms_twilio.wasm", "sms_twilio_v2.wasm");
        assert!(running.changed_in(&of(&rerouted)).is_empty());

        let retuned = RUNNING
            .replace("concurrency = 64", "concurrency = 128")
            .replace("30/s", "10/s")
            + "\n[retention]\nmessages = \"30d\"\n";
        assert_eq!(
            running.changed_in(&of(&retuned)),
            ["connectors.twilio.rate", "dispatch", "retention"]
        );
    }

    #[test]
    fn a_section_taken_out_counts_as_changed() {
        let running = of(RUNNING);
        let without = RUNNING.replace("[dispatch]\nconcurrency = 64\n", "");
        assert_eq!(running.changed_in(&of(&without)), ["dispatch"]);
    }
}

//! `[conversions.<event>]`: which customer events are conversions, what
//! each is worth, and how long after a message it still counts for it.

use serde::Deserialize;

/// Seven days: a common attribution window.
const DEFAULT_WINDOW_MS: i64 = 7 * 86_400_000;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conversion {
    /// `value = "properties.amount"`: the event property that holds its
    /// value (`amount` alone says the same); without it a conversion is
    /// worth `fixed_value`, or nothing.
    #[serde(default)]
    pub value: Option<String>,
    /// `fixed_value = 1.0`
    #[serde(default)]
    pub fixed_value: Option<f64>,
    /// `currency = "EUR"`: reported beside the value.
    #[serde(default)]
    pub currency: Option<String>,
    /// `window = "7d"`: a message delivered or read this long before the
    /// conversion can be credited with it.
    #[serde(default = "default_window", with = "super::journeys::duration")]
    pub window: i64,
}

fn default_window() -> i64 {
    DEFAULT_WINDOW_MS
}

impl Conversion {
    /// The property path within the event's properties.
    pub fn value_path(&self) -> Option<Vec<&str>> {
        let path = self.value.as_deref()?;
        let path = path.strip_prefix("properties.").unwrap_or(path);
        Some(path.split('.').collect())
    }

    /// What an event with these properties is worth.
    pub fn value_of(&self, properties: &serde_json::Value) -> Result<f64, String> {
        let Some(path) = self.value_path() else {
            return Ok(self.fixed_value.unwrap_or(0.0));
        };
        let found = path
            .iter()
            .try_fold(properties, |v, key| v.get(key))
            .ok_or_else(|| format!("the event has no {}", path.join(".")))?;
        match found {
            serde_json::Value::Number(n) => n.as_f64().ok_or_else(|| "not a number".into()),
            serde_json::Value::String(s) => s
                .parse::<f64>()
                .map_err(|_| format!("{}: {s:?} is not a number", path.join("."))),
            _ => Err(format!("{} is not a number", path.join("."))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conversion_is_worth_its_property() {
        let c: Conversion =
            toml::from_str("value = \"properties.order.total\"\ncurrency = \"EUR\"").unwrap();
        let properties = serde_json::json!({"order": {"total": "42.50"}});
        assert_eq!(c.value_of(&properties), Ok(42.5));
        assert!(c.value_of(&serde_json::json!({})).is_err());
        assert_eq!(c.window, DEFAULT_WINDOW_MS);
    }
}

//! `[conversions.<event>]`: which customer events are conversions, what
//! each is worth, and how long after a message it still counts for it.

use serde::Deserialize;

/// The largest amount a conversion may be worth: far above any order, far
/// below where a sum of many loses its cents.
const MAX_VALUE: f64 = 1e12;

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
        let name = path.join(".");
        let value = match found {
            serde_json::Value::Number(n) => n.as_f64(),
            serde_json::Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
        .ok_or_else(|| format!("{name} is not a number"))?;
        // "NaN", "inf" and 1e308 parse as numbers but are no amount: summed
        // in a report they would make every figure beside them meaningless.
        if !value.is_finite() || value.abs() > MAX_VALUE {
            return Err(format!(
                "{name} is not an amount (finite, at most {MAX_VALUE:e})"
            ));
        }
        Ok(value)
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
        for bad in [
            serde_json::json!("NaN"),
            serde_json::json!("inf"),
            serde_json::json!(1e308),
            serde_json::json!(true),
        ] {
            let properties = serde_json::json!({"order": {"total": bad}});
            assert!(c.value_of(&properties).is_err(), "{bad}");
        }
        assert_eq!(c.window, DEFAULT_WINDOW_MS);
    }
}

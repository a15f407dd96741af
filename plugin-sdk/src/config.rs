//! The connector's `[connectors.config]` table, as the host hands it over.

use crate::{Setting, SettingKind};
use std::fmt;

/// Key/value configuration with secrets already resolved by the gateway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    entries: Vec<(String, String)>,
}

/// A configuration problem, reported by `crossgate check` with the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl Config {
    pub fn new(entries: Vec<(String, String)>) -> Self {
        Config { entries }
    }

    /// Every key and value, in the order given.
    pub fn entries(&self) -> &[(String, String)] {
        &self.entries
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, or an error naming it when missing or empty.
    pub fn required(&self, key: &str) -> Result<&str, ConfigError> {
        match self.get(key) {
            Some(value) if !value.is_empty() => Ok(value),
            _ => Err(ConfigError::new(key, "is required")),
        }
    }

    /// The provider's API origin: `base_url` when set (a simulator, a
    /// regional endpoint), else `default`; without a trailing slash.
    pub fn base_url(&self, default: &str) -> Result<String, ConfigError> {
        let url = self.get("base_url").unwrap_or(default);
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        match rest {
            Some(host) if !host.is_empty() && !host.starts_with('/') => {
                Ok(url.trim_end_matches('/').to_owned())
            }
            _ => Err(ConfigError::new(
                "base_url",
                format!("{url:?} must be an http or https URL"),
            )),
        }
    }

    /// A declared setting's value, held to its declaration: `None` when an
    /// optional one is unset, an error naming it when a required one is
    /// missing or empty, or the value is not of its kind. Reading through
    /// the constants `SETTINGS` lists keeps `new` and the declaration one
    /// list: no key is read that the gateway does not check.
    pub fn setting(&self, setting: &Setting) -> Result<Option<&str>, ConfigError> {
        match self.get(setting.name) {
            Some(value) if !value.is_empty() => {
                crate::settings::kind_holds(setting.kind.into(), value)
                    .map_err(|why| ConfigError::new(setting.name, why))?;
                Ok(Some(value))
            }
            _ if setting.required => Err(ConfigError::new(setting.name, "is required")),
            _ => Ok(None),
        }
    }

    /// A declared setting that must be there ([`Self::setting`]).
    pub fn require(&self, setting: &Setting) -> Result<&str, ConfigError> {
        self.setting(setting)?
            .ok_or_else(|| ConfigError::new(setting.name, "is required"))
    }

    /// A declared boolean setting: `default` when unset.
    pub fn boolean(&self, setting: &Setting, default: bool) -> Result<bool, ConfigError> {
        Ok(self.setting(setting)?.map_or(default, |v| v == "true"))
    }

    /// A declared number setting.
    pub fn number(&self, setting: &Setting) -> Result<Option<f64>, ConfigError> {
        self.setting(setting)?
            .map(|v| {
                v.parse::<f64>()
                    .map_err(|_| ConfigError::new(setting.name, format!("{v:?} is not a number")))
            })
            .transpose()
    }

    /// A declared choice setting, as the declaration's own word (so a
    /// connector can `match` on it with no string left unhandled).
    pub fn choice(&self, setting: &Setting) -> Result<Option<&'static str>, ConfigError> {
        let SettingKind::Choice(words) = setting.kind else {
            return Err(ConfigError::new(
                setting.name,
                "is not declared as a choice",
            ));
        };
        Ok(self
            .setting(setting)?
            .and_then(|v| words.iter().copied().find(|w| *w == v)))
    }

    /// A boolean setting: `default` when unset, an error naming the key
    /// for anything but `true` or `false` (TOML's own booleans arrive as these).
    pub fn flag(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(ConfigError::new(
                key,
                format!("{other:?} is not true or false"),
            )),
        }
    }

    /// The value of `key`, or `default` when unset.
    pub fn get_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).unwrap_or(default)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Config {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Config::new(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

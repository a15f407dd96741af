//! A connector's declared settings held against its `[connectors.config]`:
//! a typo like `bse_url` would otherwise pass, and the plugin would quietly
//! fall back to the real provider's URL.

use crate::config::Connector;
use std::ops::Range;

/// What a setting holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKind {
    Text,
    Url,
    Number,
    Boolean,
}

/// A setting as the connector declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub name: String,
    pub required: bool,
    /// Better read from `env:` or `file:` than written in the file.
    pub secret: bool,
    pub kind: SettingKind,
}

/// One problem, at the key it is about (`.name`, or empty for the table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mistake {
    pub key: String,
    pub span: Range<usize>,
    pub message: String,
    /// Said, but loads: a secret written in the file of a gateway on loopback.
    pub warning: bool,
}

/// Where the gateway listens decides whether a secret written in the
/// configuration file is a warning (loopback: a developer's machine) or an
/// error (reachable: the file is a copy of the secret on every host it is on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposure {
    Loopback,
    Reachable,
}

/// Unknown keys, missing required ones, values of the wrong kind, secrets
/// written in the file. A connector that declares nothing is not checked.
pub fn check(declared: &[Declared], connector: &Connector, exposure: Exposure) -> Vec<Mistake> {
    if declared.is_empty() {
        return Vec::new();
    }
    let mut mistakes = Vec::new();
    let known: Vec<&str> = declared.iter().map(|d| d.name.as_str()).collect();
    for (key, value) in &connector.settings {
        let span = connector
            .setting_spans
            .get(key)
            .cloned()
            .unwrap_or_else(|| connector.span.clone());
        let Some(setting) = declared.iter().find(|d| d.name == *key) else {
            let near = closest(key, &known)
                .map(|k| format!("; did you mean {k:?}?"))
                .unwrap_or_default();
            mistakes.push(Mistake {
                key: format!(".{key}"),
                span,
                message: format!(
                    "not a setting of this connector's plugin (it takes {}){near}",
                    known.join(", ")
                ),
                warning: false,
            });
            continue;
        };
        if let Err(why) = kind_holds(setting.kind, value) {
            mistakes.push(Mistake {
                key: format!(".{key}"),
                span: span.clone(),
                message: why,
                warning: false,
            });
        }
        if setting.secret && connector.written_in_file.contains(key) {
            mistakes.push(Mistake {
                key: format!(".{key}"),
                span,
                message: format!(
                    "a secret written in the file: give it as \"env:NAME\" or \"file:PATH\"{}",
                    match exposure {
                        Exposure::Loopback => " (a warning while the gateway listens on loopback)",
                        Exposure::Reachable => ", as a gateway reachable from the network must",
                    }
                ),
                warning: exposure == Exposure::Loopback,
            });
        }
    }
    for setting in declared.iter().filter(|d| d.required) {
        if !connector.settings.iter().any(|(k, _)| *k == setting.name) {
            mistakes.push(Mistake {
                key: String::new(),
                span: connector.span.clone(),
                message: format!("missing required key {:?}", setting.name),
                warning: false,
            });
        }
    }
    mistakes
}

fn kind_holds(kind: SettingKind, value: &str) -> Result<(), String> {
    match kind {
        SettingKind::Text => Ok(()),
        SettingKind::Number => value
            .parse::<f64>()
            .map(drop)
            .map_err(|_| format!("{value:?} is not a number")),
        SettingKind::Boolean => match value {
            "true" | "false" => Ok(()),
            _ => Err(format!("{value:?} is not true or false")),
        },
        SettingKind::Url => match value.parse::<http::Uri>() {
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() =>
            {
                Ok(())
            }
            _ => Err(format!("{value:?} is not an http(s) URL")),
        },
    }
}

/// The declared name nearest to a misspelled one (one or two edits away).
fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::levenshtein(key, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelled_key_is_named_with_its_likely_meaning() {
        assert_eq!(closest("bse_url", &["base_url", "from"]), Some("base_url"));
        assert_eq!(closest("colour", &["base_url"]), None);
        assert!(kind_holds(SettingKind::Url, "ftp://x").is_err());
        assert!(kind_holds(SettingKind::Url, "http://127.0.0.1:9").is_ok());
        assert!(kind_holds(SettingKind::Number, "ten").is_err());
    }
}

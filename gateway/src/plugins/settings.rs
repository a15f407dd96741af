//! A connector's declared settings held against its `[connectors.config]`:
//! a typo like `bse_url` would otherwise pass, and the plugin would quietly
//! fall back to the real provider's URL. The rule itself is the SDK's
//! (`crossgate_plugin_sdk::settings`), which connectors' test harness
//! applies too; here it is placed at the file's lines, with the secrets
//! written in the file beside it.

use crate::config::Connector;
use crossgate_plugin_sdk::settings as sdk;
use std::ops::Range;

/// A setting as the connector declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub name: String,
    pub required: bool,
    /// Better read from `env:` or `file:` than written in the file.
    pub secret: bool,
    pub kind: SettingKind,
}

/// What a setting holds, as the plugin declared it (its choices are the
/// plugin's words, owned here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingKind {
    Text,
    Url,
    Number,
    Boolean,
    Choice(Vec<String>),
}

impl SettingKind {
    /// How `crossgate plugin inspect` and the docs name it.
    pub fn describe(&self) -> String {
        match self {
            SettingKind::Text => "text".into(),
            SettingKind::Url => "url".into(),
            SettingKind::Number => "number".into(),
            SettingKind::Boolean => "boolean".into(),
            SettingKind::Choice(words) => format!("one of {}", words.join(", ")),
        }
    }
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

/// Unknown keys, missing required ones, values of the wrong kind (the
/// SDK's check, the one its test harness makes too), and secrets written in
/// the file. A connector that declares nothing is not checked.
pub fn check(declared: &[Declared], connector: &Connector, exposure: Exposure) -> Vec<Mistake> {
    let words: Vec<Vec<&str>> = declared
        .iter()
        .map(|d| match &d.kind {
            SettingKind::Choice(words) => words.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        })
        .collect();
    let sdk: Vec<sdk::Declared<'_>> = declared
        .iter()
        .zip(&words)
        .map(|(d, words)| sdk::Declared {
            name: &d.name,
            required: d.required,
            kind: match d.kind {
                SettingKind::Text => sdk::Kind::Text,
                SettingKind::Url => sdk::Kind::Url,
                SettingKind::Number => sdk::Kind::Number,
                SettingKind::Boolean => sdk::Kind::Boolean,
                SettingKind::Choice(_) => sdk::Kind::Choice(words),
            },
        })
        .collect();
    let at = |key: &str| {
        connector
            .setting_spans
            .get(key)
            .cloned()
            .unwrap_or_else(|| connector.span.clone())
    };
    let mut mistakes: Vec<Mistake> = sdk::check(&sdk, &connector.settings)
        .into_iter()
        .map(|m| Mistake {
            key: if m.missing {
                String::new()
            } else {
                format!(".{}", m.key)
            },
            span: if m.missing {
                connector.span.clone()
            } else {
                at(&m.key)
            },
            message: m.message,
            warning: false,
        })
        .collect();
    for setting in declared.iter().filter(|d| d.secret) {
        if connector.written_in_file.contains(&setting.name) {
            mistakes.push(Mistake {
                key: format!(".{}", setting.name),
                span: at(&setting.name),
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
    mistakes
}

/// The connector's own refusal of its configuration (`validate-config`),
/// at the key it names: the SDK writes it `key: message`. A key the file
/// has is pointed at; one it lacks, at the table; no key, at the entry.
pub fn refusal_at_its_key(refusal: &str, connector: &Connector) -> Mistake {
    let named = refusal.split_once(": ").filter(|(key, _)| {
        !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    });
    match named {
        Some((key, message)) => Mistake {
            key: format!(".{key}"),
            span: connector
                .setting_spans
                .get(key)
                .cloned()
                .unwrap_or_else(|| connector.span.clone()),
            message: format!("refused by the plugin: {message}"),
            warning: false,
        },
        None => Mistake {
            key: String::new(),
            span: connector.span.clone(),
            message: format!("refused by the plugin: {refusal}"),
            warning: false,
        },
    }
}

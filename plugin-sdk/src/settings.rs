//! A connector's configuration held against its declared settings: the
//! one check the gateway makes when it loads a plugin (`crossgate check`,
//! `serve`, a reload) and the test harness makes before every call, so a
//! typo like `bse_url` cannot pass a connector's unit tests and fail at load.

use crate::{Setting, SettingKind};

/// A setting as declared, whoever holds the declaration (the connector's
/// `SETTINGS`, or the gateway reading them from the plugin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Declared<'a> {
    pub name: &'a str,
    pub required: bool,
    pub kind: Kind<'a>,
}

/// What a declared setting holds ([`SettingKind`], for a declaration that
/// is not the connector's own constant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind<'a> {
    Text,
    Url,
    Number,
    Boolean,
    Choice(&'a [&'a str]),
}

impl From<SettingKind> for Kind<'static> {
    fn from(kind: SettingKind) -> Self {
        match kind {
            SettingKind::Text => Kind::Text,
            SettingKind::Url => Kind::Url,
            SettingKind::Number => Kind::Number,
            SettingKind::Boolean => Kind::Boolean,
            SettingKind::Choice(words) => Kind::Choice(words),
        }
    }
}

impl<'a> From<&'a Setting> for Declared<'a> {
    fn from(s: &'a Setting) -> Self {
        Declared {
            name: s.name,
            required: s.required,
            kind: s.kind.into(),
        }
    }
}

/// One thing wrong, at its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mistake {
    pub key: String,
    /// The key is missing: the place to point at is the table.
    pub missing: bool,
    pub message: String,
}

/// Unknown keys (with the likely meant one), values of the wrong kind,
/// missing required keys. A connector that declares nothing is not checked.
pub fn check(declared: &[Declared<'_>], given: &[(String, String)]) -> Vec<Mistake> {
    if declared.is_empty() {
        return Vec::new();
    }
    let mut mistakes = Vec::new();
    let known: Vec<&str> = declared.iter().map(|d| d.name).collect();
    for (key, value) in given {
        let Some(setting) = declared.iter().find(|d| d.name == key) else {
            let near = closest(key, &known)
                .map(|k| format!("; did you mean {k:?}?"))
                .unwrap_or_default();
            mistakes.push(Mistake {
                key: key.clone(),
                missing: false,
                message: format!(
                    "not a setting of this connector's plugin (it takes {}){near}",
                    known.join(", ")
                ),
            });
            continue;
        };
        if let Err(why) = kind_holds(setting.kind, value) {
            mistakes.push(Mistake {
                key: key.clone(),
                missing: false,
                message: why,
            });
        }
    }
    for setting in declared.iter().filter(|d| d.required) {
        if !given.iter().any(|(k, _)| k == setting.name) {
            mistakes.push(Mistake {
                key: setting.name.to_owned(),
                missing: true,
                message: format!("missing required key {:?}", setting.name),
            });
        }
    }
    mistakes
}

pub(crate) fn kind_holds(kind: Kind<'_>, value: &str) -> Result<(), String> {
    match kind {
        Kind::Text => Ok(()),
        Kind::Choice(words) if words.contains(&value) => Ok(()),
        Kind::Choice(words) => Err(format!("{value:?} is not one of {}", words.join(", "))),
        Kind::Number => value
            .parse::<f64>()
            .map(drop)
            .map_err(|_| format!("{value:?} is not a number")),
        Kind::Boolean => match value {
            "true" | "false" => Ok(()),
            _ => Err(format!("{value:?} is not true or false")),
        },
        Kind::Url => {
            let rest = value
                .strip_prefix("https://")
                .or_else(|| value.strip_prefix("http://"));
            let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
            match host {
                Some(host)
                    if !host.is_empty()
                        && !host.starts_with(':')
                        && !value.chars().any(|c| c.is_whitespace() || c.is_control()) =>
                {
                    Ok(())
                }
                _ => Err(format!("{value:?} is not an http(s) URL")),
            }
        }
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

    fn given(entries: &[(&str, &str)]) -> Vec<(String, String)> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_misspelled_key_is_named_with_its_likely_meaning() {
        const API_KEY: Setting = Setting::text("api_key").required();
        let declared = [Declared::from(&crate::BASE_URL), Declared::from(&API_KEY)];
        let mistakes = check(
            &declared,
            &given(&[("bse_url", "http://x"), ("api_key", "k")]),
        );
        assert_eq!(mistakes.len(), 1);
        assert!(mistakes[0].message.ends_with("did you mean \"base_url\"?"));
        let mistakes = check(&declared, &given(&[]));
        assert_eq!(
            (mistakes[0].key.as_str(), mistakes[0].missing),
            ("api_key", true)
        );
        assert_eq!(closest("colour", &["base_url"]), None);
    }

    #[test]
    fn values_are_held_to_their_kind() {
        assert!(kind_holds(Kind::Url, "ftp://x").is_err());
        assert!(kind_holds(Kind::Url, "not a url").is_err());
        assert!(kind_holds(Kind::Url, "https://").is_err());
        assert!(kind_holds(Kind::Url, "http://127.0.0.1:9").is_ok());
        assert!(kind_holds(Kind::Url, "https://api.example.com/v1?x=1").is_ok());
        assert!(kind_holds(Kind::Number, "ten").is_err());
        assert!(kind_holds(Kind::Boolean, "yes").is_err());
        assert!(kind_holds(Kind::Boolean, "false").is_ok());
        let region = Kind::Choice(&["eu", "us"]);
        assert!(kind_holds(region, "eu").is_ok());
        assert_eq!(
            kind_holds(region, "EU"),
            Err("\"EU\" is not one of eu, us".to_owned())
        );
    }
}

//! From TOML text to sections: each top-level section (and each
//! `[[connectors]]` entry) is deserialised on its own, so one typo does not
//! hide the next, and every error keeps the key, line and column it is about.

use super::schema::ConnectorConfig;
use super::{Config, ConfigError, checks};
use crate::routing::policy::CategoryConfig;
use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

pub fn parse_sections(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) -> Option<Config> {
    let root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(e) => {
            errors.push(ConfigError::new("", e.span(), e.message().trim_end()));
            return None;
        }
    };
    let mut config = Config::default();
    let mut raw_connectors = Vec::new();
    for (key, value) in root.get_ref().iter() {
        let name = key.get_ref().as_ref();
        match name {
            "server" => section(name, value, errors).map(|s| config.server = s),
            "storage" => section(name, value, errors).map(|s| config.storage = s),
            "plugins" => section(name, value, errors).map(|s| config.plugins = s),
            "dispatch" => section(name, value, errors).map(|s| config.dispatch = s),
            "messages" => section(name, value, errors).map(|s| config.messages = s),
            "callbacks" => section(name, value, errors).map(|s| config.callbacks = s),
            "regions" => section(name, value, errors).map(|s| config.regions = s),
            "routing" => section(name, value, errors).map(|s| config.routing = s),
            "templates" => section(name, value, errors).map(|s| config.templates = s),
            "unsubscribe" => section(name, value, errors).map(|s| config.unsubscribe = s),
            "inbox" => section(name, value, errors).map(|s| config.inbox = s),
            "journey_runner" => section(name, value, errors).map(|s| config.journey_runner = s),
            "clock" => section(name, value, errors).map(|s| config.clock = s),
            "broadcasts" => section(name, value, errors).map(|s| config.broadcasts = s),
            "retention" => section(name, value, errors).map(|s| config.retention = s),
            "health" => section(name, value, errors).map(|s| config.health = s),
            "experiments" => section(name, value, errors).map(|s| config.experiments = s),
            "journeys" => match value.get_ref() {
                // One journey at a time, so a mistake in one does not hide the next.
                DeValue::Table(journeys) => {
                    for (journey, body) in journeys.iter() {
                        let key = format!("journeys.{}", journey.get_ref());
                        if let Some(j) =
                            section::<super::journeys::JourneyConfig>(&key, body, errors)
                        {
                            config.journeys.insert(journey.get_ref().to_string(), j);
                        }
                    }
                    Some(())
                }
                _ => section(name, value, errors).map(|s| config.journeys = s),
            },
            "segments" => match value.get_ref() {
                DeValue::Table(segments) => {
                    for (segment, body) in segments.iter() {
                        let key = format!("segments.{}", segment.get_ref());
                        if let Some(s) = section::<super::segments::Segment>(&key, body, errors) {
                            config.segments.insert(segment.get_ref().to_string(), s);
                        }
                    }
                    Some(())
                }
                _ => section(name, value, errors).map(|s| config.segments = s),
            },
            "conversions" => match value.get_ref() {
                DeValue::Table(events) => {
                    for (event, body) in events.iter() {
                        let key = format!("conversions.{}", event.get_ref());
                        if let Some(c) =
                            section::<super::conversions::Conversion>(&key, body, errors)
                        {
                            config.conversions.insert(event.get_ref().to_string(), c);
                        }
                    }
                    Some(())
                }
                _ => section(name, value, errors).map(|s| config.conversions = s),
            },
            "categories" => match value.get_ref() {
                // One category at a time, so a mistake in one does not hide the next.
                DeValue::Table(categories) => {
                    for (category, body) in categories.iter() {
                        let key = format!("categories.{}", category.get_ref());
                        if let Some(c) = section::<CategoryConfig>(&key, body, errors) {
                            config.categories.insert(category.get_ref().to_string(), c);
                        }
                    }
                    Some(())
                }
                _ => section(name, value, errors).map(|s| config.categories = s),
            },
            "connectors" => match value.get_ref() {
                DeValue::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let key = format!("connectors[{i}]");
                        if let Some(c) = section::<ConnectorConfig>(&key, item, errors) {
                            raw_connectors.push((key, item.span(), c));
                        }
                    }
                    Some(())
                }
                _ => {
                    errors.push(ConfigError::new(
                        name,
                        Some(value.span()),
                        "must be an array of tables: write [[connectors]]",
                    ));
                    None
                }
            },
            _ => {
                errors.push(ConfigError::new(
                    name,
                    Some(key.span()),
                    "unknown section, expected one of server, storage, plugins, dispatch, messages, callbacks, regions, routing, categories, connectors, templates, unsubscribe, inbox, journeys, journey_runner, clock, segments, broadcasts, conversions, experiments, retention, health",
                ));
                None
            }
        };
    }
    config.at_start = super::at_start::AtStart::of(root.get_ref());
    checks::validate(&mut config, raw_connectors, env, errors);
    Some(config)
}

/// Deserialise one section on its own so its errors do not stop the others.
fn section<T: DeserializeOwned>(
    key: &str,
    value: &Spanned<DeValue<'_>>,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    T::deserialize(ValueDeserializer::from(value.clone()))
        .map_err(|e| {
            let span = e.span().unwrap_or_else(|| value.span());
            let key = format!("{key}{}", key_at(value, &span));
            errors.push(ConfigError::new(key, Some(span), e.message().trim_end()));
        })
        .ok()
}

/// The path below `value` whose key or value covers `span`, e.g. `.listen`
/// or `.allowed_hosts[1]`, so an error names the exact key.
fn key_at(value: &Spanned<DeValue<'_>>, span: &std::ops::Range<usize>) -> String {
    let covers = |outer: std::ops::Range<usize>| outer.start <= span.start && span.end <= outer.end;
    match value.get_ref() {
        DeValue::Table(table) => table
            .iter()
            .find(|(k, v)| covers(k.span()) || covers(v.span()))
            .map(|(k, v)| format!(".{}{}", k.get_ref(), key_at(v, span)))
            .unwrap_or_default(),
        DeValue::Array(items) => items
            .iter()
            .enumerate()
            .find(|(_, v)| covers(v.span()))
            .map(|(i, v)| format!("[{i}]{}", key_at(v, span)))
            .unwrap_or_default(),
        _ => String::new(),
    }
}

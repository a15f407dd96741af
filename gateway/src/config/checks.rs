//! Named cross-field checks over a parsed configuration. Each check adds
//! what it finds to one list, so `crossgate check` prints every problem.

use super::schema::{ApiKeyConfig, Scope};
use super::{ApiKey, Config, ConfigError, Connector, ConnectorConfig, Database};
use crate::origin::Origin;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use toml::Spanned;

/// Cross-field checks and secret resolution, one named check at a time;
/// every problem is collected, none stops the others.
pub fn validate(
    config: &mut Config,
    raw_connectors: Vec<(String, std::ops::Range<usize>, ConnectorConfig)>,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) {
    api_keys(config, env, errors);
    storage(config, env, errors);
    limits(config, errors);
    callbacks(config, env, errors);
    unsubscribe(config, env, errors);
    inbox(config, env, errors);
    regions(config, errors);
    sms_footers(config, errors);
    segments(config, errors);
    conversions(config, errors);
    experiments(config, errors);
    broadcasts(config, errors);
    retention(config, errors);
    health(config, errors);
    connectors(config, raw_connectors, env, errors);
    connector_regions(config, errors);
    connector_senders(config, errors);
    connector_silence(config, errors);
    shipped_secrets(config, errors);
    manual_clock(config, errors);
}

/// `[experiments]`: a control group of at most half the customers, kept
/// from categories that exist.
fn experiments(config: &Config, errors: &mut Vec<ConfigError>) {
    let experiments = &config.experiments;
    if experiments.control_group.is_some_and(|bp| bp > 5_000) {
        errors.push(ConfigError::new(
            "experiments.control_group",
            None,
            "a control group is at most 50% of customers",
        ));
    }
    if experiments.control_group.is_some() {
        for category in &experiments.categories {
            if !config.categories.contains_key(category) {
                errors.push(ConfigError::new(
                    "experiments.categories",
                    None,
                    format!("no category {category:?} is configured"),
                ));
            }
        }
    }
}

/// `[clock] mode = "manual"` lets a request move the gateway's time: for
/// tests and rehearsals on this machine, never on a gateway others can reach.
/// A start without it would be silently ignored, so it is refused.
fn manual_clock(config: &Config, errors: &mut Vec<ConfigError>) {
    let listen = config.server.listen;
    let manual = config.clock.mode == super::ClockMode::Manual;
    if !manual && config.clock.start.is_some() {
        errors.push(ConfigError::new(
            "clock.start",
            None,
            "a start is for the manual clock: set mode = \"manual\" or remove it",
        ));
    }
    if manual && !listen.ip().is_loopback() {
        errors.push(ConfigError::new(
            "clock.mode",
            None,
            format!("\"manual\" is for tests on loopback; {listen} is reachable from the network"),
        ));
    }
}

/// A gateway others can reach (API keys, or a listen address off loopback)
/// must not trust a secret this repository ships: anyone could sign with it.
fn shipped_secrets(config: &Config, errors: &mut Vec<ConfigError>) {
    let reachable = !config.api_keys.is_empty() || !config.server.listen.ip().is_loopback();
    if !reachable {
        return;
    }
    let why = "is a value shipped in Crossgate's repository (the simulator's), which anyone can read: set your own (env:NAME keeps it out of the file)";
    let signing = [
        ("unsubscribe.secret", &config.unsubscribe.secret),
        ("callbacks.secret", &config.callbacks.secret),
        ("inbox.secret", &config.inbox.secret),
    ];
    for (key, secret) in signing {
        if let Some(secret) = secret
            && super::shipped::is_shipped(secret.get_ref())
        {
            errors.push(ConfigError::new(key, Some(secret.span()), why));
        }
    }
    for (i, connector) in config.connectors.iter().enumerate() {
        for (setting, value) in &connector.settings {
            if super::shipped::is_shipped(value) {
                errors.push(ConfigError::new(
                    format!("connectors[{i}].config.{setting}"),
                    connector.setting_spans.get(setting).cloned(),
                    why,
                ));
            }
        }
    }
}

/// `[conversions.<event>]`: an event name, one way to its value, a currency code.
fn conversions(config: &Config, errors: &mut Vec<ConfigError>) {
    for (event, conversion) in &config.conversions {
        let key = format!("conversions.{event}");
        if !super::journeys::valid_name(event) {
            errors.push(ConfigError::new(&key, None, "not an event name"));
        }
        if conversion.value.is_some() && conversion.fixed_value.is_some() {
            errors.push(ConfigError::new(
                format!("{key}.fixed_value"),
                None,
                "value (a property) or fixed_value, not both",
            ));
        }
        if let Some(currency) = &conversion.currency
            && !(currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase()))
        {
            errors.push(ConfigError::new(
                format!("{key}.currency"),
                None,
                format!("{currency:?} is not an ISO 4217 code like EUR"),
            ));
        }
    }
}

/// `[broadcasts]`: a pace and limits that let a fan-out move.
fn broadcasts(config: &Config, errors: &mut Vec<ConfigError>) {
    let b = &config.broadcasts;
    let checks = [
        (
            "broadcasts.rate_per_second",
            (1..=10_000).contains(&b.rate_per_second),
            "between 1 and 10000",
        ),
        ("broadcasts.max_backlog", b.max_backlog >= 1, "at least 1"),
        ("broadcasts.tick_ms", b.tick_ms >= 10, "at least 10"),
        ("broadcasts.lease_ms", b.lease_ms >= 1_000, "at least 1000"),
    ];
    for (key, ok, why) in checks {
        if !ok {
            errors.push(ConfigError::new(key, None, why));
        }
    }
}

/// `[health]`: a share is a share, and a circuit needs a window to count in.
fn health(config: &Config, errors: &mut Vec<ConfigError>) {
    let h = &config.health;
    if !(h.open_at > 0.0 && h.open_at <= 1.0) {
        errors.push(ConfigError::new(
            "health.open_at",
            None,
            format!(
                "{} is not a share of attempts: give one above 0 and at most 1",
                h.open_at
            ),
        ));
    }
    for (key, ms) in [("health.window", h.window), ("health.open_for", h.open_for)] {
        if ms < 1_000 {
            errors.push(ConfigError::new(key, None, "must be at least 1s"));
        }
    }
    if h.probes == 0 || h.min_attempts == 0 {
        errors.push(ConfigError::new(
            "health",
            None,
            "probes and min_attempts must be at least 1",
        ));
    }
    if h.sync_ms == 0 || h.sync_ms > u64::try_from(h.window).unwrap_or(0) {
        errors.push(ConfigError::new(
            "health.sync_ms",
            None,
            "must be above 0 and within the window",
        ));
    }
}

/// `[retention]`: messages outlive every window that reads them back:
/// caps, attribution, idempotency and dedup keys, and offers. Retries need
/// no check (an open message is never purged), and segments' event windows
/// are checked with the segment.
fn retention(config: &Config, errors: &mut Vec<ConfigError>) {
    let day = 86_400_000;
    let r = &config.retention;
    for (key, kept) in [
        ("retention.messages", r.messages),
        ("retention.events", r.events),
    ] {
        if kept < day {
            errors.push(ConfigError::new(key, None, "at least 1d"));
        }
    }
    let secs = |s: u64| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX);
    let mut message_windows: Vec<(String, i64)> = vec![
        (
            "messages.idempotency_window_secs".into(),
            secs(config.messages.idempotency_window_secs),
        ),
        (
            "messages.dedup_window_secs".into(),
            secs(config.messages.dedup_window_secs),
        ),
    ];
    for (name, category) in &config.categories {
        if let Some(cap) = &category.frequency_cap {
            message_windows.push((format!("categories.{name}.frequency_cap.per"), cap.per));
        }
    }
    for (event, conversion) in &config.conversions {
        message_windows.push((format!("conversions.{event}.window"), conversion.window));
    }
    for (name, journey) in &config.journeys {
        for (i, step) in journey.steps.iter().enumerate() {
            if let super::journeys::StepKind::Send(send) = &step.kind
                && let Some(window) = send.offer_window
            {
                message_windows.push((format!("journeys.{name}.steps[{i}].offer_window"), window));
            }
        }
    }
    for (key, window) in message_windows {
        if window > r.messages {
            errors.push(ConfigError::new(
                key,
                None,
                format!(
                    "longer than retention.messages ({}): the messages it looks back on would be gone",
                    crate::routing::policy::humane(r.messages)
                ),
            ));
        }
    }
}

/// `[segments.<name>]`: valid names, known regions and categories.
fn segments(config: &Config, errors: &mut Vec<ConfigError>) {
    let is_region = |region: &str| config.regions.contains_key(region);
    for (name, segment) in &config.segments {
        if !super::journeys::valid_name(name) {
            errors.push(ConfigError::new(
                format!("segments.{name}"),
                None,
                "a segment's name is 1-64 letters, digits, '_', '.', '-' and ':'",
            ));
        }
        let problems = super::segments::check(
            segment,
            &is_region,
            &config.categories,
            config.retention.events,
        );
        for (field, why) in problems {
            errors.push(ConfigError::new(
                format!("segments.{name}.{field}"),
                None,
                why,
            ));
        }
    }
}

/// `server.api_keys`: secrets resolved, long enough to resist guessing.
fn api_keys(
    config: &mut Config,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) {
    let mut names = HashSet::new();
    for (i, entry) in config.server.api_keys.iter().enumerate() {
        let (name, secret, scopes) = match entry.get_ref() {
            ApiKeyConfig::Key(secret) => ("default".to_owned(), secret, Scope::all()),
            ApiKeyConfig::Named(named) => (named.name.clone(), &named.key, named.scopes.clone()),
        };
        let key = format!("server.api_keys[{i}]");
        let valid_name = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
        if !valid_name {
            errors.push(ConfigError::new(
                format!("{key}.name"),
                Some(entry.span()),
                "a key's name is 1-64 characters of letters, digits, - and _",
            ));
        } else if matches!(entry.get_ref(), ApiKeyConfig::Named(_)) && !names.insert(name.clone()) {
            errors.push(ConfigError::new(
                format!("{key}.name"),
                Some(entry.span()),
                format!("duplicate key name {name:?}"),
            ));
        }
        match resolve_secret(secret, env) {
            Ok(value) if value.len() >= 16 => config.api_keys.push(ApiKey {
                name,
                secret: value,
                scopes,
            }),
            Ok(_) => errors.push(ConfigError::new(
                key,
                Some(entry.span()),
                "API keys must be at least 16 characters",
            )),
            Err(e) => errors.push(ConfigError::new(key, Some(entry.span()), e)),
        }
    }
    let listen = config.server.listen;
    if config.api_keys.is_empty() && !listen.ip().is_loopback() {
        errors.push(ConfigError::new(
            "server.listen",
            None,
            format!(
                "{listen} is reachable from the network: set server.api_keys, or listen on 127.0.0.1 behind a proxy that authenticates"
            ),
        ));
    }
}

/// `storage.url`: `sqlite://PATH` or a PostgreSQL URL (`env:NAME` keeps
/// its password out of the file).
fn storage(
    config: &mut Config,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) {
    let span = config.storage.url.span();
    let error = |message: String| ConfigError::new("storage.url", Some(span.clone()), message);
    let url = match resolve_secret(config.storage.url.get_ref(), env) {
        Ok(url) => url,
        Err(e) => return errors.push(error(e)),
    };
    if let Some(path) = url.strip_prefix("sqlite://") {
        if path.is_empty() {
            return errors.push(error("sqlite:// needs a file path".into()));
        }
        config.database = Database::Sqlite(PathBuf::from(path));
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.parse::<tokio_postgres::Config>() {
            Ok(_) => config.database = Database::Postgres(url),
            Err(e) => errors.push(error(format!("not a PostgreSQL URL: {e}"))),
        }
    } else {
        errors.push(error(
            "must be sqlite://PATH or postgres://USER@HOST/DATABASE".into(),
        ));
    }
    if config.storage.max_connections == 0 {
        errors.push(ConfigError::new(
            "storage.max_connections",
            None,
            "must be at least 1",
        ));
    }
}

/// A URL as it may be logged: `user:secret@` becomes `user:***@`.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user, host)) if user.contains(':') => {
            let user = user.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_owned(),
    }
}

/// Limits and timings that must be positive or within a range.
fn limits(config: &Config, errors: &mut Vec<ConfigError>) {
    let positive = [
        ("server.max_backlog", config.server.max_backlog),
        (
            "server.max_webhook_body_bytes",
            config.server.max_webhook_body_bytes as u64,
        ),
        ("server.header_timeout_ms", config.server.header_timeout_ms),
        (
            "server.max_connections",
            config.server.max_connections as u64,
        ),
        ("plugins.memory_limit_mb", config.plugins.memory_limit_mb),
        ("plugins.cpu_budget_ms", config.plugins.cpu_budget_ms),
        ("plugins.timeout_ms", config.plugins.timeout_ms),
        (
            "plugins.max_instances",
            u64::from(config.plugins.max_instances),
        ),
        (
            "plugins.max_requests_per_call",
            u64::from(config.plugins.max_requests_per_call),
        ),
        (
            "plugins.max_requests_in_flight",
            u64::from(config.plugins.max_requests_in_flight),
        ),
        ("dispatch.concurrency", config.dispatch.concurrency as u64),
        (
            "dispatch.max_attempts",
            u64::from(config.dispatch.max_attempts),
        ),
        ("dispatch.lease_ms", config.dispatch.lease_ms),
    ];
    for (key, value) in positive {
        if value == 0 {
            errors.push(ConfigError::new(key, None, "must be greater than 0"));
        }
    }
    if !(0..=19).contains(&config.dispatch.nice) {
        errors.push(ConfigError::new(
            "dispatch.nice",
            None,
            "must be between 0 (the API's priority) and 19 (the lowest)",
        ));
    }
    if config.dispatch.backoff_base_ms > config.dispatch.backoff_max_ms {
        errors.push(ConfigError::new(
            "dispatch.backoff_base_ms",
            None,
            "must not exceed dispatch.backoff_max_ms",
        ));
    }
}

/// `[callbacks]`: a long enough secret, and a default URL only with one.
fn callbacks(
    config: &mut Config,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) {
    signing_secret(
        "callbacks.secret",
        &mut config.callbacks.secret,
        env,
        errors,
    );
    let urls = [
        ("callbacks.default_url", &config.callbacks.default_url),
        ("callbacks.inbound_url", &config.callbacks.inbound_url),
    ];
    for (key, url) in urls {
        let Some(url) = url else { continue };
        if let Err(e) = callback_url(url.get_ref(), &config.callbacks.allowed_hosts) {
            errors.push(ConfigError::new(key, Some(url.span()), e));
        }
        if config.callbacks.secret.is_none() {
            errors.push(ConfigError::new(
                key,
                Some(url.span()),
                "needs callbacks.secret to sign callbacks",
            ));
        }
    }
}

/// A key that signs what others verify: resolved, and long enough to
/// resist guessing.
fn signing_secret(
    key: &str,
    secret: &mut Option<Spanned<String>>,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) {
    let Some(given) = secret.as_ref() else {
        return;
    };
    let span = given.span();
    match resolve_secret(given.get_ref(), env) {
        Ok(value) if value.len() >= 16 => *secret = Some(Spanned::new(span, value)),
        Ok(_) => errors.push(ConfigError::new(
            key,
            Some(span),
            "must be at least 16 characters",
        )),
        Err(e) => errors.push(ConfigError::new(key, Some(span), e)),
    }
}

/// `[unsubscribe]`: a long enough secret, a mailto that is an address.
fn unsubscribe(
    config: &mut Config,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) {
    signing_secret(
        "unsubscribe.secret",
        &mut config.unsubscribe.secret,
        env,
        errors,
    );
    if let Some(mailto) = &config.unsubscribe.mailto
        && let Err(e) = crate::customer::email(mailto.get_ref())
    {
        errors.push(ConfigError::new(
            "unsubscribe.mailto",
            Some(mailto.span()),
            e,
        ));
    }
}

/// `[inbox]`: a long enough secret, and no feed channel routed without
/// one (nobody could read what it delivers).
fn inbox(config: &mut Config, env: &dyn Fn(&str) -> Option<String>, errors: &mut Vec<ConfigError>) {
    signing_secret("inbox.secret", &mut config.inbox.secret, env, errors);
    if config.inbox.secret.is_some() {
        return;
    }
    let routed = config
        .routing
        .default
        .iter()
        .map(|c| ("routing.default".to_owned(), c))
        .chain(config.routing.regions.iter().flat_map(|(region, order)| {
            order
                .iter()
                .map(move |c| (format!("routing.regions.{region}"), c))
        }));
    for (key, channel) in routed {
        if channel.is_feed() {
            errors.push(ConfigError::new(
                key,
                None,
                format!(
                    "{channel} needs [inbox] secret: customers read their feed with tokens it signs"
                ),
            ));
        }
    }
}

/// `sms_footer` of each category: known regions, each with a `default` text
/// for customers whose language it does not list.
fn sms_footers(config: &Config, errors: &mut Vec<ConfigError>) {
    for (name, category) in &config.categories {
        for (region, by_locale) in &category.sms_footer {
            let key = format!("categories.{name}.sms_footer.{region}");
            if region != "default" && !config.regions.contains_key(region) {
                errors.push(ConfigError::new(
                    &key,
                    None,
                    format!("no region {region:?} in [regions] (or write default)"),
                ));
            }
            if !by_locale.contains_key("default") {
                errors.push(ConfigError::new(
                    &key,
                    None,
                    "needs a default text for customers in other languages",
                ));
            }
            if let Some((locale, _)) = by_locale.iter().find(|(l, text)| {
                l.as_str() != "default" && !crate::locale::valid(l) || text.trim().is_empty()
            }) {
                errors.push(ConfigError::new(
                    format!("{key}.{locale}"),
                    None,
                    "keys are locale tags (en, nl-BE) or default; texts are not empty",
                ));
            }
        }
    }
}

/// `[regions]` and `[routing.regions]`: each country in one region, every
/// routed region defined.
fn regions(config: &Config, errors: &mut Vec<ConfigError>) {
    let mut countries = HashSet::new();
    for (region, members) in &config.regions {
        for spanned in members {
            let country = spanned.get_ref();
            let valid = country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase());
            if !valid {
                errors.push(ConfigError::new(
                    format!("regions.{region}"),
                    Some(spanned.span()),
                    format!("{country:?} is not an ISO 3166-1 alpha-2 code like \"NL\""),
                ));
            } else if !countries.insert(country.clone()) {
                errors.push(ConfigError::new(
                    format!("regions.{region}"),
                    Some(spanned.span()),
                    format!("{country} is in more than one region"),
                ));
            }
        }
    }
    for region in config.routing.regions.keys() {
        if !config.regions.contains_key(region) {
            errors.push(ConfigError::new(
                format!("routing.regions.{region}"),
                None,
                format!("no region {region:?} in [regions]"),
            ));
        }
    }
}

/// Connectors per region: each connector's `regions` and each
/// `[routing.connectors.<region>]` order name regions that exist (or
/// `default`), and an order names connectors of its channel that serve
/// its region, once each.
/// `[connectors.senders]`: pools keyed by a country, a known region or
/// `default`, each of numbers in E.164 (WhatsApp: only those) or short
/// codes, or alphanumeric sender IDs (1-11 letters, digits, spaces) where
/// the country allows them.
fn connector_senders(config: &Config, errors: &mut Vec<ConfigError>) {
    use crate::message::Channel;
    use crate::routing::senders::NUMBERS_ONLY;
    for (i, connector) in config.connectors.iter().enumerate() {
        for (pool, senders) in &connector.senders {
            let key = format!("connectors[{i}].senders.{pool}");
            let mut refuse = |why: String| {
                errors.push(ConfigError::new(&key, Some(connector.span.clone()), why));
            };
            if !matches!(connector.channel, Channel::Sms | Channel::Whatsapp) {
                refuse(format!(
                    "{} connectors send from no number",
                    connector.channel
                ));
                continue;
            }
            let country = pool.len() == 2 && pool.bytes().all(|b| b.is_ascii_uppercase());
            if !(country || pool == "default" || config.regions.contains_key(pool)) {
                refuse(format!(
                    "{pool:?} is not a country (ISO 3166, like NL), a region of [regions] or default"
                ));
            }
            if senders.is_empty() {
                refuse("an empty pool sends from nothing: leave the key out".into());
            }
            let numbers_only = NUMBERS_ONLY.contains(&pool.as_str())
                || config.regions.get(pool).is_some_and(|countries| {
                    countries
                        .iter()
                        .any(|c| NUMBERS_ONLY.contains(&c.get_ref().as_str()))
                });
            for sender in senders {
                let number = crate::phone::e164(sender).is_ok();
                let short_code =
                    (3..=8).contains(&sender.len()) && sender.bytes().all(|b| b.is_ascii_digit());
                let alphanumeric = (1..=11).contains(&sender.len())
                    && sender
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b' ')
                    && sender.bytes().any(|b| b.is_ascii_alphabetic());
                let why = match connector.channel {
                    Channel::Whatsapp if !number => Some("a WhatsApp sender is a number in E.164"),
                    _ if number || short_code => None,
                    _ if !alphanumeric => Some(
                        "not a number in E.164, a short code or a sender ID of 1-11 letters and digits",
                    ),
                    _ if numbers_only => Some(
                        "carriers there refuse alphanumeric sender IDs: give a number or short code",
                    ),
                    _ => None,
                };
                if let Some(why) = why {
                    refuse(format!("{sender:?}: {why}"));
                }
            }
        }
    }
}

/// `expect_report_within`: long enough for a provider to report at all.
fn connector_silence(config: &Config, errors: &mut Vec<ConfigError>) {
    for (i, connector) in config.connectors.iter().enumerate() {
        if connector.expect_report_within.is_some_and(|ms| ms < 1_000) {
            errors.push(ConfigError::new(
                format!("connectors[{i}].expect_report_within"),
                Some(connector.span.clone()),
                "must be at least 1s: providers report in seconds at best",
            ));
        }
    }
}

fn connector_regions(config: &Config, errors: &mut Vec<ConfigError>) {
    let known = |region: &str| region == "default" || config.regions.contains_key(region);
    for (i, connector) in config.connectors.iter().enumerate() {
        let Some(regions) = &connector.regions else {
            continue;
        };
        let key = format!("connectors[{i}].regions");
        if regions.is_empty() {
            errors.push(ConfigError::new(
                &key,
                Some(connector.span.clone()),
                "an empty list serves nobody: leave regions out to serve every region",
            ));
        }
        for region in regions.iter().filter(|r| !known(r)) {
            errors.push(ConfigError::new(
                &key,
                Some(connector.span.clone()),
                format!("no region {region:?} in [regions] (or write default)"),
            ));
        }
    }
    for (region, by_channel) in &config.routing.connectors {
        if !known(region) {
            errors.push(ConfigError::new(
                format!("routing.connectors.{region}"),
                None,
                format!("no region {region:?} in [regions] (or write default)"),
            ));
        }
        for (channel, names) in by_channel {
            let key = format!("routing.connectors.{region}.{channel}");
            let mut seen = HashSet::new();
            for name in names {
                let connector = config.connectors.iter().find(|c| &c.name == name);
                let why = match connector {
                    None => Some(format!("no connector named {name:?}")),
                    Some(c) if c.channel != *channel => {
                        Some(format!("{name:?} sends {}, not {channel}", c.channel))
                    }
                    Some(c) if c.regions.as_ref().is_some_and(|r| !r.contains(region)) => {
                        Some(format!("{name:?} does not serve {region} (its regions)"))
                    }
                    Some(_) if !seen.insert(name) => Some(format!("{name:?} is listed twice")),
                    Some(_) => None,
                };
                if let Some(why) = why {
                    errors.push(ConfigError::new(&key, None, why));
                }
            }
        }
    }
}

/// `[[connectors]]`: unique names, what each channel allows, secrets resolved.
fn connectors(
    config: &mut Config,
    raw_connectors: Vec<(String, std::ops::Range<usize>, ConnectorConfig)>,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) {
    let mut names = HashSet::new();
    for (key, span, raw) in raw_connectors {
        let name = raw.name.get_ref();
        if !is_connector_name(name) {
            errors.push(ConfigError::new(
                format!("{key}.name"),
                Some(raw.name.span()),
                format!("{name:?} must be 1-64 characters of a-z, 0-9, - and _"),
            ));
        } else if !names.insert(name.clone()) {
            errors.push(ConfigError::new(
                format!("{key}.name"),
                Some(raw.name.span()),
                format!("duplicate connector name {name:?}"),
            ));
        }
        if raw.channel.is_feed() {
            errors.push(ConfigError::new(
                format!("{key}.channel"),
                Some(span.clone()),
                format!(
                    "{} is delivered by the gateway itself ([inbox]), not by a plugin",
                    raw.channel
                ),
            ));
        } else if name == "inbox" || name == "in_app" {
            errors.push(ConfigError::new(
                format!("{key}.name"),
                Some(raw.name.span()),
                format!("{name:?} is the gateway's own connector of that channel"),
            ));
        }
        if raw.max_attempts == Some(0) {
            errors.push(ConfigError::new(
                format!("{key}.max_attempts"),
                Some(span.clone()),
                "must be greater than 0",
            ));
        }
        if let Some(calls) = raw
            .calls_per_instance
            .as_ref()
            .filter(|c| *c.get_ref() == 0)
        {
            errors.push(ConfigError::new(
                format!("{key}.calls_per_instance"),
                Some(calls.span()),
                "must be greater than 0 (1 is a fresh instance for every call)",
            ));
        }
        if raw.push_format.is_some() && raw.channel != crate::message::Channel::Push {
            errors.push(ConfigError::new(
                format!("{key}.push_format"),
                Some(span.clone()),
                "only push connectors take a push_format",
            ));
        }
        if raw.allowed_hosts.get_ref().is_empty() {
            errors.push(ConfigError::new(
                format!("{key}.allowed_hosts"),
                Some(raw.allowed_hosts.span()),
                "must list at least one origin the plugin may call",
            ));
        }
        let rate = match &raw.rate {
            None if raw.burst.is_some() => {
                errors.push(ConfigError::new(
                    format!("{key}.burst"),
                    Some(span.clone()),
                    "a burst without a rate paces nothing: add rate = \"30/s\"",
                ));
                None
            }
            None => None,
            Some(text) => match super::Rate::parse(text.get_ref(), raw.burst.unwrap_or(1)) {
                Ok(rate) => Some(rate),
                Err(why) => {
                    errors.push(ConfigError::new(
                        format!("{key}.rate"),
                        Some(text.span()),
                        why,
                    ));
                    None
                }
            },
        };
        let mut settings = Vec::new();
        let mut setting_spans = BTreeMap::new();
        let mut written_in_file = std::collections::BTreeSet::new();
        for (setting, value) in &raw.config {
            setting_spans.insert(setting.get_ref().clone(), setting.span());
            let setting = setting.get_ref();
            let text = match value.get_ref() {
                toml::Value::String(s) => {
                    if !s.starts_with("env:") && !s.starts_with("file:") {
                        written_in_file.insert(setting.clone());
                    }
                    resolve_secret(s, env)
                }
                toml::Value::Integer(i) => Ok(i.to_string()),
                toml::Value::Float(f) => Ok(f.to_string()),
                toml::Value::Boolean(b) => Ok(b.to_string()),
                _ => Err("must be a string, number or boolean".to_owned()),
            };
            match text {
                Ok(text) => settings.push((setting.clone(), text)),
                Err(e) => errors.push(ConfigError::new(
                    format!("{key}.config.{setting}"),
                    Some(value.span()),
                    e,
                )),
            }
        }
        config.connectors.push(Connector {
            name: name.clone(),
            plugin: raw.plugin.get_ref().clone(),
            plugin_span: raw.plugin.span(),
            channel: raw.channel,
            max_attempts: raw.max_attempts.unwrap_or(config.dispatch.max_attempts),
            cost: raw.cost.clone(),
            regions: raw.regions.clone(),
            senders: raw.senders.clone(),
            expect_report_within: raw.expect_report_within,
            rate,
            push_format: raw.push_format.unwrap_or_default(),
            calls_per_instance: raw.calls_per_instance.map_or(1, |c| c.into_inner()),
            allowed_hosts: raw.allowed_hosts.into_inner(),
            settings,
            setting_spans,
            written_in_file,
            span,
        });
    }
}

/// `env:NAME` reads an environment variable, `file:PATH` a file (a service
/// account key), anything else is the value itself.
pub fn resolve_secret(value: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    if let Some(var) = value.strip_prefix("env:") {
        return env(var).ok_or_else(|| format!("environment variable {var} is not set"));
    }
    if let Some(path) = value.strip_prefix("file:") {
        return std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"));
    }
    Ok(value.to_owned())
}

/// A status callback URL: absolute http or https, no credentials (callbacks
/// are signed, and a URL is logged), and not a loopback, private or
/// link-local address unless its origin is in `allowed`. A host name is
/// checked again when it is resolved, at every send.
pub fn callback_url(url: &str, allowed: &[Origin]) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|_| "is not a URL".to_owned())?;
    let origin =
        Origin::of(&uri).map_err(|_| "must be an absolute http or https URL".to_owned())?;
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err("must not carry credentials (user:password@): callbacks are signed".into());
    }
    let literal = origin.host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<std::net::IpAddr>()
        && !crate::outbound::is_public(ip)
        && !allowed.contains(&origin)
    {
        return Err(format!(
            "{origin} is not a public address; list it in callbacks.allowed_hosts to allow it"
        ));
    }
    Ok(())
}

fn is_connector_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

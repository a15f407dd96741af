//! # Crossgate
//!
//! A cross-channel message gateway: platforms send one message for one
//! customer over HTTP; Crossgate hands it to a sandboxed WebAssembly
//! connector that speaks the provider's API, retries and falls back, and
//! records every attempt.
//!
//! # Layout
//!
//! - [`config`]: the TOML schema and validation that reports every error with key, line and column.
//! - [`api`]: the HTTP API (axum): a thin edge that parses, calls the domain, answers.
//! - [`send`]: the send use-case the API, journeys and broadcasts share: validate, audience,
//!   plan, words, a new message; its refusals are [`send::SendError`].
//! - [`routing`]: the planner every send goes through, by customer or by address.
//! - [`customer`]: profiles, addresses, consent and the suppression list.
//! - [`store`]: durable state behind the [`store::Store`] trait: SQLite with group commit for one
//!   node, PostgreSQL for several; versioned migrations for both.
//! - [`dispatch`]: workers that lease due deliveries, call connectors, and retry or fall back.
//! - [`health`]: each connector's circuit, judged on every node's attempts (through the store).
//! - [`pacing`]: rate limits per provider account, one timeline of turns for every node.
//! - [`plugins`]: the wasmtime host: engine, compile cache, per-call limits, egress policy;
//!   the only module that sees the contract's bindings.
//! - [`webhooks`]: provider callbacks in (statuses, opt-outs, bounces) and status
//!   callbacks out to the platform, signed and retried from an outbox.
//! - [`outbound`]: the HTTP client connectors and callbacks share.
//! - [`metrics`]: counters and histograms for `/metrics`.
//! - [`live`]: the reloadable part of the configuration (routing, categories, connectors, templates).
//! - [`journeys`]: events drive runs through steps (a pure engine, config, the runner every node runs).
//! - [`templates`]: template folders per channel and locale, compiled, checked and rendered.
//! - [`locale`]: BCP 47 tags and the fallback chain templates and SMS footers are chosen by.
//! - [`expression`]: the condition language journeys use (minijinja expressions).
//! - [`sms`]: GSM-7/UCS-2 encoding, segment counts and smart encoding of SMS text.
//! - `server`: the HTTP server under the API: timeouts and a connection limit.
//! - [`origin`]: scheme, host and port, as `allowed_hosts` lists and requests are checked.
//! - [`feed`]: the customer's own feed: the inbox and in-app channels the gateway delivers
//!   itself, feed tokens, live streams on every node, and what a read does to its message.
//! - [`preferences`]: what a customer may choose on their own page (categories by channel)
//!   and what consent a choice writes.
//! - [`clock`]: the gateway's one time, the system's or (tests, rehearsals) a manual one.
//! - [`message`]: the vocabulary the others share (channel, status and its lifecycle, content).
//! - [`retention`]: expired keys and history past `[retention]`, purged a short batch at a time.

pub mod api;
pub mod campaigns;
pub mod clock;
pub mod config;
pub mod customer;
pub mod dispatch;
pub(crate) mod every;
pub mod expression;
pub mod feed;
pub mod health;
pub mod journeys;
pub mod live;
pub mod locale;
pub mod message;
pub mod metrics;
pub mod origin;
pub mod outbound;
pub mod pacing;
pub mod phone;
pub mod plugin_kit;
pub mod plugins;
pub mod preferences;
pub mod retention;
pub mod routing;
pub mod send;
mod server;
pub mod sms;
pub mod store;
pub mod templates;
pub mod webhooks;

use anyhow::Context as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

/// The unsubscribe links' key of a gateway whose configuration gives none:
/// made at random by the first node to start and kept in the store, so no
/// install signs with a key someone else knows, and every node and restart
/// verifies what another signed.
async fn unsubscribe_secret(store: &dyn store::Store, now: i64) -> anyhow::Result<String> {
    let candidate: String = {
        use rand::Rng as _;
        let bytes: [u8; 32] = rand::rng().random();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    };
    store
        .shared_secret("unsubscribe", &candidate, now)
        .await
        .context("cannot read or store the unsubscribe secret")
}

/// Run the gateway on `listener` until `shutdown` resolves.
///
/// Stops accepting requests first, then gives attempts in flight
/// `server.shutdown_grace_ms` to finish; anything left stays queued for the
/// next start.
pub async fn serve(
    listener: TcpListener,
    mut config: config::Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let node = config.node_name();
    let clock = Arc::new(clock::Clock::from_config(&config.clock));
    let store = store::open(
        &config.database,
        config.storage.max_connections,
        &node,
        clock.now(),
    )
    .await
    .with_context(|| format!("cannot open {}", config.database.describe()))?;
    tracing::info!(node, database = %config.database.describe(), "store open");
    if config.unsubscribe.secret.is_none() {
        config.unsubscribe.secret = Some(toml::Spanned::new(
            0..0,
            unsubscribe_secret(&*store, clock.now()).await?,
        ));
    }
    let plugins = plugins::PluginHost::load(&config).await.map_err(|errors| {
        let lines: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {}", e.key, e.message))
            .collect();
        anyhow::anyhow!("cannot load connectors:\n{}", lines.join("\n"))
    })?;
    for warning in plugins.warnings() {
        tracing::warn!(key = %warning.key, "{}", warning.message);
    }
    for (name, info) in plugins.connectors() {
        tracing::info!(
            connector = name,
            plugin = %info.name,
            version = %info.version,
            channel = %info.channel,
            contract = %info.contract_version,
            "connector loaded"
        );
    }
    let templates = templates::for_config(&config).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        anyhow::anyhow!("cannot load templates:\n{}", lines.join("\n"))
    })?;
    tracing::info!(count = templates.len(), "templates loaded");
    let mistakes =
        journeys::check_config(&config, &|t| templates.get(t).map(|t| t.category.clone()));
    if !mistakes.is_empty() {
        let lines: Vec<String> = mistakes
            .iter()
            .map(|e| format!("{}: {}", e.key, e.message))
            .collect();
        anyhow::bail!("invalid journeys:\n{}", lines.join("\n"));
    }
    let wake = Arc::new(Notify::new());
    let (stop, stopped) = watch::channel(false);
    let grace = Duration::from_millis(config.server.shutdown_grace_ms);
    let live = Arc::new(live::Live::new(
        live::Routing::new(&config, plugins, templates),
        &config,
    ));
    let metrics = Arc::new(metrics::Metrics::new());
    let health = Arc::new(health::Health::new(config.health.clone(), &node));
    let dispatcher = dispatch::Dispatcher::new(
        &config,
        store.clone(),
        live.clone(),
        wake.clone(),
        metrics.clone(),
        clock.clone(),
        health.clone(),
    );
    let delivery = dispatch::runtime::DeliveryRuntime::start(&config.dispatch)
        .context("cannot start the delivery threads")?;
    let dispatching = delivery.spawn(dispatcher.run(stopped.clone(), grace));
    let calling_back = webhooks::CallbackSender::new(
        &config.callbacks,
        store.clone(),
        metrics.clone(),
        clock.clone(),
    )
    .map(|sender| delivery.spawn(sender.run(stopped.clone())));
    let purging = tokio::spawn(retention::run(
        store.clone(),
        clock.clone(),
        config.retention.clone(),
        stopped.clone(),
    ));

    let judging = tokio::spawn(health::run(
        health.clone(),
        store.clone(),
        clock.clone(),
        stopped.clone(),
    ));
    let summing = tokio::spawn(campaigns::report_days::run(
        store.clone(),
        clock.clone(),
        stopped.clone(),
    ));
    let reloading = tokio::spawn(reload_on_hangup(live.clone(), stopped.clone()));
    let state = Arc::new(api::AppState::new(
        &config,
        store.clone(),
        wake,
        live,
        metrics,
        clock.clone(),
        health,
    ));
    let runner = journeys::runner::Runner::new(
        &config.journey_runner,
        store.clone(),
        state.live.clone(),
        Arc::new(journeys::sends::JourneySends {
            send: state.send.clone(),
        }),
        state.clock.clone(),
        state.journeys_wake.clone(),
    );
    // Background work like delivery: on the delivery threads, below the API
    // in priority, so a burst of events is accepted (durably) first.
    let running_journeys = delivery.spawn(runner.run(stopped.clone()));
    let fanout = campaigns::fanout::Fanout::new(
        &config.broadcasts,
        store.clone(),
        Arc::new(campaigns::broadcasts::BroadcastMembers {
            send: state.send.clone(),
            rate: config.broadcasts.rate_per_second,
        }),
        clock.clone(),
    );
    let fanning_out = delivery.spawn(fanout.run(stopped.clone()));
    let sampling = tokio::spawn(state.backlog.clone().sample(store, clock, stopped));
    tracing::info!(addr = %listener.local_addr()?, "crossgate listening");
    // Live feed streams never end on their own: they end first, so the
    // server's drain is not spent waiting for them.
    let hub = state.feed_hub.clone();
    let shutdown = async move {
        shutdown.await;
        if let Some(hub) = hub {
            hub.close();
        }
    };
    server::run(listener, api::router(state), &config.server, shutdown).await;

    tracing::info!("shutting down: finishing attempts in flight");
    let _ = stop.send(true);
    dispatching.await.context("dispatcher panicked")?;
    if let Some(calling_back) = calling_back {
        calling_back.await.context("callback sender panicked")?;
    }
    purging.await.context("the purger panicked")?;
    reloading.await.context("reload listener panicked")?;
    summing.await.context("the report's day summing panicked")?;
    judging
        .await
        .context("the connectors' health judge panicked")?;
    sampling.await.context("backlog sampler panicked")?;
    running_journeys.await.context("journey runner panicked")?;
    fanning_out.await.context("broadcast fan-out panicked")?;
    Ok(())
}

/// `SIGHUP` reloads the configuration file, as `POST /v1/admin/reload` does.
async fn reload_on_hangup(live: Arc<live::Live>, mut stop: watch::Receiver<bool>) {
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        tracing::warn!("cannot listen for SIGHUP; reload with POST /v1/admin/reload");
        return;
    };
    loop {
        tokio::select! {
            _ = hangups.recv() => match live.reload().await {
                Ok(reloaded) if reloaded.restart_needed.is_empty() => {
                    tracing::info!(connectors = ?reloaded.connectors, "SIGHUP: configuration reloaded")
                }
                Ok(reloaded) => tracing::warn!(
                    connectors = ?reloaded.connectors,
                    restart_needed = ?reloaded.restart_needed,
                    "SIGHUP: configuration reloaded; the changes to {} take effect at a restart",
                    reloaded.restart_needed.join(", ")
                ),
                Err(report) => tracing::error!("SIGHUP: configuration not reloaded, the running one stays:\n{report}"),
            },
            _ = stop.changed() => return,
        }
    }
}

/// `crossgate check`: validate `text`, load every plugin it names, compile
/// every template and render each with its example data.
///
/// Returns a one-line summary, or every problem found, each as
/// `file:line:column: ...`.
pub async fn check(
    source_name: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let config = config::parse(source_name, text, env).map_err(|r| r.to_string())?;
    let ready = live::Ready::prepare(source_name, text, config).await?;
    Ok(ready.summary(source_name))
}

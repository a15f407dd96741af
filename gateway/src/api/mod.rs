//! The HTTP API platforms call.

mod auth;
pub mod backlog;
mod before;
mod body;
pub mod broadcasts;
mod cancellations;
mod connectors;
mod console;
mod cursor;
mod customers;
mod edge;
pub mod error;
mod experiments;
mod guard;
mod idempotency;
mod inbox;
pub mod journeys;
mod messages;
pub mod openapi;
mod operations;
mod page;
mod preferences;
mod reports;
mod routes;
mod search;
mod segments;
mod suppressions;
mod unsubscribe;
mod webhooks;

pub use auth::Caller;
pub use error::ApiError;

use crate::config::Config;
use crate::store::Store;
use axum::Router;

use axum::http::StatusCode;
use axum::middleware;

use axum::routing::{get, post};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// How long one API request may take before the client gets a 408.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What the handlers share.
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// Routing, categories and connectors, as of the latest reload.
    pub live: Arc<crate::live::Live>,
    pub api_keys: Vec<crate::config::ApiKey>,
    pub max_body_bytes: usize,
    /// `server.max_webhook_body_bytes`: for `/v1/webhooks/*` only.
    pub max_webhook_body_bytes: usize,
    /// `broadcasts.rate_per_second`: for broadcasts that name no rate.
    pub broadcast_rate: u32,
    /// What composing a send reads: the send use-case's own context.
    pub send: Arc<crate::send::Context>,
    /// Where customers' replies are posted (`callbacks.inbound_url`, else
    /// `default_url`); `None` when callbacks are off.
    pub reply_callback_url: Option<String>,
    /// Idempotency keys whose first request is still being processed.
    pub in_flight: Arc<idempotency::InFlight>,
    /// Tells the dispatcher that new work is waiting.
    pub wake: Arc<Notify>,
    /// Whether delivery is too far behind to take more.
    pub backlog: Arc<backlog::Backlog>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The gateway's URL as providers see it, for webhook signatures.
    pub public_url: String,
    /// The names requests may be addressed to when no API keys are set
    /// (`Host` without port): localhost, the listen address, `public_url`'s host.
    pub own_hosts: Vec<String>,
    /// The gateway's time (see [`crate::clock`]).
    pub clock: Arc<crate::clock::Clock>,
    /// Tells the journey runner that events arrived.
    pub journeys_wake: Arc<Notify>,
    /// `[journey_runner] max_event_delay`: what `POST /v1/events` warns of.
    pub max_event_delay: i64,
    /// Signs and checks customers' feed tokens; `None`: the feed is off.
    pub feed_tokens: Option<crate::feed::tokens::FeedTokens>,
    /// This node's live feed streams; `None`: the feed is off.
    pub feed_hub: Option<Arc<crate::feed::live::Hub>>,
    /// `[inbox] allowed_origins`: pages that may call the feed API.
    pub feed_origins: Vec<crate::origin::Origin>,
    /// Connectors' circuits, as this node last read them.
    pub health: Arc<crate::health::Health>,
    /// Connectors' rate limits, as started (a reload does not change them).
    pub rates: std::collections::HashMap<String, crate::config::Rate>,
}

impl AppState {
    pub fn new(
        config: &Config,
        store: Arc<dyn Store>,
        wake: Arc<Notify>,
        live: Arc<crate::live::Live>,
        metrics: Arc<crate::metrics::Metrics>,
        clock: Arc<crate::clock::Clock>,
        health: Arc<crate::health::Health>,
    ) -> Self {
        let public_url = config
            .server
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.server.listen))
            .trim_end_matches('/')
            .to_owned();
        let send = Arc::new(crate::send::Context {
            store: store.clone(),
            live: live.clone(),
            messages: config.messages.clone(),
            retention: config.retention.clone(),
            callbacks_enabled: config.callbacks.secret.is_some(),
            default_callback_url: config
                .callbacks
                .default_url
                .as_ref()
                .map(|u| u.get_ref().clone()),
            callback_hosts: config.callbacks.allowed_hosts.clone(),
            unsubscribe: config.unsubscribe.secret.as_ref().map(|secret| {
                crate::send::UnsubscribeLinks {
                    secret: secret.get_ref().as_bytes().to_vec(),
                    mailto: config
                        .unsubscribe
                        .mailto
                        .as_ref()
                        .map(|m| m.get_ref().clone()),
                    valid_for: config.unsubscribe.valid_for,
                    base_url: public_url.clone(),
                }
            }),
            feed_reachable_within: config
                .inbox
                .secret
                .as_ref()
                .map(|_| config.inbox.reachable_within),
            metrics: metrics.clone(),
            wake: wake.clone(),
            clock: clock.clone(),
            health: health.clone(),
        });
        AppState {
            reply_callback_url: config
                .callbacks
                .secret
                .as_ref()
                .and(
                    config
                        .callbacks
                        .inbound_url
                        .as_ref()
                        .or(config.callbacks.default_url.as_ref()),
                )
                .map(|u| u.get_ref().clone()),
            feed_tokens: crate::feed::tokens::FeedTokens::from_config(&config.inbox),
            feed_hub: config.inbox.secret.as_ref().map(|_| {
                crate::feed::live::Hub::start(&*store, config.inbox.max_streams, metrics.clone())
            }),
            feed_origins: config.inbox.allowed_origins.clone(),
            health,
            rates: config
                .connectors
                .iter()
                .filter_map(|c| Some((c.name.clone(), c.rate?)))
                .collect(),
            store,
            live,
            send,
            api_keys: config.api_keys.clone(),
            max_body_bytes: config.server.max_body_bytes,
            max_webhook_body_bytes: config.server.max_webhook_body_bytes,
            broadcast_rate: config.broadcasts.rate_per_second,
            in_flight: Arc::default(),
            wake,
            backlog: Arc::new(backlog::Backlog::new(config.server.max_backlog)),
            metrics,
            public_url,
            own_hosts: own_hosts(config),
            clock,
            journeys_wake: Arc::new(Notify::new()),
            max_event_delay: config.journey_runner.max_event_delay,
        }
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    let v1 = Router::new()
        .route("/v1/messages", post(messages::send).get(search::messages))
        .route("/v1/messages/{id}", get(messages::get))
        .route("/v1/cancellations", post(cancellations::cancel))
        .route("/v1/routes/preview", post(routes::preview))
        .route(
            "/v1/customers/{id}",
            axum::routing::put(customers::put)
                .get(customers::get)
                .delete(customers::delete),
        )
        .route(
            "/v1/customers/{id}/consent",
            axum::routing::patch(customers::patch_consent),
        )
        .route(
            "/v1/customers/{id}/preferences",
            get(preferences::get).put(preferences::put),
        )
        .route(
            "/v1/suppressions/{channel}/{address}",
            get(suppressions::get)
                .put(suppressions::put)
                .delete(suppressions::delete),
        )
        .route("/v1/events", post(journeys::events))
        .route("/v1/customers/{id}/journeys", get(journeys::customer_runs))
        .route("/v1/journey-runs/{id}", get(journeys::run))
        .route("/v1/journeys/{name}/simulate", post(journeys::simulate))
        .route("/v1/admin/clock", post(journeys::clock))
        .route("/v1/segments/{name}", get(segments::get).put(segments::put))
        .route("/v1/segments/{name}/count", get(segments::count))
        .route(
            "/v1/broadcasts",
            post(broadcasts::create).get(broadcasts::list),
        )
        .route("/v1/broadcasts/{id}", get(broadcasts::get))
        .route("/v1/broadcasts/{id}/refusals", get(broadcasts::refusals))
        .route("/v1/broadcasts/{id}/cancel", post(broadcasts::cancel))
        .route("/v1/reports/channels", get(reports::channels))
        .route("/v1/reports/experiments", get(experiments::report))
        .route("/v1/conversions/{event_id}", get(reports::conversion))
        .route("/metrics", get(operations::metrics))
        .route("/v1/admin/reload", post(operations::reload))
        .route("/v1/admin/work", get(operations::work))
        .route("/v1/connectors", get(connectors::list))
        .route("/v1/inbox/tokens", post(inbox::token))
        .route_layer(before::BeforeLayer::new(state.clone(), auth::authenticate));
    // The customer's own feed: feed tokens instead of API keys, and CORS.
    let feed = Router::new()
        .route("/v1/inbox/items", get(inbox::items))
        .route("/v1/inbox/items/{id}/{action}", post(inbox::act))
        .route("/v1/inbox/read-all", post(inbox::read_all))
        .route("/v1/inbox/counts", get(inbox::counts))
        .route_layer(middleware::from_fn_with_state(state.clone(), inbox::cors));
    Router::new()
        .merge(v1)
        .merge(feed)
        // Providers cannot send our API keys: their connector checks their signature.
        .route(
            "/v1/webhooks/{connector}",
            get(webhooks::receive).post(webhooks::receive),
        )
        // Mail clients follow these without our API keys: the token is the proof.
        .route(
            "/u/{token}",
            get(unsubscribe::page).post(unsubscribe::unsubscribe),
        )
        // The customer's own page: the signed link is the proof.
        .route("/p/{token}", get(preferences::show).post(preferences::save))
        .route("/sdk/inbox.js", get(inbox::script))
        // The console signs in with an API key once, then its session cookie.
        .merge(console::router())
        .route("/healthz", get(openapi::healthz))
        .route("/openapi.json", get(openapi::openapi))
        .route("/readyz", get(operations::ready))
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(before::BeforeLayer::new(state.clone(), guard::check))
        // Counted outside the guard: what it refuses (413, 415, 421) shows in
        // `/metrics` too.
        .layer(edge::CountLayer::new(state.metrics.clone()))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(TraceLayer::new_for_http())
        // Live streams stay open: outside the request timeout.
        .merge(
            Router::new()
                .route("/v1/inbox/stream", get(inbox::stream))
                .route_layer(middleware::from_fn_with_state(state.clone(), inbox::cors))
                .layer(before::BeforeLayer::new(state.clone(), guard::check))
                .layer(edge::CountLayer::new(state.metrics.clone())),
        )
        .with_state(state)
}

fn own_hosts(config: &Config) -> Vec<String> {
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "[::1]"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    let listen = config.server.listen.to_string();
    hosts.push(guard::host_name(&listen));
    if let Some(url) = &config.server.public_url
        && let Ok(uri) = url.parse::<axum::http::Uri>()
        && let Some(authority) = uri.authority()
    {
        hosts.push(guard::host_name(authority.as_str()));
    }
    hosts
}

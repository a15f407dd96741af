//! `GET /openapi.json`: the API as OpenAPI 3.1, generated from the handlers'
//! annotations and the request types themselves (`utoipa`), so it cannot
//! drift from what the code accepts.

use super::{
    broadcasts, cancellations, connectors, customers, experiments, inbox, journeys, messages,
    operations, preferences, reports, routes, search, segments, suppressions, unsubscribe,
    webhooks,
};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Crossgate",
        description = "Cross-channel message gateway: one message, the channel that reaches the customer, sandboxed connectors."
    ),
    paths(
        messages::send,
        messages::get,
        search::messages,
        routes::preview,
        cancellations::cancel,
        customers::put,
        customers::get,
        customers::delete,
        customers::patch_consent,
        suppressions::get,
        suppressions::put,
        suppressions::delete,
        webhooks::receive,
        unsubscribe::unsubscribe,
        journeys::events,
        journeys::customer_runs,
        journeys::run,
        journeys::simulate,
        journeys::clock,
        segments::put,
        segments::get,
        segments::count,
        broadcasts::create,
        broadcasts::list,
        broadcasts::get,
        broadcasts::refusals,
        broadcasts::cancel,
        reports::channels,
        experiments::report,
        reports::conversion,
        unsubscribe::page,
        operations::metrics,
        operations::ready,
        operations::reload,
        operations::work,
        connectors::list,
        inbox::items,
        inbox::counts,
        inbox::act,
        inbox::read_all,
        inbox::stream::stream,
        inbox::token,
        inbox::script,
        preferences::show,
        preferences::save,
        preferences::get,
        preferences::put,
        healthz,
        openapi,
    ),
    components(schemas(customers::ConsentChange)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;

/// `Authorization: Bearer <key>` when `server.api_keys` is set.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // The customer's own feed: a token the platform's backend signed
        // with `[inbox] secret`, never an API key.
        components.add_security_scheme(
            "feed_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A feed token: see docs/api.md, \"The customer's feed\"",
                    ))
                    .build(),
            ),
        );
    }
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1", body = Object)))]
pub async fn openapi() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

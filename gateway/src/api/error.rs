//! API errors: JSON `{"error": {"code", "message", "field"}}` with a fitting
//! status, never internals.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Seconds, for `Retry-After`.
    pub retry_after: Option<u32>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

/// The error body as documented: `{"error": {"code", "message", "field"?}}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// Machine-readable, e.g. `invalid_phone`.
    code: String,
    message: String,
    /// The request field it is about, as a JSON path.
    field: Option<String>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 422: well-formed but not acceptable.
    pub fn invalid(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message).field(field)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 500 with a generic message; the cause goes to the log only.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {cause}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the request was not processed",
        )
    }
}

/// A store failure that passes (unreachable, restarting, a full disk, ...)
/// is `503` with `Retry-After` and its reason: nothing was stored, and the
/// same request later will be taken. Anything else the store says is a `500`.
impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        if !e.is_transient() {
            return ApiError::internal(e);
        }
        crate::store::outage_log::transient(&e);
        let mut error = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            format!(
                "the store cannot take this request now ({}); nothing was stored, retry later",
                e.reason()
            ),
        );
        error.retry_after = Some(1);
        error
    }
}

/// A refused send is `422` with its code and field; a store that cannot be
/// reached is what the store says; a fault of ours is `500`.
impl From<crate::send::SendError> for ApiError {
    fn from(e: crate::send::SendError) -> Self {
        use crate::send::SendError;
        match e {
            SendError::Invalid {
                code,
                field,
                message,
            } => ApiError::invalid(code, &field, message),
            SendError::Store(e) => ApiError::from(e),
            SendError::Internal(cause) => ApiError::internal(cause),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Detail {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

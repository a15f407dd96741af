//! Why a send is refused, in the send use-case's own terms; the HTTP edge
//! turns it into a status code (`api::error`), journeys and broadcasts into
//! a step's or a member's reason.

use crate::store::StoreError;

#[derive(Debug)]
pub enum SendError {
    /// The request cannot be sent as it is: `code` for machines, `field` as
    /// a JSON path, `message` for people.
    Invalid {
        code: &'static str,
        field: String,
        message: String,
    },
    /// The store could not be read or written; the same request later may pass.
    Store(StoreError),
    /// A fault of ours, never of the request; the cause is for the log.
    Internal(String),
}

impl SendError {
    pub fn invalid(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        SendError::Invalid {
            code,
            field: field.to_owned(),
            message: message.into(),
        }
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        SendError::Internal(cause.to_string())
    }

    /// The machine-readable code of a refusal (`invalid_phone`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            SendError::Invalid { code, .. } => code,
            SendError::Store(_) => "store_unavailable",
            SendError::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for SendError {
    fn from(e: StoreError) -> Self {
        SendError::Store(e)
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Invalid { field, message, .. } => write!(f, "{field}: {message}"),
            SendError::Store(e) => write!(f, "{e}"),
            SendError::Internal(cause) => write!(f, "internal error: {cause}"),
        }
    }
}

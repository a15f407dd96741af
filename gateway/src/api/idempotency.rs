//! `Idempotency-Key`: a platform may retry any send safely.
//!
//! A finished request's answer is kept in the store (written in the same
//! transaction as the message); this module only tracks the requests still
//! being processed, so a retry that races its original gets `409` instead of
//! a second message.

use super::ApiError;
use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

pub use crate::send::keys::{MAX_KEY_LEN, reserved, scoped, unscoped, valid_key};

#[derive(Default)]
pub struct InFlight {
    keys: Mutex<HashSet<String>>,
}

/// Holds a key as "being processed" until dropped.
pub struct Claim {
    owner: Arc<InFlight>,
    key: String,
}

impl InFlight {
    /// Claim `key`, or `None` when a request with it is still being processed.
    pub fn claim(self: &Arc<Self>, key: &str) -> Option<Claim> {
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        keys.insert(key.to_owned()).then(|| Claim {
            owner: self.clone(),
            key: key.to_owned(),
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut keys = self
            .owner
            .keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        keys.remove(&self.key);
    }
}

/// A hash of the request that ignores formatting and key order, so "the
/// same request" means the same JSON, not the same bytes.
pub fn request_hash(body: &serde_json::Value) -> String {
    // serde_json's maps are sorted, so serialising is canonical.
    let canonical = serde_json::to_vec(body).unwrap_or_default();
    Sha256::digest(&canonical)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `Idempotency-Key` header or the `idempotency_key` field; both must agree.
pub fn from_request(headers: &HeaderMap, field: Option<&str>) -> Result<Option<String>, ApiError> {
    let header = match headers.get("idempotency-key") {
        Some(value) => Some(value.to_str().map_err(|_| {
            ApiError::invalid(
                "invalid_idempotency_key",
                "Idempotency-Key",
                "must be printable ASCII",
            )
        })?),
        None => None,
    };
    let key = match (header, field) {
        (Some(h), Some(f)) if h != f => {
            return Err(ApiError::invalid(
                "invalid_idempotency_key",
                "idempotency_key",
                "the Idempotency-Key header and the idempotency_key field differ",
            ));
        }
        (Some(k), _) | (None, Some(k)) => k,
        (None, None) => return Ok(None),
    };
    if !valid_key(key) {
        return Err(ApiError::invalid(
            "invalid_idempotency_key",
            "idempotency_key",
            format!("must be 1-{} printable ASCII characters", MAX_KEY_LEN),
        ));
    }
    Ok(Some(key.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_key_is_busy_until_released() {
        let in_flight = Arc::new(InFlight::default());
        let claim = in_flight.claim("k1").expect("free");
        assert!(in_flight.claim("k1").is_none());
        assert!(in_flight.claim("k2").is_some());
        drop(claim);
        assert!(in_flight.claim("k1").is_some());
    }

    #[test]
    fn the_hash_ignores_formatting_and_key_order() {
        let a: serde_json::Value = serde_json::from_str(r#"{"a": 1, "b": [1, 2]}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{ "b":[1,2],"a":1 }"#).unwrap();
        let c: serde_json::Value = serde_json::from_str(r#"{"a": 2, "b": [1, 2]}"#).unwrap();
        assert_eq!(request_hash(&a), request_hash(&b));
        assert_ne!(request_hash(&a), request_hash(&c));
    }

    #[test]
    fn keys_must_be_printable_and_bounded() {
        assert!(valid_key("order-42/retry"));
        assert!(!valid_key(""));
        assert!(!valid_key("with space"));
        assert!(!valid_key(&"k".repeat(256)));
    }
}

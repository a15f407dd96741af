//! A per-connector cache that outlives one call: for access tokens.
//!
//! Every call runs in a fresh sandbox, so a connector that trades credentials
//! for a token would otherwise make that trade for every message. Values live
//! in the gateway's memory (not across restarts), up to 64 KiB each.
//!
//! A miss means "you fetch it": while one call is fetching, other calls asking
//! for the same key wait for its [`set`] instead of all fetching at once. A
//! call that misses and fails to fetch simply ends; the next caller tries.

use std::time::Duration;

/// The value stored under `key`, unless it expired.
pub fn get(key: &str) -> Option<Vec<u8>> {
    #[cfg(target_arch = "wasm32")]
    return crate::guest::cache_get(key);
    #[cfg(not(target_arch = "wasm32"))]
    return crate::testing::cache_get(key);
}

/// Keep `value` under `key` for `ttl` (the gateway caps it at a day).
pub fn set(key: &str, value: &[u8], ttl: Duration) {
    #[cfg(target_arch = "wasm32")]
    crate::guest::cache_set(key, value, ttl);
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::cache_set(key, value, ttl);
}

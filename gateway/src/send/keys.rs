//! The keys a caller gives a send (idempotency, dedup, cancel): opaque to
//! the gateway, but printable and bounded, whoever checks them.

/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// Keys are opaque to us but must be printable and bounded.
pub fn valid_key(key: &str) -> bool {
    (1..=MAX_KEY_LEN).contains(&key.len()) && key.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// A caller's key as stored: under `api:` and the caller's name, so one
/// platform's retry token is not another's, and no caller can name a key the
/// gateway itself uses (`journey:`, `broadcast:`, `provider:`, `reply:`).
pub fn scoped(caller: &str, key: &str) -> String {
    format!("api:{caller}:{key}")
}

/// Whether `key` is in a namespace the gateway writes itself.
pub fn reserved(key: &str) -> bool {
    [
        "api:",
        "journey:",
        "broadcast:",
        "provider:",
        "reply:",
        "webhook:",
    ]
    .iter()
    .any(|prefix| key.starts_with(prefix))
}

/// A key as the caller wrote it: what [`scoped`] added taken off; the
/// gateway's own keys as they are.
pub fn unscoped(stored: &str) -> &str {
    stored
        .strip_prefix("api:")
        .and_then(|rest| rest.split_once(':'))
        .map_or(stored, |(_, key)| key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callers_key_never_names_the_gateways_own() {
        let key = scoped("shop", "journey:run_1");
        assert!(key.starts_with("api:shop:"));
        assert_eq!(unscoped(&key), "journey:run_1");
        assert_eq!(unscoped("journey:run_1"), "journey:run_1");
    }
}

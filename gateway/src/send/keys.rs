//! The keys a caller gives a send (idempotency, dedup, cancel): opaque to
//! the gateway, but printable and bounded, whoever checks them.

/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// Keys are opaque to us but must be printable and bounded.
pub fn valid_key(key: &str) -> bool {
    (1..=MAX_KEY_LEN).contains(&key.len()) && key.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

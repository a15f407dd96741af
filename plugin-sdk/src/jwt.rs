//! JSON Web Tokens in compact form (RFC 7519), signed by the caller.
//!
//! The SDK does the encoding; the connector brings the signature algorithm
//! (RS256 for Google, ES256 for VAPID) from a pure-Rust crate that builds for
//! `wasm32-wasip2`. The usual JWT crates pull in `ring` or `js-sys`, which do not.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// `base64url(header).base64url(claims).base64url(sign(signing input))`.
///
/// `header` and `claims` are JSON objects, already serialised.
pub fn compact(header: &str, claims: &str, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(claims));
    let signature = sign(token.as_bytes());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    token
}

/// Seconds since the Unix epoch, for `iat` and `exp` (the sandbox's wall clock).
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Base64url without padding, as JOSE and Web Push use it.
pub fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decode base64url, with or without padding.
pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_form_has_three_base64url_parts() {
        let token = compact(r#"{"alg":"none"}"#, r#"{"sub":"x"}"#, |input| {
            assert_eq!(input, b"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0");
            vec![0xfb, 0xff]
        });
        assert_eq!(token, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.-_8");
        assert_eq!(base64url_decode("-_8=").unwrap(), vec![0xfb, 0xff]);
    }
}

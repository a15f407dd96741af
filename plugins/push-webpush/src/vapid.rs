//! RFC 8292 VAPID: the application server identifies itself to the push
//! service with an ES256 JWT for the endpoint's origin.
//!
//! One signature serves every message to that push service for hours, so it
//! is kept in the connector cache.

use crossgate_plugin_sdk::{cache, jwt};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::json;
use std::time::Duration;

/// Push services refuse tokens valid for more than 24 hours.
const TOKEN_LIFETIME_SECS: u64 = 12 * 3600;
/// A cached token is not used within this long of its expiry.
const REUSE_MARGIN_SECS: u64 = 3600;

pub struct Vapid {
    key: SigningKey,
    /// Base64url of the uncompressed public key: the `k` parameter.
    public_key: String,
    subject: String,
}

impl Vapid {
    pub fn new(private_key: &[u8], subject: &str) -> Option<Vapid> {
        let key = SigningKey::from_slice(private_key).ok()?;
        let public_key = jwt::base64url(key.verifying_key().to_encoded_point(false).as_bytes());
        Some(Vapid {
            key,
            public_key,
            subject: subject.to_owned(),
        })
    }

    /// `Authorization: vapid t=<jwt>, k=<public key>` for a push service origin.
    pub fn authorization(&self, audience: &str) -> String {
        let cache_key = format!("vapid:{audience}");
        let token = match cache::get(&cache_key).and_then(|t| String::from_utf8(t).ok()) {
            Some(token) => token,
            None => {
                let token = self.token(audience, jwt::now_secs() + TOKEN_LIFETIME_SECS);
                let reuse = Duration::from_secs(TOKEN_LIFETIME_SECS - REUSE_MARGIN_SECS);
                cache::set(&cache_key, token.as_bytes(), reuse);
                token
            }
        };
        format!("vapid t={token}, k={}", self.public_key)
    }

    /// The ES256 JWT for `audience`, expiring at `exp`.
    pub fn token(&self, audience: &str, exp: u64) -> String {
        let header = json!({"typ": "JWT", "alg": "ES256"}).to_string();
        let claims = json!({"aud": audience, "exp": exp, "sub": self.subject}).to_string();
        jwt::compact(&header, &claims, |input| {
            let signature: Signature = self.key.sign(input);
            signature.to_bytes().to_vec()
        })
    }
}

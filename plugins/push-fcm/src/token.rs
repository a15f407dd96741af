//! OAuth 2.0 access tokens from a Google service-account key (RFC 7523).
//!
//! An RS256-signed JWT assertion is exchanged at the key's `token_uri`. The
//! token is kept in the gateway's connector cache until a minute before it
//! expires: one exchange serves every message in the token's lifetime.

use crossgate_plugin_sdk::{Failure, cache, http, jwt};
use rsa::RsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;
use std::time::Duration;

pub const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// Google accepts assertions valid for at most an hour.
const ASSERTION_LIFETIME_SECS: u64 = 3600;
/// Stop using a token this long before Google says it expires.
const EXPIRY_MARGIN_SECS: u64 = 60;

/// The fields of a service-account JSON key this connector uses.
#[derive(Deserialize)]
pub struct ServiceAccount {
    pub client_email: String,
    pub private_key: String,
    pub token_uri: String,
    pub project_id: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

#[derive(Deserialize)]
struct TokenError {
    error: String,
    error_description: Option<String>,
}

impl ServiceAccount {
    fn cache_key(&self) -> String {
        format!("access-token:{}", self.client_email)
    }

    /// A live access token: cached, or freshly exchanged and cached.
    pub fn access_token(&self) -> Result<String, Failure> {
        if let Some(token) = cache::get(&self.cache_key()) {
            return String::from_utf8(token)
                .map_err(|_| Failure::retryable("token_cache", "cached token is not UTF-8"));
        }
        let (token, expires_in) = self.exchange()?;
        let ttl = expires_in.saturating_sub(EXPIRY_MARGIN_SECS);
        if ttl > 0 {
            cache::set(
                &self.cache_key(),
                token.as_bytes(),
                Duration::from_secs(ttl),
            );
        }
        Ok(token)
    }

    /// FCM rejected the token: forget it so the next call exchanges anew.
    pub fn forget_token(&self) {
        cache::set(&self.cache_key(), b"", Duration::ZERO);
    }

    fn exchange(&self) -> Result<(String, u64), Failure> {
        let assertion = self.assertion(jwt::now_secs())?;
        let response = http::Request::post(&self.token_uri)
            .form([
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ])
            .send()?;
        if response.is_success() {
            let token: TokenResponse = serde_json::from_slice(&response.body).map_err(|e| {
                Failure::retryable("token_exchange", format!("unreadable token response: {e}"))
            })?;
            return Ok((token.access_token, token.expires_in));
        }
        let message = match serde_json::from_slice::<TokenError>(&response.body) {
            Ok(e) => format!("{}: {}", e.error, e.error_description.unwrap_or_default()),
            Err(_) => format!("HTTP {}", response.status),
        };
        Err(response.failure(
            "token_exchange",
            format!("access token exchange failed: {message}"),
        ))
    }

    /// The signed JWT assertion for `now` (seconds since the epoch).
    pub fn assertion(&self, now: u64) -> Result<String, Failure> {
        let key = RsaPrivateKey::from_pkcs8_pem(&self.private_key).map_err(|e| {
            Failure::permanent(
                "invalid_config",
                format!("service_account.private_key is not a PKCS#8 RSA key: {e}"),
            )
        })?;
        let signer = SigningKey::<Sha256>::new(key);
        let header = json!({"alg": "RS256", "typ": "JWT"}).to_string();
        let claims = json!({
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
        })
        .to_string();
        Ok(jwt::compact(&header, &claims, |input| {
            signer.sign(input).to_vec()
        }))
    }
}

//! Web Push to a browser's push subscription.
//!
//! The message's `to` is the subscription as JSON (`PushSubscription.toJSON()`:
//! `endpoint`, `keys.p256dh`, `keys.auth`). The payload is encrypted to the
//! browser (RFC 8291, [`ece`]) and the request identifies the sender with a
//! VAPID token (RFC 8292, [`vapid`]); the push service only relays ciphertext.
//!
//! ```toml
//! [connectors.config]
//! vapid_private_key = "env:VAPID_PRIVATE_KEY"   # base64url, 32 bytes (web-push generate-vapid-keys)
//! vapid_subject = "mailto:ops@shop.example"
//! ttl_secs = 86400          # optional: how long the push service keeps it for an offline browser
//! urgency = "normal"        # optional: very-low, low, normal, high
//! ```
//!
//! `allowed_hosts` must list the push services' origins (e.g.
//! `https://fcm.googleapis.com`, `https://updates.push.services.mozilla.com`,
//! `https://web.push.apple.com`).

pub mod ece;
pub mod vapid;

use crossgate_plugin_sdk::{
    Channel, Config, ConfigError, Connector, Failure, Message, Receipt, Setting, http, jwt,
    report_dead_address,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use vapid::Vapid;

const URGENCIES: &[&str] = &["very-low", "low", "normal", "high"];

pub struct WebPush {
    vapid: Vapid,
    ttl_secs: u64,
    urgency: String,
}

/// A browser's push subscription, as the platform stored it in the profile.
#[derive(Deserialize)]
pub struct Subscription {
    pub endpoint: String,
    pub keys: Keys,
}

#[derive(Deserialize)]
pub struct Keys {
    pub p256dh: String,
    pub auth: String,
}

impl Connector for WebPush {
    const NAME: &'static str = "webpush";
    const CHANNEL: Channel = Channel::Push;
    const SETTINGS: &'static [Setting] = &[
        Setting::text("vapid_private_key").required().secret(),
        Setting::text("vapid_subject").required(),
        Setting::number("ttl_secs"),
        Setting::text("urgency"),
    ];

    fn new(config: &Config) -> Result<Self, ConfigError> {
        let key = jwt::base64url_decode(config.required("vapid_private_key")?)
            .filter(|k| k.len() == 32)
            .ok_or_else(|| {
                ConfigError::new(
                    "vapid_private_key",
                    "must be a 32-byte P-256 key, base64url",
                )
            })?;
        let subject = config.required("vapid_subject")?;
        if !(subject.starts_with("mailto:") || subject.starts_with("https:")) {
            return Err(ConfigError::new(
                "vapid_subject",
                "must be a mailto: or https: URL",
            ));
        }
        let vapid = Vapid::new(&key, subject)
            .ok_or_else(|| ConfigError::new("vapid_private_key", "is not a valid P-256 key"))?;
        let ttl_secs = config
            .get_or("ttl_secs", "86400")
            .parse()
            .map_err(|_| ConfigError::new("ttl_secs", "must be a whole number of seconds"))?;
        let urgency = config.get_or("urgency", "normal");
        if !URGENCIES.contains(&urgency) {
            return Err(ConfigError::new(
                "urgency",
                "must be very-low, low, normal or high",
            ));
        }
        Ok(WebPush {
            vapid,
            ttl_secs,
            urgency: urgency.to_owned(),
        })
    }

    fn deliver(&self, msg: &Message) -> Result<Receipt, Failure> {
        let subscription: Subscription = serde_json::from_str(&msg.to).map_err(|e| {
            Failure::permanent(
                "invalid_address",
                format!("not a Web Push subscription: {e}"),
            )
        })?;
        let origin = origin(&subscription.endpoint).ok_or_else(|| {
            Failure::permanent(
                "invalid_address",
                "subscription endpoint is not an http(s) URL",
            )
        })?;
        let body = encrypt_for(&subscription, notification(msg).to_string().as_bytes())?;
        let urgency = msg
            .metadata("web_push:urgency")
            .filter(|u| URGENCIES.contains(u))
            .unwrap_or(&self.urgency);
        let response = http::Request::post(&subscription.endpoint)
            .header("authorization", &self.vapid.authorization(origin))
            .header("ttl", &self.ttl_secs.to_string())
            .header("urgency", urgency)
            .header("content-encoding", "aes128gcm")
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()?;
        match response.status {
            200..=299 => Ok(Receipt::new(
                response
                    .header("location")
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("webpush:{}", msg.id)),
            )),
            404 | 410 => {
                report_dead_address(&msg.to, "Web Push: subscription expired or unsubscribed");
                Err(Failure::permanent(
                    "subscription_gone",
                    format!(
                        "push service answered {}: the subscription is gone",
                        response.status
                    ),
                ))
            }
            413 => Err(Failure::permanent(
                "payload_too_large",
                "push service refused the payload size",
            )),
            status => Err(response.failure(
                format!("http_{status}"),
                format!(
                    "push service answered HTTP {status}: {}",
                    response.text().trim()
                ),
            )),
        }
    }
}

/// What the service worker receives: a notification and the app's data.
fn notification(msg: &Message) -> Value {
    let mut data = Map::new();
    for (key, value) in &msg.metadata {
        if let Some(key) = key.strip_prefix("data:") {
            data.insert(key.to_owned(), json!(value));
        }
    }
    json!({"id": msg.id, "title": msg.subject, "body": msg.text, "data": data})
}

/// RFC 8291 with a fresh sender key and salt.
fn encrypt_for(subscription: &Subscription, plaintext: &[u8]) -> Result<Vec<u8>, Failure> {
    let invalid =
        |what: &str| Failure::permanent("invalid_address", format!("subscription {what}"));
    let ua_public = jwt::base64url_decode(&subscription.keys.p256dh)
        .ok_or_else(|| invalid("keys.p256dh is not base64url"))?;
    let auth = jwt::base64url_decode(&subscription.keys.auth)
        .ok_or_else(|| invalid("keys.auth is not base64url"))?;
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt)
        .map_err(|e| Failure::retryable("no_randomness", e.to_string()))?;
    let sender = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    ece::encrypt(plaintext, &ua_public, &auth, &sender, salt).map_err(|e| match e {
        ece::EceError::TooLarge(_) => Failure::permanent("payload_too_large", e.to_string()),
        _ => invalid(&e.to_string()),
    })
}

/// `scheme://host[:port]` of a URL: the VAPID audience.
fn origin(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    (end > 0).then(|| &url[..scheme.len() + 3 + end])
}

crossgate_plugin_sdk::register_connector!(WebPush);

#[cfg(test)]
mod tests;

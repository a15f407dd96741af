//! Status callbacks: every status change of a message with a callback URL is
//! posted to the platform as JSON, signed, and retried until it is taken.
//!
//! The outbox row is written in the same transaction as the change it
//! reports, so a callback survives a crash and never reports a change that
//! did not happen. Callbacks of one message may arrive out of order; each
//! carries a `sequence` to order them by.
//!
//! Signatures, both keyed by `[callbacks].secret`:
//! - `Crossgate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over `"<t>.<body>"`;
//! - Standard Webhooks (`webhook-id`, `webhook-timestamp`,
//!   `webhook-signature: v1,<base64 HMAC-SHA256>` over `"<id>.<t>.<body>"`), so
//!   platforms can verify with existing libraries: their secret is
//!   `whsec_` + base64 of ours.
//!
//! Callbacks reach public addresses only, unless `callbacks.allowed_hosts`
//! lists the origin; the answer's body is never read.

use crate::config::CallbacksConfig;
use crate::metrics::Metrics;
use crate::outbound::OutboundClient;
use crate::store::{Callback, Lease, Store};
use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

const BATCH: usize = 64;
const IDLE_POLL: Duration = Duration::from_millis(200);

/// `t=<timestamp>,v1=<hex>`: the value of the `Crossgate-Signature` header.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={timestamp},v1={digest}")
}

/// `v1,<base64>`: the value of the Standard Webhooks `webhook-signature` header.
pub fn sign_standard(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let digest = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    format!("v1,{digest}")
}

pub struct CallbackSender {
    store: Arc<dyn Store>,
    client: OutboundClient,
    secret: Arc<[u8]>,
    config: CallbacksConfig,
    metrics: Arc<Metrics>,
    clock: Arc<crate::clock::Clock>,
}

impl CallbackSender {
    /// `None` when callbacks are off (no secret configured).
    pub fn new(
        config: &CallbacksConfig,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        clock: Arc<crate::clock::Clock>,
    ) -> Option<Self> {
        let secret = config.secret.as_ref()?.get_ref().as_bytes();
        Some(CallbackSender {
            store,
            client: OutboundClient::public_only(
                config
                    .allowed_hosts
                    .iter()
                    .map(|origin| origin.host.clone())
                    .collect(),
            ),
            secret: Arc::from(secret),
            config: config.clone(),
            metrics,
            clock,
        })
    }

    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let lease_ms = this.config.timeout_ms.saturating_mul(3);
        let mut posting = JoinSet::new();
        while !*stop.borrow() {
            let due = match this
                .store
                .lease_callbacks(Lease::new(this.clock.now(), BATCH, lease_ms))
                .await
            {
                Ok(due) => due,
                Err(e) => {
                    tracing::error!("cannot lease callbacks: {e}");
                    Vec::new()
                }
            };
            if due.is_empty() {
                tokio::select! {
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            for callback in due {
                let this = this.clone();
                posting.spawn(async move { this.post(callback).await });
            }
            while posting.join_next().await.is_some() {}
        }
    }

    async fn post(&self, callback: Callback) {
        // The receiver checks it against its own clock: the wall's.
        let timestamp = crate::clock::wall_ms() / 1000;
        let body = callback.payload.as_bytes();
        // Stable across retries of one callback, as Standard Webhooks asks.
        let id = format!("cb_{}", callback.id);
        let request = http::Request::post(&callback.url)
            .header("content-type", "application/json")
            .header(
                "user-agent",
                concat!("crossgate/", env!("CARGO_PKG_VERSION")),
            )
            .header("crossgate-signature", sign(&self.secret, timestamp, body))
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                sign_standard(&self.secret, &id, timestamp, body),
            )
            .body(http_body_util::Full::new(Bytes::from(
                callback.payload.clone(),
            )));
        // The destination is checked again at every send: an address literal
        // here, a resolved name in the client.
        let refused = crate::config::callback_url(&callback.url, &self.config.allowed_hosts).err();
        let outcome = match (request, &refused) {
            (_, Some(why)) => Err(format!("callback URL refused: {why}")),
            (Ok(request), None) => {
                let timeout = Duration::from_millis(self.config.timeout_ms);
                // Only the status is read: an answer of any size costs nothing.
                match tokio::time::timeout(timeout, self.client.request(request)).await {
                    Ok(Ok(answer)) if answer.status().is_success() => Ok(()),
                    Ok(Ok(answer)) => Err(format!("answered HTTP {}", answer.status().as_u16())),
                    Ok(Err(e)) => Err(crate::outbound::describe(&e)),
                    Err(_) => Err(format!("no answer within {} ms", self.config.timeout_ms)),
                }
            }
            (Err(e), None) => Err(format!("invalid callback request: {e}")),
        };
        let attempts = callback.attempts + 1;
        let (retry_at, give_up) = match &outcome {
            Ok(()) => (None, false),
            Err(_) if refused.is_some() || attempts >= self.config.max_attempts => (None, true),
            Err(_) => {
                let wait = crate::dispatch::exponential_ms(
                    self.config.backoff_base_ms,
                    self.config.backoff_max_ms,
                    attempts,
                );
                (Some(self.clock.now().saturating_add(wait as i64)), false)
            }
        };
        self.metrics.callback(match (&outcome, give_up) {
            (Ok(()), _) => "delivered",
            (Err(_), false) => "retried",
            (Err(_), true) => "abandoned",
        });
        if let Err(reason) = &outcome {
            tracing::warn!(
                message_id = %callback.message_id,
                url = %callback.url,
                attempts,
                give_up,
                "status callback failed: {reason}"
            );
        }
        if let Err(e) = self
            .store
            .finish_callback(callback.id, retry_at, give_up)
            .await
        {
            tracing::error!("cannot record callback outcome: {e}");
        }
    }
}

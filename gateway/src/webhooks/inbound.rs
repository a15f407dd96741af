//! Provider callbacks in. The connector verifies the provider's signature
//! and reads the callback; this applies what it said: delivery progress,
//! opt-outs and opt-ins from any address (customer or not), addresses the
//! provider says do not exist, and customers' replies (their
//! `message.received` events, and a callback so the platform can answer).

use crate::customer::{Consent, ConsentStatus, Suppression, SuppressionReason, address_key};
use crate::message::Channel;
use crate::plugins::Inbound;
use crate::store::replies::NewReply;
use crate::store::{ProviderStatus, Store, StoreError};
use serde::Serialize;

/// What one callback changed, as the provider is answered.
#[derive(Debug, Default, Serialize)]
pub struct Applied {
    pub status_events: usize,
    pub matched_messages: usize,
    /// Customers whose consent changed.
    pub consent_changes: usize,
    /// Suppression-list entries added or lifted.
    pub suppressions: usize,
    /// Customers' replies recorded (a repeated one is not counted again).
    pub replies: usize,
    /// The same callback was applied before: nothing changed this time.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

/// The connector's channel and the categories an opt-out or opt-in covers.
pub struct Source<'a> {
    pub connector: &'a str,
    pub channel: Channel,
    pub categories: &'a [String],
    /// Where replies are posted when the message they answer has no
    /// callback URL; `None` when callbacks are off.
    pub reply_url: Option<&'a str>,
}

/// [`apply`] `events` a connector read from one verified callback (its
/// `body`). One that changes consent or the suppression list is applied
/// once: the same signed request again (a replay, or the provider retrying
/// one we answered) changes nothing and answers `duplicate`, so an old
/// START cannot undo a later STOP, nor an old unsubscribe re-suppress an
/// address support staff cleared. Delivery reports need no receipt (a
/// status only moves forward) and replies have their provider id: the
/// callbacks most messages get cost no extra write.
pub async fn apply_once(
    store: &dyn Store,
    source: &Source<'_>,
    events: Vec<Inbound>,
    body: &[u8],
    now: i64,
) -> Result<Applied, StoreError> {
    let receipt = events
        .iter()
        .any(Inbound::changes_consent)
        .then(|| receipt_key(source.connector, body));
    if let Some(receipt) = &receipt
        && !store
            .claim_key(receipt, now.saturating_add(REPLAY_WINDOW_MS))
            .await?
    {
        return Ok(Applied {
            duplicate: true,
            ..Applied::default()
        });
    }
    let applied = apply(store, source, events, now).await;
    if applied.is_err()
        && let Some(receipt) = &receipt
        && let Err(release) = store.release_key(receipt).await
    {
        // Not applied: the provider's retry must be taken.
        tracing::warn!(
            connector = source.connector,
            "cannot release a webhook receipt: {release}"
        );
    }
    applied
}

/// How long a verified callback is remembered: longer than any provider
/// retries one; a replay later than this of a provider without signed
/// timestamps (Twilio) is the one left open.
const REPLAY_WINDOW_MS: i64 = 30 * 86_400_000;

/// A callback's identity: its connector and the digest of its body, in the
/// gateway's own key namespace.
fn receipt_key(connector: &str, body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest: String = Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("webhook:{connector}:{digest}")
}

pub async fn apply(
    store: &dyn Store,
    source: &Source<'_>,
    events: Vec<Inbound>,
    now: i64,
) -> Result<Applied, StoreError> {
    let mut applied = Applied::default();
    for event in events {
        match event {
            Inbound::Status {
                provider_message_id,
                state,
                code,
                description,
            } => {
                applied.status_events += 1;
                let report = ProviderStatus {
                    connector: source.connector.to_owned(),
                    provider_message_id,
                    state: state.as_str().to_owned(),
                    code,
                    description,
                    at: now,
                };
                if store.apply_report(report, source.channel).await?.is_some() {
                    applied.matched_messages += 1;
                }
            }
            Inbound::OptOut(address) => {
                let Some(key) = key(source, &address) else {
                    continue;
                };
                let suppression =
                    suppression(source, key.clone(), SuppressionReason::OptOut, None, now);
                applied.suppressions += usize::from(store.suppress(suppression).await?);
                applied.consent_changes +=
                    consent(store, source, &key, ConsentStatus::OptedOut, now).await?;
            }
            Inbound::OptIn(address) => {
                let Some(key) = key(source, &address) else {
                    continue;
                };
                let lifted = store
                    .delete_suppression(source.channel, &key, Some(SuppressionReason::OptOut))
                    .await?;
                applied.suppressions += usize::from(lifted);
                applied.consent_changes +=
                    consent(store, source, &key, ConsentStatus::OptedIn, now).await?;
            }
            Inbound::Undeliverable { address, reason } => {
                let Some(key) = key(source, &address) else {
                    continue;
                };
                let dead = Suppression::dead_address(
                    source.channel,
                    key,
                    source.connector,
                    Some(reason),
                    now,
                );
                let done = store.address_is_dead(dead, None, now).await?;
                applied.suppressions += usize::from(done.suppressed);
            }
            Inbound::Message(reply) => {
                // A sender no profile can hold (a short code, an alphanumeric
                // id) still wrote: the platform hears it as the provider gave it.
                let address =
                    address_key(source.channel, &reply.from).unwrap_or_else(|_| reply.from.clone());
                let yes = crate::customer::double_opt_in::is_yes(&reply.text);
                let recorded = store
                    .record_reply(NewReply {
                        connector: source.connector.to_owned(),
                        channel: source.channel,
                        address: address.clone(),
                        text: reply.text,
                        provider_message_id: reply.provider_message_id,
                        in_reply_to: reply.in_reply_to,
                        received_at: now,
                        callback_url: source.reply_url.map(str::to_owned),
                    })
                    .await?;
                applied.replies += usize::from(!recorded.duplicate);
                // A YES grants consent only as the answer to a message that
                // asked for it (double opt-in); any other reply grants nothing.
                if yes
                    && !recorded.duplicate
                    && let Some(confirmed) =
                        store.confirm_consent(source.channel, &address, now).await?
                {
                    tracing::info!(
                        customer_id = %confirmed.customer_id,
                        category = %confirmed.category,
                        message_id = %confirmed.message_id,
                        "double opt-in confirmed"
                    );
                    applied.consent_changes += 1;
                }
            }
        }
    }
    Ok(applied)
}

/// The address in its stored form; one the channel cannot have (a short
/// code, a malformed email) is logged and skipped, not fatal to the batch.
fn key(source: &Source<'_>, address: &str) -> Option<String> {
    address_key(source.channel, address)
        .inspect_err(|e| {
            tracing::warn!(
                connector = source.connector,
                "inbound event for an unusable address: {e}"
            )
        })
        .ok()
}

fn suppression(
    source: &Source<'_>,
    address: String,
    reason: SuppressionReason,
    note: Option<String>,
    now: i64,
) -> Suppression {
    Suppression {
        channel: source.channel,
        address,
        reason,
        source: source.connector.to_owned(),
        note,
        created_at: now,
    }
}

/// Consent of every customer who owns the address, in every category.
async fn consent(
    store: &dyn Store,
    source: &Source<'_>,
    key: &str,
    status: ConsentStatus,
    now: i64,
) -> Result<usize, StoreError> {
    let consent = Consent {
        status,
        at: jiff::Timestamp::from_millisecond(now).unwrap_or(jiff::Timestamp::UNIX_EPOCH),
        source: Some(crate::customer::keyword_source(source.connector, status)),
    };
    store
        .consent_by_address(
            key,
            source.channel,
            source.categories.to_vec(),
            consent,
            now,
        )
        .await
}

//! Sends the gateway makes on the platform's behalf (a journey's step, a
//! broadcast's member): composed and planned exactly as `POST /v1/messages`
//! would, kept once by an idempotency key the caller derives from its own
//! progress, and tagged with the campaign they belong to.

use super::{Context, SendError, SendRequest, compose};
use crate::store::{IdempotencyKey, Inserted, NewMessage, StoreError};
use serde_json::{Value, json};

/// How long such a key holds: longer than any journey wait or broadcast.
const KEY_LIFETIME_MS: i64 = 90 * 86_400_000;
/// Stands for the request under every such key: the keys are the caller's
/// own (`journey:...`, `broadcast:...`). Journeys stored theirs under this
/// name first, so runs resumed across an upgrade still replay.
const REQUEST_HASH: &str = "journey-step";

/// What became of one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Stored now, or before under the same key (a resumed run or page).
    Stored {
        message_id: String,
        status: String,
        /// The channel planned, unless the plan suppressed it.
        channel: Option<String>,
    },
    /// Another message of its dedup key (an offer group) came first.
    Duplicate { message_id: String },
    /// The request cannot be sent (a missing variable, an unknown
    /// template): nothing is stored, the caller records why.
    Refused(String),
}

/// A send composed and planned, not stored yet.
pub enum Prepared {
    Message(Box<NewMessage>),
    Refused(Refusal),
}

/// Why a send cannot be made, as `POST /v1/messages` would have answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// Compose and plan `request` as a message of `campaign`, kept once by
/// `idempotency_key`.
pub async fn prepare(
    send: &Context,
    request: SendRequest,
    idempotency_key: String,
    campaign: String,
    now: i64,
) -> Result<Prepared, StoreError> {
    let composed = match compose(send, request, now).await {
        Ok(composed) => composed,
        // Passing: the journey step or the broadcast page is tried again.
        Err(SendError::Store(e)) if e.is_transient() => return Err(e),
        Err(SendError::Invalid { code, message, .. }) => {
            return Ok(Prepared::Refused(Refusal {
                code: code.to_owned(),
                message,
            }));
        }
        Err(fault) => {
            tracing::error!("cannot compose a send on the gateway's behalf: {fault}");
            return Ok(Prepared::Refused(Refusal {
                code: fault.code().to_owned(),
                message: "internal error; the send was not made".to_owned(),
            }));
        }
    };
    let mut message = composed.message;
    message.campaign = Some(campaign);
    message.idempotency = Some(IdempotencyKey {
        key: idempotency_key,
        request_hash: REQUEST_HASH.into(),
        response: answer(&message).to_string(),
        expires_at: now.saturating_add(KEY_LIFETIME_MS),
    });
    Ok(Prepared::Message(Box::new(message)))
}

/// What is told of a message once it is stored, taken before it is.
pub struct Summary {
    answer: Value,
    channel: &'static str,
    category: String,
}

impl Summary {
    pub fn of(message: &NewMessage) -> Summary {
        Summary {
            answer: answer(message),
            channel: message.channel.as_str(),
            category: message.category.clone().unwrap_or_default(),
        }
    }
}

/// What became of a prepared message once stored: counted and the
/// dispatcher woken when it is new.
pub fn settle(send: &Context, summary: &Summary, inserted: Inserted) -> Accepted {
    match inserted {
        Inserted::New => {
            let status = summary.answer["status"].as_str().unwrap_or_default();
            send.metrics
                .accepted(summary.channel, &summary.category, status);
            send.wake.notify_one();
            stored(&summary.answer)
        }
        Inserted::Replayed { response } => {
            stored(&serde_json::from_str(&response).unwrap_or_default())
        }
        Inserted::Duplicate { message_id, .. } => Accepted::Duplicate { message_id },
        Inserted::KeyReused => Accepted::Refused("idempotency key reused".into()),
    }
}

/// Compose, plan and store `request`.
pub async fn accept(
    send: &Context,
    request: SendRequest,
    idempotency_key: String,
    campaign: String,
    now: i64,
) -> Result<Accepted, StoreError> {
    let message = match prepare(send, request, idempotency_key, campaign, now).await? {
        Prepared::Message(message) => message,
        Prepared::Refused(why) => return Ok(Accepted::Refused(why.to_string())),
    };
    let summary = Summary::of(&message);
    let inserted = send.store.insert_message(*message).await?;
    Ok(settle(send, &summary, inserted))
}

/// What the caller is told of a new message, and what its key replays.
fn answer(message: &NewMessage) -> Value {
    let status = message.initial_status().as_str();
    let channel = (status != "suppressed").then(|| message.channel.as_str());
    json!({"id": message.id, "status": status, "channel": channel})
}

fn stored(answer: &Value) -> Accepted {
    Accepted::Stored {
        message_id: answer["id"].as_str().unwrap_or_default().to_owned(),
        status: answer["status"].as_str().unwrap_or_default().to_owned(),
        channel: answer["channel"].as_str().map(str::to_owned),
    }
}

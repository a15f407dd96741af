//! Broadcasts: what a platform asks for (kept as it was asked, read back by
//! every node that fans it out) and each member's send, composed and
//! planned as the customer send `POST /v1/messages` would make, a page at
//! a time, with the members nobody sent anything to kept with their reason.

use super::fanout::Members;
use crate::message::Channel;
use crate::send::on_behalf::{self, Accepted, Prepared, Summary};
use crate::send::{self, ContentRequest, OfferGroup, SendError, SendRequest};
use crate::store::StoreError;
use crate::store::campaigns::{BroadcastRecord, RefusedMember};
use crate::store::segments::SegmentQuery;
use async_trait::async_trait;
use futures::stream::{self, StreamExt as _};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Members composed at once: each reads the profile and plans.
const COMPOSING: usize = 16;
/// The fastest a broadcast may be planned, members per second.
pub const MAX_RATE: u32 = 10_000;

/// A broadcast as the platform asks for it; kept as it was asked.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BroadcastRequest {
    pub segment: String,
    pub category: String,
    /// A template (with `data` and an optional `locale`), or inline `content`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<ContentRequest>,
    /// Only these channels, in the customer's order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<Channel>>,
    /// RFC 3339: no member is planned before then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_at: Option<String>,
    /// Members planned per second (default `broadcasts.rate_per_second`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_second: Option<u32>,
    /// `{"name": "spring", "window": "30d"}`: one message of the group per
    /// customer per window, across broadcasts, journeys and channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer_group: Option<OfferGroup>,
    /// The API key that started it (its name), which alone may cancel it.
    /// Set by the gateway; a request that gives it is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub created_by: Option<String>,
}

impl BroadcastRequest {
    /// One member's send, as `POST /v1/messages` would take it.
    pub fn member(&self, broadcast_id: &str, customer_id: &str) -> SendRequest {
        SendRequest {
            customer_id: Some(customer_id.to_owned()),
            category: Some(self.category.clone()),
            cancel_key: Some(format!("broadcast:{broadcast_id}")),
            template: self.template.clone(),
            data: self.data.clone(),
            locale: self.locale.clone(),
            content: self.content.clone(),
            channels: self.channels.clone(),
            offer_group: self.offer_group.clone(),
            ..SendRequest::default()
        }
    }

    /// Check a new broadcast once for all its members (its category, pace,
    /// template data, content and offer group) and say when it starts: one
    /// mistake would otherwise refuse every member, one by one. Its segment
    /// is the caller's to find; members are read as the fan-out goes.
    /// `max_rate` is the operator's ceiling (`broadcasts.rate_per_second`):
    /// a broadcast may go slower, never faster than the providers were
    /// sized for.
    pub fn check(&self, send: &send::Context, max_rate: u32, now: i64) -> Result<i64, SendError> {
        let routing = send.live.current();
        if !routing.policy.categories.contains_key(&self.category) {
            return Err(SendError::invalid(
                "unknown_category",
                "category",
                format!("no category named {:?}", self.category),
            ));
        }
        let ceiling = max_rate.min(MAX_RATE);
        if let Some(rate) = self.rate_per_second
            && !(1..=ceiling).contains(&rate)
        {
            return Err(SendError::invalid(
                "invalid_rate",
                "rate_per_second",
                format!("between 1 and {ceiling} (broadcasts.rate_per_second)"),
            ));
        }
        if let Some(name) = &self.template {
            let template = routing.templates.get(name).ok_or_else(|| {
                SendError::invalid(
                    "unknown_template",
                    "template",
                    format!("no template named {name:?}"),
                )
            })?;
            if let Some(missing) = template.missing_variable(&self.data) {
                return Err(SendError::invalid(
                    "missing_variable",
                    &format!("data.{missing}"),
                    format!("template {name:?} needs {missing:?} in data"),
                ));
            }
        }
        let member = self.member("check", "check");
        send::check_content(send, &member)?;
        send::dedup(send, member.dedup_key, member.offer_group.as_ref(), now)?;
        match &self.send_at {
            Some(text) => send::send_at(text, now),
            None => Ok(now),
        }
    }
}

/// Members' sends, for the fan-out.
pub struct BroadcastMembers {
    pub send: Arc<crate::send::Context>,
    /// `broadcasts.rate_per_second`: for broadcasts that name no rate.
    pub rate: u32,
}

#[async_trait]
impl Members for BroadcastMembers {
    async fn plan(
        &self,
        broadcast: &BroadcastRecord,
        now: i64,
    ) -> Result<Result<(SegmentQuery, u32), String>, StoreError> {
        let request: BroadcastRequest = match serde_json::from_str(&broadcast.definition) {
            Ok(request) => request,
            Err(e) => return Ok(Err(format!("unreadable broadcast: {e}"))),
        };
        let rate = request.rate_per_second.unwrap_or(self.rate);
        let routing = self.send.live.current();
        match super::segments::find(&*self.send.store, &routing, &request.segment).await? {
            Some(defined) => Ok(Ok((
                super::segments::query(defined.segment(), &routing.policy, now),
                rate,
            ))),
            None => Ok(Err(format!("no segment named {:?}", request.segment))),
        }
    }

    /// Every member composed and planned (a few at once: reads only), then
    /// the page stored in one write.
    async fn send_page(
        &self,
        broadcast: &BroadcastRecord,
        members: &[String],
        now: i64,
    ) -> Result<(), StoreError> {
        let request: BroadcastRequest = serde_json::from_str(&broadcast.definition)
            .map_err(|e| StoreError::Corrupt(format!("broadcast {}: {e}", broadcast.id)))?;
        let campaign = format!("broadcast:{}", broadcast.id);
        let (send, request) = (&self.send, &request);
        let prepared: Vec<Result<(String, Prepared), StoreError>> = stream::iter(members.to_vec())
            .map(|member: String| {
                let campaign = campaign.clone();
                async move {
                    let key = format!("broadcast:{}:{member}", broadcast.id);
                    let body = request.member(&broadcast.id, &member);
                    on_behalf::prepare(send, body, key, campaign, now)
                        .await
                        .map(|p| (member, p))
                }
            })
            .buffered(COMPOSING)
            .collect()
            .await;
        let mut messages = Vec::with_capacity(members.len());
        let mut sent_to = Vec::with_capacity(members.len());
        let mut refusals = Vec::new();
        let refusal = |customer_id: String, code: String, message: String| RefusedMember {
            customer_id,
            code,
            message,
            refused_at: now,
        };
        for result in prepared {
            match result? {
                (member, Prepared::Message(message)) => {
                    messages.push(*message);
                    sent_to.push(member);
                }
                (member, Prepared::Refused(why)) => {
                    refusals.push(refusal(member, why.code, why.message));
                }
            }
        }
        let summaries: Vec<Summary> = messages.iter().map(Summary::of).collect();
        let inserted = self.send.store.insert_messages(messages).await?;
        for ((summary, inserted), member) in summaries.iter().zip(inserted).zip(sent_to) {
            // A member who already got a message of the offer group gets
            // none: refused too, so messages and refusals add up to members.
            match on_behalf::settle(&self.send, summary, inserted) {
                Accepted::Stored { .. } => {}
                Accepted::Duplicate { message_id } => refusals.push(refusal(
                    member,
                    "offer_group".into(),
                    format!("got {message_id} of the same offer group within its window"),
                )),
                Accepted::Refused(why) => refusals.push(refusal(member, "refused".into(), why)),
            }
        }
        // Before the cursor moves: a page cut short here is planned again,
        // finds the same refusals and keeps each once.
        if !refusals.is_empty() {
            tracing::debug!(broadcast = %broadcast.id, refused = refusals.len(), "members not sent");
            self.send.store.record_refusals(&campaign, refusals).await?;
        }
        Ok(())
    }
}

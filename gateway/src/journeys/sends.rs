//! Journeys' sends, made as a platform's customer send is made: a send
//! step becomes a typed [`SendRequest`] for the run's customer, kept once
//! per step of the run, cancelled with the run.

use super::engine::SendOutcome;
use super::runner::{SendJob, Sends};
use crate::expression;
use crate::send::on_behalf::{self, Accepted};
use crate::send::{ContentRequest, OfferGroup, SendRequest};
use crate::store::StoreError;
use async_trait::async_trait;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Journeys' sends, made as a platform's customer send is made.
pub struct JourneySends {
    pub send: Arc<crate::send::Context>,
}

#[async_trait]
impl Sends for JourneySends {
    async fn send(&self, job: SendJob<'_>) -> Result<SendOutcome, StoreError> {
        let send = &self.send;
        let context = json!({"event": job.event, "digest": job.digest});
        let data = step_data(&job.step.data, &context);
        // A variant's own template or text replaces the step's; its
        // subject, channels and category override them.
        let variant = job.variant;
        let (step_template, step_text) = match variant {
            Some(v) if v.template.is_some() || v.text.is_some() => (&v.template, &v.text),
            _ => (&job.step.template, &job.step.text),
        };
        let subject = variant
            .and_then(|v| v.subject.as_ref())
            .or(job.step.subject.as_ref());
        let (template, data, content) = match (step_template, step_text) {
            (Some(template), _) => (Some(template.clone()), data, None),
            (None, text) => {
                let rendered = |text: &Option<String>| {
                    text.as_deref().map(|t| inline(t, &context)).transpose()
                };
                let (text, subject) = match (rendered(text), rendered(&subject.cloned())) {
                    (Ok(text), Ok(subject)) => (text, subject),
                    (Err(e), _) | (_, Err(e)) => return Ok(refused(e)),
                };
                (
                    None,
                    Map::new(),
                    Some(ContentRequest {
                        text,
                        subject,
                        ..ContentRequest::default()
                    }),
                )
            }
        };
        let offer_group = match (&job.step.offer_group, job.step.offer_window) {
            (Some(name), Some(window)) => Some(OfferGroup {
                name: name.clone(),
                window: format!("{}s", window / 1000),
            }),
            _ => None,
        };
        let request = SendRequest {
            customer_id: Some(job.customer_id.to_owned()),
            cancel_key: Some(format!("journey:{}", job.run_id)),
            category: variant
                .and_then(|v| v.category.clone())
                .or_else(|| job.step.category.clone()),
            channels: variant
                .and_then(|v| v.channels.clone())
                .or_else(|| job.step.channels.clone()),
            template,
            data,
            content,
            offer_group,
            ..SendRequest::default()
        };
        let campaign = format!("journey:{}", job.journey);
        Ok(
            match on_behalf::accept(send, request, job.idempotency_key, campaign, job.now).await? {
                Accepted::Stored {
                    message_id,
                    status,
                    channel,
                } => SendOutcome::Accepted {
                    message_id,
                    status,
                    channel,
                },
                Accepted::Duplicate { message_id } => SendOutcome::Skipped {
                    reason: "offer_group",
                    detail: format!(
                        "the customer got {message_id} of offer group {} within its window",
                        job.step.offer_group.as_deref().unwrap_or("?")
                    ),
                },
                Accepted::Refused(why) => refused(why),
            },
        )
    }

    async fn cancel_run(&self, customer_id: &str, run_id: &str) -> Result<(), StoreError> {
        let report = self
            .send
            .store
            .cancel(
                &format!("customer:{customer_id}"),
                &format!("journey:{run_id}"),
                self.send.clock.now(),
            )
            .await?;
        if !report.cancelled.is_empty() {
            tracing::info!(run = run_id, cancelled = ?report.cancelled, "journey ended: its pending messages cancelled");
        }
        Ok(())
    }
}

/// A send step's template data: string values may use the trigger's
/// properties (`"{{ event.first_name }}"`) and the run's digest; `event`
/// and `digest` themselves are there too.
fn step_data(data: &Map<String, Value>, context: &Value) -> Map<String, Value> {
    let mut out: Map<String, Value> = data
        .iter()
        .map(|(key, value)| {
            let value = match value {
                Value::String(text) if text.contains("{{") => expression::render(text, context)
                    .map(Value::String)
                    .unwrap_or_else(|_| value.clone()),
                _ => value.clone(),
            };
            (key.clone(), value)
        })
        .collect();
    for name in ["event", "digest"] {
        if !context[name].is_null() {
            out.insert(name.into(), context[name].clone());
        }
    }
    out
}

/// A step's inline text or subject, which may use `event` and `digest`
/// as a template does (`"{{ digest.count }} new comments"`).
fn inline(text: &str, context: &Value) -> Result<String, String> {
    if !text.contains("{{") && !text.contains("{%") {
        return Ok(text.to_owned());
    }
    expression::render(text, context).map_err(|e| format!("the step's text: {e}"))
}

fn refused(detail: String) -> SendOutcome {
    SendOutcome::Skipped {
        reason: "refused",
        detail,
    }
}

//! Every state change, each run inside one savepoint of the writer's batch.
//!
//! A status change and the callback reporting it are written together
//! (transactional outbox): a callback is never lost nor sent for a change
//! that did not happen.

use crate::message::{Channel, Content, MessageStatus};
use crate::routing::profile::{Consent, Profile};
use crate::store::{
    AttemptResult, Callback, CancelReport, Inserted, LeasedDelivery, NewMessage, Next,
    ProviderStatus, StoreError,
};
use rusqlite::{Connection, OptionalExtension, params};

/// One process owns an SQLite file, so at start every lease in it belongs
/// to a process that is gone: those deliveries and callbacks are due again
/// now, under the same message id, so providers that deduplicate can.
pub fn recover_leases(conn: &Connection) -> Result<(), StoreError> {
    let deliveries = conn.execute(
        "UPDATE deliveries SET state = 'pending', lease_until = NULL WHERE state = 'leased'",
        [],
    )?;
    conn.execute(
        "UPDATE callbacks_outbox SET state = 'pending', lease_until = NULL WHERE state = 'leased'",
        [],
    )?;
    if deliveries > 0 {
        tracing::warn!(
            deliveries,
            "re-queued deliveries whose attempt was cut short"
        );
    }
    Ok(())
}

pub fn insert(conn: &Connection, m: &NewMessage) -> Result<Inserted, StoreError> {
    let now = m.created_at;
    if let Some(idem) = &m.idempotency {
        let earlier = conn
            .prepare_cached(
                "SELECT request_hash, response FROM idempotency_keys
                 WHERE key = ?1 AND expires_at > ?2",
            )?
            .query_row(params![idem.key, now], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .optional()?;
        if let Some((hash, response)) = earlier {
            return Ok(if hash == idem.request_hash {
                Inserted::Replayed { response }
            } else {
                Inserted::KeyReused
            });
        }
    }
    if let Some(dedup) = &m.dedup {
        let earlier = conn
            .prepare_cached(
                "SELECT m.id, m.status FROM dedup_keys d JOIN messages m ON m.id = d.message_id
                 WHERE d.scope = ?1 AND d.key = ?2 AND d.expires_at > ?3",
            )?
            .query_row(params![m.scope, dedup.key, now], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .optional()?;
        if let Some((message_id, status)) = earlier {
            return Ok(Inserted::Duplicate {
                message_id,
                status: status.parse().map_err(StoreError::Corrupt)?,
            });
        }
    }

    let content = json(&m.content)?;
    let due_at = m.send_at.unwrap_or(now).max(now);
    let status = m.initial_status();
    conn.prepare_cached(
        "INSERT INTO messages (id, status, status_reason, channel, recipient, scope, content,
             created_at, updated_at, send_at, expires_at, cancel_key, dedup_key, callback_url,
             customer_id, category, plan)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?
    .execute(params![
        m.id,
        status.as_str(),
        m.suppressed,
        m.channel.as_str(),
        m.recipient,
        m.scope,
        content,
        now,
        m.send_at,
        m.expires_at,
        m.cancel_key,
        m.dedup.as_ref().map(|d| &d.key),
        m.callback_url,
        m.customer_id,
        m.category,
        m.plan,
    ])?;
    let mut delivery = conn.prepare_cached(
        "INSERT INTO deliveries (message_id, seq, channel, connector, address, content, state, due_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let deliveries = if m.suppressed.is_some() {
        &[][..]
    } else {
        &m.deliveries[..]
    };
    for (seq, d) in deliveries.iter().enumerate() {
        let state = if seq == 0 { "pending" } else { "waiting" };
        let content = d.content.as_ref().map(json).transpose()?;
        delivery.execute(params![
            m.id,
            seq as i64,
            d.channel.as_str(),
            d.connector,
            d.address,
            content,
            state,
            due_at
        ])?;
    }
    if let Some(dedup) = &m.dedup {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO dedup_keys (scope, key, message_id, expires_at)
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![m.scope, dedup.key, m.id, dedup.expires_at])?;
    }
    if let Some(idem) = &m.idempotency {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO idempotency_keys (key, request_hash, response, expires_at)
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            idem.key,
            idem.request_hash,
            idem.response,
            idem.expires_at
        ])?;
    }
    if m.callback_url.is_some() {
        report_status(conn, &m.id, now)?;
    }
    Ok(Inserted::New)
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("cannot encode: {e}")))
}

/// Queue a status callback for the message's current status, if it has a callback URL.
fn report_status(conn: &Connection, message_id: &str, now: i64) -> Result<(), StoreError> {
    let numbered = conn
        .prepare_cached(
            "UPDATE messages SET event_seq = event_seq + 1
             WHERE id = ?1 AND callback_url IS NOT NULL",
        )?
        .execute(params![message_id])?;
    if numbered == 0 {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO callbacks_outbox (message_id, url, payload, due_at)
         SELECT id, callback_url,
                json_object('id', id, 'sequence', event_seq, 'status', status,
                            'status_reason', status_reason, 'channel', channel,
                            'delivered_by', delivered_by,
                            'provider_message_id', provider_message_id,
                            'at', strftime('%Y-%m-%dT%H:%M:%fZ', ?2 / 1000.0, 'unixepoch')),
                ?2
         FROM messages WHERE id = ?1",
    )?
    .execute(params![message_id, now])?;
    Ok(())
}

/// Move a message to a final status (unless it already has one) and report it.
fn finish_message(
    conn: &Connection,
    message_id: &str,
    status: MessageStatus,
    reason: Option<&str>,
    now: i64,
) -> Result<bool, StoreError> {
    let changed: Option<bool> = conn
        .prepare_cached(
            "UPDATE messages SET status = ?2, status_reason = ?3, updated_at = ?4
             WHERE id = ?1 AND status NOT IN ('sent', 'failed', 'cancelled', 'expired')
             RETURNING callback_url IS NOT NULL",
        )?
        .query_row(params![message_id, status.as_str(), reason, now], |r| {
            r.get(0)
        })
        .optional()?;
    if changed == Some(true) {
        report_status(conn, message_id, now)?;
    }
    Ok(changed.is_some())
}

/// End what is still open of a message: its waiting and pending deliveries
/// take `delivery_state`, the message `status` with `reason`.
fn close_message(
    conn: &Connection,
    message_id: &str,
    delivery_state: &str,
    status: MessageStatus,
    reason: &str,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE deliveries SET state = ?2
         WHERE message_id = ?1 AND state IN ('pending', 'waiting')",
    )?
    .execute(params![message_id, delivery_state])?;
    finish_message(conn, message_id, status, Some(reason), now)?;
    Ok(())
}

/// Due deliveries of messages whose `ttl` ran out end as `expired`.
fn expire_due(conn: &Connection, now: i64) -> Result<(), StoreError> {
    // Driven by `messages_expiry`, whose WHERE these terms must repeat.
    let expired: Vec<String> = conn
        .prepare_cached(
            "SELECT id FROM messages m
             WHERE expires_at <= ?1 AND expires_at IS NOT NULL
               AND status IN ('queued', 'scheduled', 'sending')
               AND EXISTS (SELECT 1 FROM deliveries d
                           WHERE d.message_id = m.id AND d.state = 'pending' AND d.due_at <= ?1)",
        )?
        .query_map(params![now], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in expired {
        close_message(
            conn,
            &id,
            "expired",
            MessageStatus::Expired,
            "not delivered before its ttl ran out",
            now,
        )?;
    }
    Ok(())
}

pub fn lease(
    conn: &Connection,
    now: i64,
    limit: usize,
    lease_ms: u64,
) -> Result<Vec<LeasedDelivery>, StoreError> {
    expire_due(conn, now)?;
    let lease_until = now.saturating_add(i64::try_from(lease_ms).unwrap_or(i64::MAX));
    let leased = conn
        .prepare_cached(
            "UPDATE deliveries SET state = 'leased', lease_until = ?1
             WHERE id IN (
                 SELECT id FROM deliveries WHERE state = 'pending' AND due_at <= ?2
                 UNION ALL
                 SELECT id FROM deliveries WHERE state = 'leased' AND lease_until <= ?2
                 LIMIT ?3)
             RETURNING id, message_id, channel, connector, address, attempts, content",
        )?
        .query_map(params![lease_until, now, limit as i64], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, u32>(5)?,
                row.get::<_, Option<String>>(6)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::with_capacity(leased.len());
    for (delivery_id, message_id, channel, connector, address, attempts, own_content) in leased {
        let message = |r: &rusqlite::Row| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, u32>(1)?,
                r.get::<_, i64>(2)?,
            ))
        };
        // A first attempt starts the message and reads it in one statement;
        // only a message with a callback URL has the change to report.
        let started = conn
            .prepare_cached(
                "UPDATE messages SET status = 'sending', updated_at = ?2
                 WHERE id = ?1 AND status IN ('queued', 'scheduled')
                 RETURNING content, attempt_count, created_at, callback_url IS NOT NULL",
            )?
            .query_row(params![message_id, now], |r| Ok((message(r)?, r.get(3)?)))
            .optional()?;
        let (message_content, message_attempts, created_at) = match started {
            Some((read, with_callback)) => {
                if with_callback {
                    report_status(conn, &message_id, now)?;
                }
                read
            }
            None => conn
                .prepare_cached(
                    "SELECT content, attempt_count, created_at FROM messages WHERE id = ?1",
                )?
                .query_row(params![message_id], message)?,
        };
        out.push(LeasedDelivery {
            delivery_id,
            channel: channel.parse().map_err(StoreError::Corrupt)?,
            content: serde_json::from_str::<Content>(
                own_content.as_deref().unwrap_or(&message_content),
            )
            .map_err(|e| StoreError::Corrupt(format!("content of {message_id}: {e}")))?,
            message_id,
            connector,
            address,
            attempts,
            message_attempts,
            lease_until,
            created_at,
        });
    }
    Ok(out)
}

pub fn record(conn: &Connection, r: &AttemptResult) -> Result<(), StoreError> {
    let a = &r.attempt;
    // Only the holder of the current lease moves the delivery on; an attempt
    // that outlived its lease is history, not a decision. A retry never
    // waits past the message's expiry: it expires on time instead.
    let (state, due_at) = match &r.next {
        Next::Sent { .. } => ("sent", None),
        Next::RetryAt(at) => ("pending", Some(*at)),
        Next::GiveUp { .. } => ("failed", None),
    };
    let moved = conn
        .prepare_cached(
            "UPDATE deliveries
             SET state = ?1, lease_until = NULL, attempts = attempts + 1,
                 due_at = CASE WHEN ?2 IS NULL THEN due_at
                               ELSE MIN(?2, COALESCE((SELECT expires_at FROM messages
                                                      WHERE id = deliveries.message_id), ?2))
                          END
             WHERE id = ?3 AND state = 'leased' AND lease_until = ?4",
        )?
        .execute(params![state, due_at, r.delivery_id, r.lease_until])?
        > 0;
    let finished = if !moved {
        None
    } else {
        match &r.next {
            Next::Sent {
                provider_message_id,
            } => Some((
                MessageStatus::Sent,
                None,
                Some((a.connector.as_str(), provider_message_id.as_str())),
            )),
            Next::RetryAt(_) => None,
            Next::GiveUp { reason } => {
                let next = conn
                    .prepare_cached(
                        "UPDATE deliveries SET state = 'pending', due_at = ?2
                         WHERE id = (SELECT id FROM deliveries
                                     WHERE message_id = ?1 AND state = 'waiting'
                                     ORDER BY seq LIMIT 1)",
                    )?
                    .execute(params![r.message_id, a.finished_at])?;
                (next == 0).then_some((MessageStatus::Failed, Some(reason.as_str()), None))
            }
        }
    };
    // The attempt is counted, and the message finished when this attempt
    // ends it, in one write of the message's row.
    let finished_row = match finished {
        Some((status, reason, delivered)) => conn
            .prepare_cached(
                "UPDATE messages SET attempt_count = attempt_count + 1, updated_at = ?2,
                     status = ?3, status_reason = ?4,
                     delivered_by = COALESCE(?5, delivered_by),
                     delivered_channel = CASE WHEN ?5 IS NULL THEN delivered_channel ELSE ?6 END,
                     provider_message_id = COALESCE(?7, provider_message_id)
                 WHERE id = ?1 AND status NOT IN ('sent', 'failed', 'cancelled', 'expired')
                 RETURNING attempt_count, callback_url IS NOT NULL",
            )?
            .query_row(
                params![
                    r.message_id,
                    a.finished_at,
                    status.as_str(),
                    reason,
                    delivered.map(|(by, _)| by),
                    a.channel.as_str(),
                    delivered.map(|(_, id)| id),
                ],
                |row| Ok((row.get::<_, u32>(0)?, row.get::<_, bool>(1)?)),
            )
            .optional()?,
        None => None,
    };
    let number = match finished_row {
        Some((number, with_callback)) => {
            if with_callback {
                report_status(conn, &r.message_id, a.finished_at)?;
            }
            number
        }
        None => conn
            .prepare_cached(
                "UPDATE messages SET attempt_count = attempt_count + 1, updated_at = ?2
                 WHERE id = ?1 RETURNING attempt_count",
            )?
            .query_row(params![r.message_id, a.finished_at], |row| row.get(0))?,
    };
    conn.prepare_cached(
        "INSERT INTO attempts (message_id, number, delivery_id, connector, channel, started_at,
             finished_at, outcome, provider_message_id, error_code, error_message, retry_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        r.message_id,
        number,
        r.delivery_id,
        a.connector,
        a.channel.as_str(),
        a.started_at,
        a.finished_at,
        a.outcome.as_str(),
        a.provider_message_id,
        a.error_code,
        a.error_message,
        a.retry_at,
    ])?;
    Ok(())
}

/// Cancel what has not reached a provider yet. A message whose attempt is in
/// flight (its delivery is leased) or that is already final is left alone
/// and reported.
pub fn cancel(
    conn: &Connection,
    scope: &str,
    key: &str,
    now: i64,
) -> Result<CancelReport, StoreError> {
    let messages: Vec<(String, String, bool)> = conn
        .prepare_cached(
            "SELECT id, status,
                    EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.state = 'leased')
             FROM messages m WHERE scope = ?1 AND cancel_key = ?2 ORDER BY created_at",
        )?
        .query_map(params![scope, key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut report = CancelReport::default();
    for (id, status, in_flight) in messages {
        let status: MessageStatus = status.parse().map_err(StoreError::Corrupt)?;
        if status.is_final() || in_flight {
            report.not_cancelled.push((id, status));
            continue;
        }
        close_message(
            conn,
            &id,
            "cancelled",
            MessageStatus::Cancelled,
            "cancelled by cancel_key",
            now,
        )?;
        report.cancelled.push(id);
    }
    Ok(report)
}

pub fn lease_callbacks(
    conn: &Connection,
    now: i64,
    limit: usize,
    lease_ms: u64,
) -> Result<Vec<Callback>, StoreError> {
    let lease_until = now.saturating_add(i64::try_from(lease_ms).unwrap_or(i64::MAX));
    let callbacks = conn
        .prepare_cached(
            "UPDATE callbacks_outbox SET state = 'leased', lease_until = ?1
             WHERE id IN (
                 SELECT id FROM callbacks_outbox
                 WHERE (state = 'pending' AND due_at <= ?2)
                    OR (state = 'leased' AND lease_until <= ?2)
                 ORDER BY id LIMIT ?3)
             RETURNING id, message_id, url, payload, attempts",
        )?
        .query_map(params![lease_until, now, limit as i64], |r| {
            Ok(Callback {
                id: r.get(0)?,
                message_id: r.get(1)?,
                url: r.get(2)?,
                payload: r.get(3)?,
                attempts: r.get(4)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(callbacks)
}

pub fn finish_callback(
    conn: &Connection,
    id: i64,
    retry_at: Option<i64>,
    give_up: bool,
) -> Result<(), StoreError> {
    if give_up {
        conn.prepare_cached(
            "UPDATE callbacks_outbox SET state = 'abandoned', lease_until = NULL,
                 attempts = attempts + 1 WHERE id = ?1",
        )?
        .execute(params![id])?;
    } else if let Some(at) = retry_at {
        conn.prepare_cached(
            "UPDATE callbacks_outbox SET state = 'pending', lease_until = NULL, due_at = ?2,
                 attempts = attempts + 1 WHERE id = ?1",
        )?
        .execute(params![id, at])?;
    } else {
        conn.prepare_cached("DELETE FROM callbacks_outbox WHERE id = ?1")?
            .execute(params![id])?;
    }
    Ok(())
}

pub fn purge_expired_keys(conn: &Connection, now: i64) -> Result<usize, StoreError> {
    let idempotency = conn.execute(
        "DELETE FROM idempotency_keys WHERE expires_at <= ?1",
        params![now],
    )?;
    let dedup = conn.execute(
        "DELETE FROM dedup_keys WHERE expires_at <= ?1",
        params![now],
    )?;
    Ok(idempotency + dedup)
}

pub fn put_customer(
    conn: &Connection,
    id: &str,
    profile: &Profile,
    now: i64,
) -> Result<bool, StoreError> {
    let profile = json(profile)?;
    let updated = conn
        .prepare_cached("UPDATE customers SET profile = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, profile, now])?;
    if updated > 0 {
        return Ok(false);
    }
    conn.prepare_cached(
        "INSERT INTO customers (id, profile, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
    )?
    .execute(params![id, profile, now])?;
    Ok(true)
}

pub fn update_consent(
    conn: &Connection,
    id: &str,
    changes: &[(Channel, String, Consent)],
    now: i64,
) -> Result<Option<Profile>, StoreError> {
    let Some(record) = super::reads::customer(conn, id)? else {
        return Ok(None);
    };
    let mut profile = record.profile;
    for (channel, category, consent) in changes {
        profile
            .consent
            .entry(*channel)
            .or_default()
            .insert(category.clone(), consent.clone());
    }
    put_customer(conn, id, &profile, now)?;
    Ok(Some(profile))
}

pub fn forget_address(
    conn: &Connection,
    message_id: &str,
    channel: Channel,
    address: &str,
    now: i64,
) -> Result<Option<String>, StoreError> {
    let customer_id: Option<String> = conn
        .prepare_cached("SELECT customer_id FROM messages WHERE id = ?1")?
        .query_row(params![message_id], |r| r.get(0))
        .optional()?
        .flatten();
    let Some(customer_id) = customer_id else {
        return Ok(None);
    };
    let Some(record) = super::reads::customer(conn, &customer_id)? else {
        return Ok(None);
    };
    let mut profile = record.profile;
    if !profile.addresses.forget(channel, address) {
        return Ok(None);
    }
    put_customer(conn, &customer_id, &profile, now)?;
    Ok(Some(customer_id))
}

/// The profile goes, and so do the addresses its messages were sent to:
/// history keeps ids, channels and outcomes, nothing that identifies a person.
pub fn delete_customer(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    let deleted = conn
        .prepare_cached("DELETE FROM customers WHERE id = ?1")?
        .execute(params![id])?;
    // What has not gone out yet never will: there is nobody to send it to.
    let pending: Vec<String> = conn
        .prepare_cached(
            "SELECT id FROM messages
             WHERE customer_id = ?1 AND status IN ('scheduled', 'queued', 'sending')
               AND NOT EXISTS (SELECT 1 FROM deliveries d
                               WHERE d.message_id = messages.id AND d.state = 'leased')",
        )?
        .query_map(params![id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let now = crate::store::now_ms();
    for message_id in pending {
        close_message(
            conn,
            &message_id,
            "cancelled",
            MessageStatus::Cancelled,
            "customer erased",
            now,
        )?;
    }
    conn.prepare_cached(
        "UPDATE deliveries SET address = '[erased]', content = NULL
         WHERE message_id IN (SELECT id FROM messages WHERE customer_id = ?1)",
    )?
    .execute(params![id])?;
    conn.prepare_cached(
        "UPDATE messages SET content = '{\"text\":\"[erased]\"}'
         WHERE customer_id = ?1
           AND status IN ('sent', 'delivered', 'read', 'failed', 'cancelled', 'expired', 'suppressed')",
    )?
    .execute(params![id])?;
    Ok(deleted > 0)
}

/// Forward-only: a report of an earlier stage than the message's status is
/// kept as history but changes nothing.
pub fn apply_provider_status(
    conn: &Connection,
    r: &ProviderStatus,
) -> Result<Option<String>, StoreError> {
    let message = conn
        .prepare_cached(
            "SELECT id, status FROM messages WHERE delivered_by = ?1 AND provider_message_id = ?2",
        )?
        .query_row(params![r.connector, r.provider_message_id], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .optional()?;
    let Some((id, status)) = message else {
        return Ok(None);
    };
    conn.prepare_cached(
        "INSERT INTO status_events (message_id, at, state, code, description) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![id, r.at, r.state, r.code, r.description])?;
    let rank = |s: &str| match s {
        "sent" => 1,
        "delivered" => 2,
        "read" => 3,
        _ => 0,
    };
    let next = match r.state.as_str() {
        "delivered" | "read" if rank(&r.state) > rank(&status) => Some((r.state.as_str(), None)),
        "failed" if status == "sent" => Some((
            "failed",
            Some(format!(
                "{}: the provider reported the message undelivered{}",
                r.connector,
                r.code
                    .as_deref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default()
            )),
        )),
        _ => None,
    };
    if let Some((next, reason)) = next {
        conn.prepare_cached(
            "UPDATE messages SET status = ?2, status_reason = COALESCE(?3, status_reason), updated_at = ?4
             WHERE id = ?1",
        )?
        .execute(params![id, next, reason, r.at])?;
        report_status(conn, &id, r.at)?;
    }
    Ok(Some(id))
}

pub fn consent_by_address(
    conn: &Connection,
    address: &str,
    channel: Channel,
    categories: &[String],
    consent: &Consent,
    now: i64,
) -> Result<usize, StoreError> {
    let field = match channel {
        Channel::Sms => "$.addresses.phone",
        Channel::Whatsapp => "$.addresses.whatsapp",
        Channel::Email => "$.addresses.email",
        Channel::Push => return Ok(0),
    };
    let ids: Vec<String> = conn
        .prepare_cached("SELECT id FROM customers WHERE json_extract(profile, ?1) = ?2")?
        .query_map(params![field, address], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in &ids {
        let changes: Vec<_> = categories
            .iter()
            .map(|category| (channel, category.clone(), consent.clone()))
            .collect();
        update_consent(conn, id, &changes, now)?;
    }
    Ok(ids.len())
}

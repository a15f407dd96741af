//! Customers, the index of who owns which address, consent, and the
//! suppression list.

use super::SqliteStore;
use super::messages;
use crate::customer::double_opt_in::{self, Confirmed, ConsentRequest};
use crate::customer::{Consent, Profile, Suppression, SuppressionReason, Written, traits};
use crate::message::{Channel, MessageStatus};
use crate::store::CustomerStore;
use crate::store::OPEN;
use crate::store::Result;
use crate::store::{Audience, DeadAddress, PlanningFacts};
use crate::store::{CustomerRecord, StoreError};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::LazyLock;

/// A file written before the address index existed gets it built once from
/// its profiles.
pub fn build_address_index(conn: &Connection) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version >= super::migrations::ADDRESS_INDEX_VERSION {
        return Ok(());
    }
    let customers: Vec<(String, String)> = conn
        .prepare("SELECT id, profile FROM customers")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (id, profile) in &customers {
        let profile: Profile = serde_json::from_str(profile)
            .map_err(|e| StoreError::Corrupt(format!("profile of {id}: {e}")))?;
        index_addresses(conn, id, &profile)?;
    }
    conn.pragma_update(
        None,
        "user_version",
        super::migrations::ADDRESS_INDEX_VERSION,
    )?;
    if !customers.is_empty() {
        tracing::info!(
            customers = customers.len(),
            "built the address index from stored profiles"
        );
    }
    Ok(())
}

/// Profiles stored before segments existed (schema step 5) get their traits
/// once; every customer has at least the `customer` trait, so those without
/// any are the ones to index.
pub fn build_trait_index(conn: &Connection) -> Result<()> {
    let customers: Vec<(String, String)> = conn
        .prepare(
            "SELECT id, profile FROM customers c
             WHERE NOT EXISTS (SELECT 1 FROM customer_traits t WHERE t.customer_id = c.id)",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (id, profile) in &customers {
        let profile: Profile = serde_json::from_str(profile)
            .map_err(|e| StoreError::Corrupt(format!("profile of {id}: {e}")))?;
        index_traits(conn, id, &profile)?;
    }
    Ok(())
}

/// The trait rows of one customer follow their profile.
fn index_traits(conn: &Connection, id: &str, profile: &Profile) -> Result<()> {
    conn.prepare_cached("DELETE FROM customer_traits WHERE customer_id = ?1")?
        .execute(params![id])?;
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO customer_traits (trait, customer_id) VALUES (?1, ?2)",
    )?;
    for t in traits::of(profile) {
        insert.execute(params![t, id])?;
    }
    Ok(())
}

/// The address index rows of one customer follow their profile.
fn index_addresses(conn: &Connection, id: &str, profile: &Profile) -> Result<()> {
    conn.prepare_cached("DELETE FROM customer_addresses WHERE customer_id = ?1")?
        .execute(params![id])?;
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO customer_addresses (channel, address, customer_id)
         VALUES (?1, ?2, ?3)",
    )?;
    for (channel, address) in profile.addresses.keys() {
        insert.execute(params![channel.as_str(), address, id])?;
    }
    Ok(())
}

pub fn put(conn: &Connection, id: &str, profile: &Profile, now: i64) -> Result<bool> {
    let json = messages::json(profile)?;
    let updated = conn
        .prepare_cached("UPDATE customers SET profile = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, json, now])?;
    if updated == 0 {
        conn.prepare_cached(
            "INSERT INTO customers (id, profile, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
        )?
        .execute(params![id, json, now])?;
    }
    index_addresses(conn, id, profile)?;
    index_traits(conn, id, profile)?;
    Ok(updated == 0)
}

pub fn read(conn: &Connection, id: &str) -> Result<Option<CustomerRecord>> {
    let row = conn
        .prepare_cached("SELECT profile, created_at, updated_at FROM customers WHERE id = ?1")?
        .query_row(params![id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .optional()?;
    row.map(|(profile, created_at, updated_at)| {
        Ok(CustomerRecord {
            profile: serde_json::from_str(&profile)
                .map_err(|e| StoreError::Corrupt(format!("profile of {id}: {e}")))?,
            created_at,
            updated_at,
        })
    })
    .transpose()
}

/// The ids of the customers who own `address` on `channel`.
pub(super) fn owners(conn: &Connection, channel: Channel, address: &str) -> Result<Vec<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT customer_id FROM customer_addresses WHERE channel = ?1 AND address = ?2
             ORDER BY customer_id",
        )?
        .query_map(params![channel.as_str(), address], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

pub fn at_address(conn: &Connection, channel: Channel, address: &str) -> Result<Vec<Profile>> {
    let mut profiles = Vec::new();
    for id in owners(conn, channel, address)? {
        if let Some(record) = read(conn, &id)? {
            profiles.push(record.profile);
        }
    }
    Ok(profiles)
}

pub fn update_consent(
    conn: &Connection,
    id: &str,
    changes: &[(Channel, String, Consent)],
    now: i64,
) -> Result<Option<Profile>> {
    let Some(record) = read(conn, id)? else {
        return Ok(None);
    };
    let mut profile = record.profile;
    profile.set_consent(changes);
    put(conn, id, &profile, now)?;
    Ok(Some(profile))
}

pub fn consent_by_address(
    conn: &Connection,
    address: &str,
    channel: Channel,
    categories: &[String],
    consent: &Consent,
    now: i64,
) -> Result<usize> {
    let mut changed = 0;
    for id in owners(conn, channel, address)? {
        let Some(record) = read(conn, &id)? else {
            continue;
        };
        let mut profile = record.profile;
        if profile.apply_keyword(channel, categories, consent) {
            put(conn, &id, &profile, now)?;
            changed += 1;
        }
    }
    Ok(changed)
}

pub fn address_is_dead(
    conn: &Connection,
    dead: &Suppression,
    message_id: Option<&str>,
    now: i64,
) -> Result<DeadAddress> {
    let suppressed = suppress(conn, dead, false)?.written;
    let holders: Vec<String> = match message_id {
        Some(id) => conn
            .prepare_cached("SELECT customer_id FROM messages WHERE id = ?1")?
            .query_row(params![id], |r| r.get::<_, Option<String>>(0))
            .optional()?
            .flatten()
            .into_iter()
            .collect(),
        None => owners(conn, dead.channel, &dead.address)?,
    };
    let mut forgotten_by = Vec::new();
    for id in holders {
        let Some(record) = read(conn, &id)? else {
            continue;
        };
        let mut profile = record.profile;
        if profile.addresses.forget(dead.channel, &dead.address) {
            put(conn, &id, &profile, now)?;
            forgotten_by.push(id);
        }
    }
    Ok(DeadAddress {
        suppressed,
        forgotten_by,
    })
}

/// The profile goes, and so do the addresses its messages were sent to:
/// history keeps ids, channels and outcomes, nothing that identifies a person.
pub fn delete(conn: &Connection, id: &str, now: i64) -> Result<bool> {
    let deleted = conn
        .prepare_cached("DELETE FROM customers WHERE id = ?1")?
        .execute(params![id])?;
    conn.prepare_cached("DELETE FROM customer_addresses WHERE customer_id = ?1")?
        .execute(params![id])?;
    // Their events and journey runs go with them.
    conn.prepare_cached("DELETE FROM events WHERE customer_id = ?1")?
        .execute(params![id])?;
    conn.prepare_cached("DELETE FROM journey_runs WHERE customer_id = ?1")?
        .execute(params![id])?;
    // What has not gone out yet never will: there is nobody to send it to.
    static PENDING: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT id FROM messages
             WHERE customer_id = ?1 AND status IN {}
               AND NOT EXISTS (SELECT 1 FROM deliveries d
                               WHERE d.message_id = messages.id AND d.state = 'leased')",
            *OPEN
        )
    });
    let pending: Vec<String> = conn
        .prepare_cached(&PENDING)?
        .query_map(params![id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for message_id in pending {
        messages::close(
            conn,
            &message_id,
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
    static ERASE: LazyLock<String> = LazyLock::new(|| {
        format!(
            "UPDATE messages SET content = '{{\"text\":\"[erased]\"}}'
             WHERE customer_id = ?1 AND status NOT IN {}",
            *OPEN
        )
    });
    conn.prepare_cached(&ERASE)?.execute(params![id])?;
    Ok(deleted > 0)
}

fn suppression_row(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(String, String, String, String, Option<String>, i64)> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn suppression(
    (channel, address, reason, source, note, created_at): (
        String,
        String,
        String,
        String,
        Option<String>,
        i64,
    ),
) -> Result<Suppression> {
    Ok(Suppression {
        channel: channel.parse().map_err(StoreError::Corrupt)?,
        address,
        reason: reason.parse().map_err(StoreError::Corrupt)?,
        source,
        note,
        created_at,
    })
}

pub fn suppressions(
    conn: &Connection,
    addresses: &[(Channel, String)],
) -> Result<Vec<Suppression>> {
    let mut query = conn.prepare_cached(
        "SELECT channel, address, reason, source, note, created_at FROM suppressions
         WHERE channel = ?1 AND address = ?2",
    )?;
    let mut found = Vec::new();
    for (channel, address) in addresses {
        if let Some(row) = query
            .query_row(params![channel.as_str(), address], suppression_row)
            .optional()?
        {
            found.push(suppression(row)?);
        }
    }
    Ok(found)
}

/// Write an entry; unless `replace`, a person's own wish (opt-out, staff)
/// is kept over a deliverability finding. Returns `(written, created)`.
/// Write `s` unless [`Suppression::may_replace`] says the address's entry stays.
pub fn suppress(conn: &Connection, s: &Suppression, replace: bool) -> Result<Written> {
    let existing: Option<String> = conn
        .prepare_cached("SELECT reason FROM suppressions WHERE channel = ?1 AND address = ?2")?
        .query_row(params![s.channel.as_str(), s.address], |r| r.get(0))
        .optional()?;
    if let Some(existing) = &existing {
        let existing: SuppressionReason = existing.parse().map_err(StoreError::Corrupt)?;
        if !s.may_replace(existing, replace) {
            return Ok(Written {
                written: false,
                created: false,
            });
        }
    }
    conn.prepare_cached(
        "INSERT OR REPLACE INTO suppressions (channel, address, reason, source, note, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        s.channel.as_str(),
        s.address,
        s.reason.as_str(),
        s.source,
        s.note,
        s.created_at
    ])?;
    Ok(Written {
        written: true,
        created: existing.is_none(),
    })
}

pub fn unsuppress(
    conn: &Connection,
    channel: Channel,
    address: &str,
    reason: Option<SuppressionReason>,
) -> Result<bool> {
    let removed = conn
        .prepare_cached(
            "DELETE FROM suppressions
             WHERE channel = ?1 AND address = ?2 AND (?3 IS NULL OR reason = ?3)",
        )?
        .execute(params![
            channel.as_str(),
            address,
            reason.map(|r| r.as_str())
        ])?;
    Ok(removed > 0)
}

pub fn request_consent(conn: &Connection, r: &ConsentRequest) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO consent_requests (message_id, customer_id, category, created_at, open_until)
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (message_id) DO NOTHING",
    )?
    .execute(params![
        r.message_id,
        r.customer_id,
        r.category,
        r.created_at,
        r.open_until
    ])?;
    Ok(())
}

/// See [`crate::store::Store::confirm_consent`]: of the owners' open
/// requests whose message reached them on `channel`, the latest.
pub fn confirm_consent(
    conn: &Connection,
    channel: Channel,
    address: &str,
    now: i64,
) -> Result<Option<Confirmed>> {
    let mut latest: Option<(i64, Confirmed)> = None;
    for customer_id in owners(conn, channel, address)? {
        let open = conn
            .prepare_cached(
                "SELECT r.message_id, r.category, r.created_at FROM consent_requests r
                 JOIN messages m ON m.id = r.message_id
                 WHERE r.customer_id = ?1 AND r.confirmed_at IS NULL AND r.open_until >= ?2
                   AND m.delivered_channel = ?3 AND m.status IN ('sent', 'delivered', 'read')
                 ORDER BY r.created_at DESC LIMIT 1",
            )?
            .query_row(params![customer_id, now, channel.as_str()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?))
            })
            .optional()?;
        if let Some((message_id, category, created_at)) = open
            && latest.as_ref().is_none_or(|(at, _)| created_at > *at)
        {
            let confirmed = Confirmed {
                customer_id,
                category,
                message_id,
            };
            latest = Some((created_at, confirmed));
        }
    }
    let Some((_, confirmed)) = latest else {
        return Ok(None);
    };
    conn.prepare_cached("UPDATE consent_requests SET confirmed_at = ?2 WHERE message_id = ?1")?
        .execute(params![confirmed.message_id, now])?;
    let consent = double_opt_in::granted(&confirmed.message_id, now);
    let change = [(channel, confirmed.category.clone(), consent)];
    update_consent(conn, &confirmed.customer_id, &change, now)?;
    Ok(Some(confirmed))
}

#[async_trait]
impl CustomerStore for SqliteStore {
    async fn request_consent(&self, request: ConsentRequest) -> Result<()> {
        self.write(move |conn| request_consent(conn, &request))
            .await
    }

    async fn confirm_consent(
        &self,
        channel: Channel,
        address: &str,
        now: i64,
    ) -> Result<Option<Confirmed>> {
        let address = address.to_owned();
        self.write(move |conn| confirm_consent(conn, channel, &address, now))
            .await
    }

    async fn put_customer(&self, id: &str, profile: Profile, now: i64) -> Result<bool> {
        let id = id.to_owned();
        self.write(move |conn| put(conn, &id, &profile, now)).await
    }

    async fn customer(&self, id: &str) -> Result<Option<CustomerRecord>> {
        let id = id.to_owned();
        self.read(move |conn| read(conn, &id)).await
    }

    async fn update_consent(
        &self,
        id: &str,
        changes: Vec<(Channel, String, Consent)>,
        now: i64,
    ) -> Result<Option<Profile>> {
        let id = id.to_owned();
        self.write(move |conn| update_consent(conn, &id, &changes, now))
            .await
    }

    async fn delete_customer(&self, id: &str, now: i64) -> Result<bool> {
        let id = id.to_owned();
        self.write(move |conn| delete(conn, &id, now)).await
    }

    async fn consent_by_address(
        &self,
        address: &str,
        channel: Channel,
        categories: Vec<String>,
        consent: Consent,
        now: i64,
    ) -> Result<usize> {
        let address = address.to_owned();
        self.write(move |conn| {
            consent_by_address(conn, &address, channel, &categories, &consent, now)
        })
        .await
    }

    async fn address_is_dead(
        &self,
        dead: Suppression,
        message_id: Option<String>,
        now: i64,
    ) -> Result<DeadAddress> {
        self.write(move |conn| address_is_dead(conn, &dead, message_id.as_deref(), now))
            .await
    }

    async fn planning_facts(
        &self,
        audience: Audience,
        scope: &str,
        cap: Option<(String, i64)>,
        feed: bool,
    ) -> Result<PlanningFacts> {
        let scope = scope.to_owned();
        self.read_small(move |conn| {
            let (profiles, addresses) = match &audience {
                Audience::Customer(id) => {
                    let profile = read(conn, id)?.map(|r| r.profile);
                    let keys = profile.iter().flat_map(|p| p.addresses.keys()).collect();
                    (profile.into_iter().collect(), keys)
                }
                Audience::Address { channel, address } => (
                    at_address(conn, *channel, address)?,
                    vec![(*channel, address.clone())],
                ),
            };
            let recent = match &cap {
                Some((category, since)) => messages::recent(conn, &scope, category, *since)?,
                None => 0,
            };
            let feed_opened_at = match &audience {
                Audience::Customer(id) if feed => super::feed::opened_at(conn, id)?,
                _ => None,
            };
            Ok(PlanningFacts {
                profiles,
                suppressions: suppressions(conn, &addresses)?,
                recent,
                feed_opened_at,
            })
        })
        .await
    }

    async fn suppressions(&self, addresses: Vec<(Channel, String)>) -> Result<Vec<Suppression>> {
        self.read(move |conn| suppressions(conn, &addresses)).await
    }

    async fn suppress(&self, suppression: Suppression) -> Result<bool> {
        self.write(move |conn| Ok(suppress(conn, &suppression, false)?.written))
            .await
    }

    async fn put_suppression(&self, suppression: Suppression) -> Result<bool> {
        self.write(move |conn| Ok(suppress(conn, &suppression, true)?.created))
            .await
    }

    async fn delete_suppression(
        &self,
        channel: Channel,
        address: &str,
        reason: Option<SuppressionReason>,
    ) -> Result<bool> {
        let address = address.to_owned();
        self.write(move |conn| unsuppress(conn, channel, &address, reason))
            .await
    }
}

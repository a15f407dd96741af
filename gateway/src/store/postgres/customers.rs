//! Customers, the address index, consent and the suppression list on
//! PostgreSQL. A profile changed by two nodes at once is read `FOR UPDATE`,
//! so one change waits for the other instead of overwriting it.

use super::PostgresStore;
use super::Sql;
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
use std::sync::LazyLock;

async fn index_addresses(tx: &impl Sql, id: &str, profile: &Profile) -> Result<()> {
    tx.exec(
        "DELETE FROM customer_addresses WHERE customer_id = $1",
        &[&id],
    )
    .await?;
    let (channels, addresses): (Vec<&str>, Vec<String>) = profile
        .addresses
        .keys()
        .into_iter()
        .map(|(channel, address)| (channel.as_str(), address))
        .unzip();
    tx.exec(
        "INSERT INTO customer_addresses (channel, address, customer_id)
         SELECT channel, address, $3 FROM unnest($1::text[], $2::text[]) AS a (channel, address)
         ON CONFLICT DO NOTHING",
        &[&channels, &addresses, &id],
    )
    .await?;
    Ok(())
}

/// The trait rows of one customer follow their profile.
async fn index_traits(tx: &impl Sql, id: &str, profile: &Profile) -> Result<()> {
    tx.exec("DELETE FROM customer_traits WHERE customer_id = $1", &[&id])
        .await?;
    tx.exec(
        "INSERT INTO customer_traits (trait, customer_id)
         SELECT t, $2 FROM unnest($1::text[]) AS t ON CONFLICT DO NOTHING",
        &[&traits::of(profile), &id],
    )
    .await?;
    Ok(())
}

/// Profiles stored before segments existed (schema step 5) get their traits
/// once; every customer has at least the `customer` trait, so those without
/// any are the ones to index.
pub async fn build_trait_index(db: &impl Sql) -> Result<()> {
    let rows = db
        .rows(
            "SELECT id, profile FROM customers c
             WHERE NOT EXISTS (SELECT 1 FROM customer_traits t WHERE t.customer_id = c.id)",
            &[],
        )
        .await?;
    for row in rows {
        let id: &str = row.get(0);
        let profile: Profile = serde_json::from_str(row.get(1))
            .map_err(|e| StoreError::Corrupt(format!("profile of {id}: {e}")))?;
        index_traits(db, id, &profile).await?;
    }
    Ok(())
}

pub async fn put(tx: &impl Sql, id: &str, profile: &Profile, now: i64) -> Result<bool> {
    let json = messages::json(profile)?;
    let created = tx
        .one(
            "INSERT INTO customers (id, profile, created_at, updated_at) VALUES ($1, $2, $3, $3)
             ON CONFLICT (id) DO UPDATE SET profile = EXCLUDED.profile, updated_at = $3
             RETURNING xmax = 0",
            &[&id, &json, &now],
        )
        .await?
        .get::<_, bool>(0);
    index_addresses(tx, id, profile).await?;
    index_traits(tx, id, profile).await?;
    Ok(created)
}

/// `for_update` locks the row until the transaction ends.
pub async fn read(db: &impl Sql, id: &str, for_update: bool) -> Result<Option<CustomerRecord>> {
    let sql = if for_update {
        "SELECT profile, created_at, updated_at FROM customers WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT profile, created_at, updated_at FROM customers WHERE id = $1"
    };
    let Some(row) = db.opt(sql, &[&id]).await? else {
        return Ok(None);
    };
    Ok(Some(CustomerRecord {
        profile: serde_json::from_str(row.get(0))
            .map_err(|e| StoreError::Corrupt(format!("profile of {id}: {e}")))?,
        created_at: row.get(1),
        updated_at: row.get(2),
    }))
}

pub(super) async fn owners(db: &impl Sql, channel: Channel, address: &str) -> Result<Vec<String>> {
    Ok(db
        .rows(
            "SELECT customer_id FROM customer_addresses WHERE channel = $1 AND address = $2
             ORDER BY customer_id",
            &[&channel.as_str(), &address],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

pub async fn at_address(db: &impl Sql, channel: Channel, address: &str) -> Result<Vec<Profile>> {
    let mut profiles = Vec::new();
    for id in owners(db, channel, address).await? {
        if let Some(record) = read(db, &id, false).await? {
            profiles.push(record.profile);
        }
    }
    Ok(profiles)
}

pub async fn update_consent(
    tx: &impl Sql,
    id: &str,
    changes: &[(Channel, String, Consent)],
    now: i64,
) -> Result<Option<Profile>> {
    let Some(record) = read(tx, id, true).await? else {
        return Ok(None);
    };
    let mut profile = record.profile;
    profile.set_consent(changes);
    put(tx, id, &profile, now).await?;
    Ok(Some(profile))
}

pub async fn consent_by_address(
    tx: &impl Sql,
    address: &str,
    channel: Channel,
    categories: &[String],
    consent: &Consent,
    now: i64,
) -> Result<usize> {
    let mut changed = 0;
    for id in owners(tx, channel, address).await? {
        let Some(record) = read(tx, &id, true).await? else {
            continue;
        };
        let mut profile = record.profile;
        if profile.apply_keyword(channel, categories, consent) {
            put(tx, &id, &profile, now).await?;
            changed += 1;
        }
    }
    Ok(changed)
}

pub async fn address_is_dead(
    tx: &impl Sql,
    dead: &Suppression,
    message_id: Option<&str>,
    now: i64,
) -> Result<DeadAddress> {
    let suppressed = suppress(tx, dead, false).await?.written;
    let holders: Vec<String> = match message_id {
        Some(id) => tx
            .opt("SELECT customer_id FROM messages WHERE id = $1", &[&id])
            .await?
            .and_then(|r| r.get(0))
            .into_iter()
            .collect(),
        None => owners(tx, dead.channel, &dead.address).await?,
    };
    let mut forgotten_by = Vec::new();
    for id in holders {
        let Some(record) = read(tx, &id, true).await? else {
            continue;
        };
        let mut profile = record.profile;
        if profile.addresses.forget(dead.channel, &dead.address) {
            put(tx, &id, &profile, now).await?;
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
pub async fn delete(tx: &impl Sql, id: &str, now: i64) -> Result<bool> {
    let deleted = tx
        .exec("DELETE FROM customers WHERE id = $1", &[&id])
        .await?;
    // Their events and journey runs go with them.
    tx.exec("DELETE FROM events WHERE customer_id = $1", &[&id])
        .await?;
    tx.exec("DELETE FROM journey_runs WHERE customer_id = $1", &[&id])
        .await?;
    // What has not gone out yet never will: there is nobody to send it to.
    // Deliveries are locked before their messages, as everywhere.
    static PENDING: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT m.id FROM messages m
             WHERE m.customer_id = $1 AND m.status IN {}
               AND NOT EXISTS (SELECT 1 FROM deliveries d
                               WHERE d.message_id = m.id AND d.state = 'leased')",
            *OPEN
        )
    });
    tx.exec(
        "SELECT d.id FROM deliveries d JOIN messages m ON m.id = d.message_id
         WHERE m.customer_id = $1 ORDER BY d.id FOR UPDATE OF d",
        &[&id],
    )
    .await?;
    for row in tx.rows(&PENDING, &[&id]).await? {
        messages::close(
            tx,
            row.get(0),
            MessageStatus::Cancelled,
            "customer erased",
            now,
        )
        .await?;
    }
    tx.exec(
        "UPDATE deliveries SET address = '[erased]', content = NULL
         WHERE message_id IN (SELECT id FROM messages WHERE customer_id = $1)",
        &[&id],
    )
    .await?;
    static ERASE: LazyLock<String> = LazyLock::new(|| {
        format!(
            "UPDATE messages SET content = '{{\"text\":\"[erased]\"}}'
             WHERE customer_id = $1 AND status NOT IN {}",
            *OPEN
        )
    });
    tx.exec(&ERASE, &[&id]).await?;
    Ok(deleted > 0)
}

pub async fn suppressions(
    db: &impl Sql,
    addresses: &[(Channel, String)],
) -> Result<Vec<Suppression>> {
    if addresses.is_empty() {
        return Ok(Vec::new());
    }
    let (channels, addresses): (Vec<&str>, Vec<&str>) = addresses
        .iter()
        .map(|(channel, address)| (channel.as_str(), address.as_str()))
        .unzip();
    db.rows(
        "SELECT s.channel, s.address, s.reason, s.source, s.note, s.created_at
         FROM suppressions s
         JOIN unnest($1::text[], $2::text[]) AS a (channel, address)
           ON s.channel = a.channel AND s.address = a.address",
        &[&channels, &addresses],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(Suppression {
            channel: r.get::<_, &str>(0).parse().map_err(StoreError::Corrupt)?,
            address: r.get(1),
            reason: r.get::<_, &str>(2).parse().map_err(StoreError::Corrupt)?,
            source: r.get(3),
            note: r.get(4),
            created_at: r.get(5),
        })
    })
    .collect()
}

/// Write an entry; unless `replace`, a person's own wish (opt-out, staff)
/// is kept over a deliverability finding, decided in the one statement so
/// a STOP and a bounce arriving together at two nodes cannot undo it.
/// Returns `None` when nothing was written, else whether it was created.
/// Write `s` unless [`Suppression::may_replace`] says the address's entry
/// stays. Run in a transaction: the entry is read `FOR UPDATE`, and an
/// insert another node made first is read and judged in turn.
pub async fn suppress(tx: &impl Sql, s: &Suppression, replace: bool) -> Result<Written> {
    let kept = Written {
        written: false,
        created: false,
    };
    let (channel, reason) = (s.channel.as_str(), s.reason.as_str());
    let entry: [&(dyn tokio_postgres::types::ToSql + Sync); 6] = [
        &channel,
        &s.address,
        &reason,
        &s.source,
        &s.note,
        &s.created_at,
    ];
    // Twice at most: the second read finds the row the first insert lost to.
    for _ in 0..2 {
        let existing = tx
            .opt(
                "SELECT reason FROM suppressions WHERE channel = $1 AND address = $2 FOR UPDATE",
                &entry[..2],
            )
            .await?;
        let Some(existing) = existing else {
            let inserted = tx
                .exec(
                    "INSERT INTO suppressions (channel, address, reason, source, note, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (channel, address) DO NOTHING",
                    &entry,
                )
                .await?;
            if inserted == 1 {
                return Ok(Written {
                    written: true,
                    created: true,
                });
            }
            continue;
        };
        let existing: SuppressionReason = existing
            .get::<_, &str>(0)
            .parse()
            .map_err(StoreError::Corrupt)?;
        if !s.may_replace(existing, replace) {
            return Ok(kept);
        }
        tx.exec(
            "UPDATE suppressions SET reason = $3, source = $4, note = $5, created_at = $6
             WHERE channel = $1 AND address = $2",
            &entry,
        )
        .await?;
        return Ok(Written {
            written: true,
            created: false,
        });
    }
    Err(StoreError::Conflict(
        "the suppression changed while it was written".into(),
    ))
}

pub async fn unsuppress(
    db: &impl Sql,
    channel: Channel,
    address: &str,
    reason: Option<SuppressionReason>,
) -> Result<bool> {
    let removed = db
        .exec(
            "DELETE FROM suppressions
             WHERE channel = $1 AND address = $2 AND ($3::text IS NULL OR reason = $3)",
            &[&channel.as_str(), &address, &reason.map(|r| r.as_str())],
        )
        .await?;
    Ok(removed > 0)
}

pub async fn request_consent(db: &impl Sql, r: &ConsentRequest) -> Result<()> {
    db.exec(
        "INSERT INTO consent_requests (message_id, customer_id, category, created_at, open_until)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (message_id) DO NOTHING",
        &[
            &r.message_id,
            &r.customer_id,
            &r.category,
            &r.created_at,
            &r.open_until,
        ],
    )
    .await?;
    Ok(())
}

/// See [`crate::store::Store::confirm_consent`]: of the owners' open
/// requests whose message reached them on `channel`, the latest, taken
/// `FOR UPDATE` so two nodes do not confirm it twice.
pub async fn confirm_consent(
    tx: &impl Sql,
    channel: Channel,
    address: &str,
    now: i64,
) -> Result<Option<Confirmed>> {
    let owners = owners(tx, channel, address).await?;
    let open = tx
        .opt(
            "SELECT r.message_id, r.category, r.customer_id FROM consent_requests r
             JOIN messages m ON m.id = r.message_id
             WHERE r.customer_id = ANY ($1) AND r.confirmed_at IS NULL AND r.open_until >= $2
               AND m.delivered_channel = $3 AND m.status IN ('sent', 'delivered', 'read')
             ORDER BY r.created_at DESC LIMIT 1
             FOR UPDATE OF r",
            &[&owners, &now, &channel.as_str()],
        )
        .await?;
    let Some(row) = open else {
        return Ok(None);
    };
    let confirmed = Confirmed {
        message_id: row.get(0),
        category: row.get(1),
        customer_id: row.get(2),
    };
    tx.exec(
        "UPDATE consent_requests SET confirmed_at = $2 WHERE message_id = $1",
        &[&confirmed.message_id, &now],
    )
    .await?;
    let consent = double_opt_in::granted(&confirmed.message_id, now);
    let change = [(channel, confirmed.category.clone(), consent)];
    update_consent(tx, &confirmed.customer_id, &change, now).await?;
    Ok(Some(confirmed))
}

#[async_trait]
impl CustomerStore for PostgresStore {
    async fn request_consent(&self, request: ConsentRequest) -> Result<()> {
        request_consent(&self.client().await?, &request).await
    }

    async fn confirm_consent(
        &self,
        channel: Channel,
        address: &str,
        now: i64,
    ) -> Result<Option<Confirmed>> {
        transaction!(self, |tx| confirm_consent(&tx, channel, address, now).await)
    }

    async fn put_customer(&self, id: &str, profile: Profile, now: i64) -> Result<bool> {
        transaction!(self, |tx| put(&tx, id, &profile, now).await)
    }

    async fn customer(&self, id: &str) -> Result<Option<CustomerRecord>> {
        read(&self.client().await?, id, false).await
    }

    async fn update_consent(
        &self,
        id: &str,
        changes: Vec<(Channel, String, Consent)>,
        now: i64,
    ) -> Result<Option<Profile>> {
        transaction!(self, |tx| update_consent(&tx, id, &changes, now).await)
    }

    async fn delete_customer(&self, id: &str, now: i64) -> Result<bool> {
        transaction!(self, |tx| delete(&tx, id, now).await)
    }

    async fn consent_by_address(
        &self,
        address: &str,
        channel: Channel,
        categories: Vec<String>,
        consent: Consent,
        now: i64,
    ) -> Result<usize> {
        transaction!(self, |tx| consent_by_address(
            &tx,
            address,
            channel,
            &categories,
            &consent,
            now
        )
        .await)
    }

    async fn address_is_dead(
        &self,
        dead: Suppression,
        message_id: Option<String>,
        now: i64,
    ) -> Result<DeadAddress> {
        transaction!(self, |tx| address_is_dead(
            &tx,
            &dead,
            message_id.as_deref(),
            now
        )
        .await)
    }

    async fn planning_facts(
        &self,
        audience: Audience,
        scope: &str,
        cap: Option<(String, i64)>,
        feed: bool,
    ) -> Result<PlanningFacts> {
        let client = self.client().await?;
        // Queries that do not wait on each other go out together
        // (pipelined on the one connection).
        match &audience {
            Audience::Customer(id) => {
                let (record, recent, feed_opened_at) = tokio::try_join!(
                    read(&client, id, false),
                    messages::recent_under(&client, scope, cap.as_ref()),
                    async {
                        match feed {
                            true => super::feed::opened_at(&client, id).await,
                            false => Ok(None),
                        }
                    }
                )?;
                let profile = record.map(|r| r.profile);
                let addresses: Vec<(Channel, String)> =
                    profile.iter().flat_map(|p| p.addresses.keys()).collect();
                Ok(PlanningFacts {
                    suppressions: suppressions(&client, &addresses).await?,
                    profiles: profile.into_iter().collect(),
                    recent,
                    feed_opened_at,
                })
            }
            Audience::Address { channel, address } => {
                let addresses = [(*channel, address.clone())];
                let (profiles, suppressions, recent) = tokio::try_join!(
                    at_address(&client, *channel, address),
                    suppressions(&client, &addresses),
                    messages::recent_under(&client, scope, cap.as_ref())
                )?;
                Ok(PlanningFacts {
                    profiles,
                    suppressions,
                    recent,
                    feed_opened_at: None,
                })
            }
        }
    }

    async fn suppressions(&self, addresses: Vec<(Channel, String)>) -> Result<Vec<Suppression>> {
        suppressions(&self.client().await?, &addresses).await
    }

    async fn suppress(&self, suppression: Suppression) -> Result<bool> {
        let written = transaction!(self, |tx| suppress(&tx, &suppression, false).await)?;
        Ok(written.written)
    }

    async fn put_suppression(&self, suppression: Suppression) -> Result<bool> {
        let written = transaction!(self, |tx| suppress(&tx, &suppression, true).await)?;
        Ok(written.created)
    }

    async fn delete_suppression(
        &self,
        channel: Channel,
        address: &str,
        reason: Option<SuppressionReason>,
    ) -> Result<bool> {
        unsuppress(&self.client().await?, channel, address, reason).await
    }
}

//! The channel report's whole days, summed once and kept (`report_days`,
//! `report_day_rows`, schema step 14): a month's report reads thirty small
//! sums instead of every message of the month, however many the store
//! holds. Only the period's edges (the part of its first day, and today)
//! are counted from the messages each time.
//!
//! A day is summed the first time a report covers it after it ended. The
//! store forgets a day's sums again, by trigger, as soon as a message is
//! stored into it or one of its messages changes status (a late delivery
//! report, a read, an escalation's attempt), so kept sums always say what
//! the messages say. One exception, on purpose: a day summed before
//! retention purged its messages keeps its figures.
//!
//! Summing is not one transaction with the writes it races on PostgreSQL,
//! so a day is first claimed (committed), then counted, and its sums kept
//! only if the claim still stands: a write that landed in between forgot
//! the claim with the day. Nodes summing the same day at once count it
//! each; only the claim's holder keeps it.

use super::Result;
use super::reports::{self, MessageCounts, ReportKey, ReportRow};
use async_trait::async_trait;
use std::collections::BTreeSet;
use std::ops::Range;

pub const DAY_MS: i64 = 86_400_000;
/// A day is summed once it ended this long ago, by the gateway's clock and
/// (on PostgreSQL) the database's: a write begun before midnight and
/// committed after it is then long done.
pub const SETTLE_MS: i64 = 3_600_000;
/// A claim not kept within this long (its node stopped) may be taken over.
pub const CLAIM_TIMEOUT_MS: i64 = 60_000;
/// What a day is kept by: every key, so any report can be summed from it.
const EVERY_KEY: [ReportKey; 3] = [ReportKey::Channel, ReportKey::Region, ReportKey::Campaign];

/// A backend's part of the report: its queries, in its dialect.
#[async_trait]
pub trait DaySums: Sync {
    /// The kept sums of the days in `days`, by `keys`, and which days
    /// those are (a day without messages is kept with no rows), read in one
    /// snapshot.
    async fn kept(
        &self,
        days: Range<i64>,
        keys: &[ReportKey],
    ) -> Result<(BTreeSet<i64>, Vec<MessageCounts>)>;

    /// Claims `day` for summing as `claim`: false when it is kept already,
    /// claimed by another within [`CLAIM_TIMEOUT_MS`], or (PostgreSQL) not
    /// yet settled on the database's clock.
    async fn claim(&self, day: i64, claim: &str, now: i64) -> Result<bool>;

    /// Keeps `rows` as `day`'s sums if `claim` still holds it.
    async fn keep(&self, day: i64, claim: &str, rows: Vec<MessageCounts>, now: i64) -> Result<()>;

    /// Messages created in `[from, to)`, counted by `keys`
    /// ([`reports::messages_sql`]).
    async fn count(&self, from: i64, to: i64, keys: &[ReportKey]) -> Result<Vec<MessageCounts>>;

    /// Conversions in `[from, to)` by `keys` ([`reports::conversions_sql`]).
    async fn conversions(
        &self,
        from: i64,
        to: i64,
        keys: &[ReportKey],
    ) -> Result<Vec<(Vec<Option<String>>, i64, f64)>>;
}

/// Messages created and conversions made in `[from, to)`, by `keys`: kept
/// days summed, missing ones counted (and kept), the edges counted.
pub async fn channel_report(
    store: &impl DaySums,
    from: i64,
    to: i64,
    keys: &[ReportKey],
    now: i64,
) -> Result<Vec<ReportRow>> {
    let period = Period::of(from, to, now);
    let mut counts = Vec::new();
    for edge in &period.edges {
        counts.extend(store.count(edge.start, edge.end, keys).await?);
    }
    if !period.days.is_empty() {
        let (kept, rows) = store.kept(period.days.clone(), keys).await?;
        counts.extend(rows);
        let claim = format!("{:016x}", rand::random::<u64>());
        for day in period.days.filter(|day| !kept.contains(day)) {
            // Claimed (and committed) before counting: a write after the
            // count's snapshot forgets the claim, so stale sums are never kept.
            let claimed = store.claim(day, &claim, now).await?;
            let rows = store
                .count(day * DAY_MS, (day + 1) * DAY_MS, &EVERY_KEY)
                .await?;
            counts.extend(rows.iter().map(|row| by(row, keys)));
            if claimed {
                store.keep(day, &claim, rows, now).await?;
            }
        }
    }
    // Sums over no rows (an empty period, a kept day without messages).
    counts.retain(|m| m.counts.iter().any(|c| *c > 0));
    let mut conversions = store.conversions(from, to, keys).await?;
    conversions.retain(|c| c.1 > 0);
    Ok(reports::merge(counts, conversions))
}

/// `row`, kept by every key, as a row by `keys`.
fn by(row: &MessageCounts, keys: &[ReportKey]) -> MessageCounts {
    MessageCounts {
        key: keys
            .iter()
            .map(|k| {
                let at = EVERY_KEY.iter().position(|e| e == k).unwrap_or_default();
                row.key[at].clone()
            })
            .collect(),
        counts: row.counts,
        cost: row.cost,
    }
}

/// A report's period cut into whole settled days and the rest.
#[derive(Debug, PartialEq)]
struct Period {
    /// Days (since 1970-01-01, UTC) wholly inside the period and settled.
    days: Range<i64>,
    /// The parts of the period outside `days`, in milliseconds.
    edges: Vec<Range<i64>>,
}

impl Period {
    fn of(from: i64, to: i64, now: i64) -> Period {
        let first = from.div_euclid(DAY_MS) + i64::from(from.rem_euclid(DAY_MS) != 0);
        let end = to
            .div_euclid(DAY_MS)
            .min((now - SETTLE_MS).div_euclid(DAY_MS));
        if first >= end {
            return Period {
                days: 0..0,
                edges: std::iter::once(from..to).collect(),
            };
        }
        let edges = [from..first * DAY_MS, end * DAY_MS..to]
            .into_iter()
            .filter(|edge| edge.start < edge.end)
            .collect();
        Period {
            days: first..end,
            edges,
        }
    }
}

/// The kept sums of `[p1, p2)`'s days by `keys`. Columns: the day, the
/// keys, then the sums as [`reports::messages_sql`] has them (all NULL for
/// a day kept without messages; cast, as PostgreSQL sums `BIGINT`s to
/// `NUMERIC`).
pub fn kept_sql(keys: &[ReportKey], placeholder: fn(usize) -> String) -> String {
    let columns: Vec<String> = keys.iter().map(|k| format!("x.{}", k.as_str())).collect();
    let select: String = columns.iter().map(|c| format!("{c}, ")).collect();
    let group: String = columns.iter().map(|c| format!(", {c}")).collect();
    format!(
        "SELECT r.day, {select}CAST(SUM(x.sent) AS BIGINT), CAST(SUM(x.delivered) AS BIGINT),
             CAST(SUM(x.read) AS BIGINT), CAST(SUM(x.failed) AS BIGINT),
             CAST(SUM(x.suppressed) AS BIGINT), SUM(x.cost)
         FROM report_days r LEFT JOIN report_day_rows x ON x.day = r.day
         WHERE r.day >= {} AND r.day < {} AND r.rolled_at IS NOT NULL
         GROUP BY r.day{group}",
        placeholder(1),
        placeholder(2),
    )
}

/// Claims a day: `values` selects (day, claim, claimed_at), with whatever
/// condition the backend adds; `p4` is the oldest claim still standing.
pub fn claim_sql(values: &str, placeholder: fn(usize) -> String) -> String {
    format!(
        "INSERT INTO report_days (day, claim, claimed_at) {values}
         ON CONFLICT (day) DO UPDATE SET claim = excluded.claim, claimed_at = excluded.claimed_at
         WHERE report_days.rolled_at IS NULL AND report_days.claimed_at < {}
         RETURNING day",
        placeholder(4)
    )
}

/// Whether `p2` still holds day `p1`'s claim.
pub fn holds_sql(placeholder: fn(usize) -> String) -> String {
    format!(
        "SELECT 1 FROM report_days WHERE day = {} AND claim = {} AND rolled_at IS NULL",
        placeholder(1),
        placeholder(2)
    )
}

/// One kept row of a day, by every key.
pub fn row_sql(placeholder: fn(usize) -> String) -> String {
    let values: Vec<String> = (1..=10).map(placeholder).collect();
    format!(
        "INSERT INTO report_day_rows (day, channel, region, campaign, sent, delivered, read,
             failed, suppressed, cost)
         VALUES ({})",
        values.join(", ")
    )
}

/// Marks day `p1` summed at `p2`.
pub fn rolled_sql(placeholder: fn(usize) -> String) -> String {
    format!(
        "UPDATE report_days SET rolled_at = {} WHERE day = {}",
        placeholder(2),
        placeholder(1)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    #[test]
    fn a_period_is_whole_settled_days_between_its_edges() {
        let now = 10 * DAY_MS + 5 * H;
        // From mid day 2 to now: days 3..10 whole, edges of day 2 and today.
        assert_eq!(
            Period::of(2 * DAY_MS + 12 * H, now, now),
            Period {
                days: 3..10,
                edges: vec![2 * DAY_MS + 12 * H..3 * DAY_MS, 10 * DAY_MS..now],
            }
        );
        // Aligned on days: no edges.
        assert_eq!(
            Period::of(3 * DAY_MS, 9 * DAY_MS, now),
            Period {
                days: 3..9,
                edges: vec![],
            }
        );
        // Yesterday is not settled in the first hour of today.
        let early = 10 * DAY_MS + H / 2;
        assert_eq!(Period::of(3 * DAY_MS, early, early).days, 3..9);
        // Within one day: all edge.
        assert_eq!(
            Period::of(DAY_MS + H, DAY_MS + 2 * H, now),
            Period {
                days: 0..0,
                edges: std::iter::once(DAY_MS + H..DAY_MS + 2 * H).collect(),
            }
        );
    }

    #[test]
    fn a_row_kept_by_every_key_answers_any_keys() {
        let row = MessageCounts {
            key: vec![Some("sms".into()), Some("EU".into()), None],
            counts: [1, 2, 3, 4, 5],
            cost: 0.5,
        };
        let by_campaign_channel = by(&row, &[ReportKey::Campaign, ReportKey::Channel]);
        assert_eq!(by_campaign_channel.key, vec![None, Some("sms".into())]);
        assert_eq!(by_campaign_channel.counts, [1, 2, 3, 4, 5]);
        assert!(by(&row, &[]).key.is_empty());
    }
}

//! What campaigns cost and brought: conversions credited to the messages
//! before them, and the spend-and-outcome report. Both backends run the
//! same SQL, built here (only placeholders differ), and hand back plain
//! rows that are put together here.

use std::collections::BTreeMap;

/// A conversion event as the API accepted it.
#[derive(Debug, Clone)]
pub struct NewConversion {
    pub event_id: String,
    pub customer_id: String,
    pub name: String,
    /// `None` when the event carried no usable amount.
    pub value: Option<f64>,
    pub currency: Option<String>,
    pub occurred_at: i64,
    /// Messages delivered or read this long before count.
    pub window_ms: i64,
}

/// A message a conversion may be credited to.
#[derive(Debug, Clone, PartialEq)]
pub struct Touch {
    pub message_id: String,
    pub channel: String,
    pub region: Option<String>,
    pub connector: Option<String>,
    pub campaign: Option<String>,
    /// The message's template summary (JSON), if it was a template send.
    pub template: Option<String>,
}

/// A conversion and the messages it is credited to.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversionRecord {
    pub event_id: String,
    pub customer_id: String,
    pub name: String,
    pub value: Option<f64>,
    pub currency: Option<String>,
    pub occurred_at: i64,
    /// The last message delivered or read within the window (the credit).
    pub last_message_id: Option<String>,
    /// The first one: what began it.
    pub first_message_id: Option<String>,
    pub channel: Option<String>,
    pub region: Option<String>,
    pub connector: Option<String>,
    pub campaign: Option<String>,
    pub template: Option<String>,
}

impl ConversionRecord {
    /// `conversion` credited to `last` (last touch), with `first` beside it.
    pub fn credit(conversion: NewConversion, last: Option<Touch>, first: Option<Touch>) -> Self {
        let template = last
            .as_ref()
            .and_then(|t| t.template.as_deref())
            .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
            .and_then(|t| t["name"].as_str().map(str::to_owned));
        ConversionRecord {
            event_id: conversion.event_id,
            customer_id: conversion.customer_id,
            name: conversion.name,
            value: conversion.value,
            currency: conversion.currency,
            occurred_at: conversion.occurred_at,
            last_message_id: last.as_ref().map(|t| t.message_id.clone()),
            first_message_id: first.map(|t| t.message_id),
            channel: last.as_ref().map(|t| t.channel.clone()),
            region: last.as_ref().and_then(|t| t.region.clone()),
            connector: last.as_ref().and_then(|t| t.connector.clone()),
            campaign: last.and_then(|t| t.campaign),
            template,
        }
    }
}

/// The touch query: the customer's delivered or read messages in the
/// window, newest first (`DESC`) or oldest first (`ASC`).
pub fn touch_sql(order: &str, placeholder: fn(usize) -> String) -> String {
    let p = placeholder;
    format!(
        "SELECT id, COALESCE(delivered_channel, channel), region, delivered_by, campaign, template
         FROM messages
         WHERE customer_id = {} AND status IN ('delivered', 'read')
           AND created_at >= {} AND created_at <= {}
         ORDER BY created_at {order} LIMIT 1",
        p(1),
        p(2),
        p(3)
    )
}

/// What a report groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReportKey {
    Channel,
    Region,
    Campaign,
}

impl ReportKey {
    pub fn parse(name: &str) -> Option<ReportKey> {
        match name {
            "channel" => Some(ReportKey::Channel),
            "region" => Some(ReportKey::Region),
            "campaign" => Some(ReportKey::Campaign),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ReportKey::Channel => "channel",
            ReportKey::Region => "region",
            ReportKey::Campaign => "campaign",
        }
    }

    fn message_column(self) -> &'static str {
        match self {
            ReportKey::Channel => "COALESCE(m.delivered_channel, m.channel)",
            ReportKey::Region => "m.region",
            ReportKey::Campaign => "m.campaign",
        }
    }

    fn conversion_column(self) -> &'static str {
        match self {
            ReportKey::Channel => "c.channel",
            ReportKey::Region => "c.region",
            ReportKey::Campaign => "c.campaign",
        }
    }
}

/// Messages created in `[from, to)`, counted by outcome, with what their
/// sent deliveries cost. Columns: the keys, then sent, delivered, read,
/// failed, suppressed, cost.
pub fn messages_sql(keys: &[ReportKey], placeholder: fn(usize) -> String) -> String {
    let columns: Vec<&str> = keys.iter().map(|k| k.message_column()).collect();
    let select = columns.iter().map(|c| format!("{c}, ")).collect::<String>();
    format!(
        "SELECT {select}
             SUM(CASE WHEN m.status IN ('sent', 'delivered', 'read') THEN 1 ELSE 0 END),
             SUM(CASE WHEN m.status IN ('delivered', 'read') THEN 1 ELSE 0 END),
             SUM(CASE WHEN m.status = 'read' THEN 1 ELSE 0 END),
             SUM(CASE WHEN m.status = 'failed' THEN 1 ELSE 0 END),
             SUM(CASE WHEN m.status = 'suppressed' THEN 1 ELSE 0 END),
             SUM(COALESCE(d.cost, 0))
         FROM messages m
         LEFT JOIN deliveries d ON d.message_id = m.id AND d.state = 'sent'
         WHERE m.created_at >= {} AND m.created_at < {}{}",
        placeholder(1),
        placeholder(2),
        group_by(&columns)
    )
}

/// Conversions in `[from, to)` by the keys of the message credited.
/// Columns: the keys, then count, revenue.
pub fn conversions_sql(keys: &[ReportKey], placeholder: fn(usize) -> String) -> String {
    let columns: Vec<&str> = keys.iter().map(|k| k.conversion_column()).collect();
    let select = columns.iter().map(|c| format!("{c}, ")).collect::<String>();
    format!(
        "SELECT {select} COUNT(*), SUM(c.value) FROM conversions c
         WHERE c.occurred_at >= {} AND c.occurred_at < {}{}",
        placeholder(1),
        placeholder(2),
        group_by(&columns)
    )
}

fn group_by(columns: &[&str]) -> String {
    if columns.is_empty() {
        String::new()
    } else {
        format!(" GROUP BY {}", columns.join(", "))
    }
}

/// One group of the report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportRow {
    /// One value per key, `None` where the message had none (no campaign,
    /// a conversion credited to no message).
    pub key: Vec<Option<String>>,
    pub sent: i64,
    pub delivered: i64,
    pub read: i64,
    pub failed: i64,
    pub suppressed: i64,
    pub cost: f64,
    pub conversions: i64,
    pub revenue: f64,
}

/// A row of `messages_sql`, as a backend read it.
#[derive(Debug, Clone)]
pub struct MessageCounts {
    pub key: Vec<Option<String>>,
    /// Sent, delivered, read, failed, suppressed.
    pub counts: [i64; 5],
    pub cost: f64,
}

/// Messages and conversions of the same group in one row, in key order:
/// rows of the same group (several days, a day and an edge) add up.
pub fn merge(
    messages: Vec<MessageCounts>,
    conversions: Vec<(Vec<Option<String>>, i64, f64)>,
) -> Vec<ReportRow> {
    let mut rows: BTreeMap<Vec<Option<String>>, ReportRow> = BTreeMap::new();
    fn group(
        rows: &mut BTreeMap<Vec<Option<String>>, ReportRow>,
        key: Vec<Option<String>>,
    ) -> &mut ReportRow {
        rows.entry(key.clone()).or_insert_with(|| ReportRow {
            key,
            ..ReportRow::default()
        })
    }
    for m in messages {
        let row = group(&mut rows, m.key);
        let [sent, delivered, read, failed, suppressed] = m.counts;
        row.sent += sent;
        row.delivered += delivered;
        row.read += read;
        row.failed += failed;
        row.suppressed += suppressed;
        row.cost += m.cost;
    }
    for (key, count, revenue) in conversions {
        let row = group(&mut rows, key);
        row.conversions += count;
        row.revenue += revenue;
    }
    rows.into_values().collect()
}

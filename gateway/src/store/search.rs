//! Finding messages: by customer, address, channel, status, category or
//! campaign within a time range, newest first, a page at a time. One
//! statement for both stores, built here with only the filters asked for
//! (so each uses its index: a customer's, an address's, or the time's), and
//! always bounded: a range and a page.

use crate::message::{Channel, MessageStatus};

/// What `GET /v1/messages` asks for. Times are `created_at`, `[from, to)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageQuery {
    pub customer_id: Option<String>,
    /// The message's recipient as stored: an E.164 number, an email, a customer id.
    pub recipient: Option<String>,
    pub channel: Option<Channel>,
    pub status: Option<MessageStatus>,
    pub category: Option<String>,
    pub campaign: Option<String>,
    pub from: i64,
    pub to: i64,
    /// Older than this `(created_at, id)`: the previous page's last.
    pub before: Option<(i64, String)>,
    pub limit: usize,
}

/// A message as a list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSummary {
    pub id: String,
    pub status: MessageStatus,
    pub status_reason: Option<String>,
    pub channel: Channel,
    pub recipient: String,
    pub customer_id: Option<String>,
    pub category: Option<String>,
    pub campaign: Option<String>,
    pub delivered_by: Option<String>,
    pub delivered_channel: Option<Channel>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A bound value of the statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    Text(String),
    Int(i64),
}

/// The columns a summary is read from, in [`MessageSummary`]'s order.
pub const COLUMNS: &str = "id, status, status_reason, channel, recipient, customer_id, category, \
     campaign, delivered_by, delivered_channel, created_at, updated_at";

impl MessageQuery {
    /// The statement and its values, `placeholder(n)` spelling the n-th
    /// (1-based) in the backend's dialect.
    pub fn sql(&self, placeholder: impl Fn(usize) -> String) -> (String, Vec<Param>) {
        let mut params = Vec::new();
        let mut bind = |value: Param| {
            params.push(value);
            placeholder(params.len())
        };
        let mut terms = vec![
            format!("created_at >= {}", bind(Param::Int(self.from))),
            format!("created_at < {}", bind(Param::Int(self.to))),
        ];
        let text = [
            ("customer_id", &self.customer_id),
            ("recipient", &self.recipient),
            ("category", &self.category),
            ("campaign", &self.campaign),
        ];
        for (column, value) in text {
            if let Some(value) = value {
                terms.push(format!("{column} = {}", bind(Param::Text(value.clone()))));
            }
        }
        if let Some(channel) = self.channel {
            let value = bind(Param::Text(channel.as_str().to_owned()));
            terms.push(format!(
                "(channel = {value} OR delivered_channel = {value})"
            ));
        }
        if let Some(status) = self.status {
            terms.push(format!(
                "status = {}",
                bind(Param::Text(status.as_str().to_owned()))
            ));
        }
        if let Some((at, id)) = &self.before {
            let at = bind(Param::Int(*at));
            let id = bind(Param::Text(id.clone()));
            terms.push(format!(
                "(created_at < {at} OR (created_at = {at} AND id < {id}))"
            ));
        }
        let limit = bind(Param::Int(i64::try_from(self.limit).unwrap_or(i64::MAX)));
        (
            format!(
                "SELECT {COLUMNS} FROM messages WHERE {} ORDER BY created_at DESC, id DESC LIMIT {limit}",
                terms.join(" AND ")
            ),
            params,
        )
    }
}

/// A summary as both stores read it, before its names are checked.
pub struct Raw {
    pub id: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub channel: String,
    pub recipient: String,
    pub customer_id: Option<String>,
    pub category: Option<String>,
    pub campaign: Option<String>,
    pub delivered_by: Option<String>,
    pub delivered_channel: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Raw {
    pub fn check(self) -> Result<MessageSummary, String> {
        Ok(MessageSummary {
            status: self.status.parse()?,
            channel: self.channel.parse()?,
            delivered_channel: self
                .delivered_channel
                .as_deref()
                .map(str::parse)
                .transpose()?,
            id: self.id,
            status_reason: self.status_reason,
            recipient: self.recipient,
            customer_id: self.customer_id,
            category: self.category,
            campaign: self.campaign,
            delivered_by: self.delivered_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_filters_asked_for_are_in_the_statement_each_bound() {
        let query = MessageQuery {
            customer_id: Some("ada".into()),
            status: Some(MessageStatus::Sent),
            from: 1,
            to: 2,
            before: Some((5, "msg_9".into())),
            limit: 20,
            ..MessageQuery::default()
        };
        let (sql, params) = query.sql(|n| format!("${n}"));
        assert!(sql.contains("customer_id = $3"), "{sql}");
        assert!(sql.contains("status = $4"), "{sql}");
        assert!(!sql.contains("campaign ="), "{sql}");
        assert!(sql.ends_with("LIMIT $7"), "{sql}");
        assert_eq!(params.len(), 7);
        assert_eq!(params[2], Param::Text("ada".into()));
    }
}

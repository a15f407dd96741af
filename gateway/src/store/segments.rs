//! A segment as the store runs it: index lookups on `customer_traits` and
//! `events`, members in customer-id order so a broadcast can page through
//! them and resume where it stopped. Both backends run the same SQL, built
//! here; only the placeholders differ (`?1` against `$1`).

use std::fmt::Write as _;

/// Who is in a segment, in traits and events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentQuery {
    /// Each group: the customer holds at least one of its traits.
    pub all_of: Vec<Vec<String>>,
    /// The customer holds none of these traits.
    pub none_of: Vec<String>,
    /// `(event, since)`: the customer had the event at or after `since`.
    pub did: Vec<(String, i64)>,
    /// `(event, since)`: the customer had no such event since then.
    pub did_not: Vec<(String, i64)>,
}

/// A value bound to a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    Text(String),
    Int(i64),
}

/// What to select from the members.
pub enum Select<'a> {
    /// Up to `limit` member ids after `after`, in order.
    Page {
        after: &'a str,
        limit: usize,
    },
    Count,
}

/// The SQL and its parameters; `placeholder(n)` spells the n-th (from 1).
pub fn sql(
    query: &SegmentQuery,
    select: Select<'_>,
    placeholder: fn(usize) -> String,
) -> (String, Vec<Param>) {
    let mut params = Vec::new();
    let mut bind = |p: Param| {
        params.push(p);
        placeholder(params.len())
    };
    let mut sql = String::from(match select {
        Select::Page { .. } => "SELECT m.customer_id FROM customer_traits m",
        Select::Count => "SELECT COUNT(*) FROM customer_traits m",
    });
    let _ = write!(
        sql,
        " WHERE m.trait = {}",
        bind(Param::Text("customer".into()))
    );
    if let Select::Page { after, .. } = select {
        let _ = write!(
            sql,
            " AND m.customer_id > {}",
            bind(Param::Text(after.into()))
        );
    }
    for group in &query.all_of {
        let any: Vec<String> = group.iter().map(|t| bind(Param::Text(t.clone()))).collect();
        let _ = write!(
            sql,
            " AND EXISTS (SELECT 1 FROM customer_traits t WHERE t.customer_id = m.customer_id \
             AND t.trait IN ({}))",
            any.join(", ")
        );
    }
    if !query.none_of.is_empty() {
        let none: Vec<String> = query
            .none_of
            .iter()
            .map(|t| bind(Param::Text(t.clone())))
            .collect();
        let _ = write!(
            sql,
            " AND NOT EXISTS (SELECT 1 FROM customer_traits t WHERE t.customer_id = m.customer_id \
             AND t.trait IN ({}))",
            none.join(", ")
        );
    }
    for (negate, events) in [("", &query.did), ("NOT ", &query.did_not)] {
        for (event, since) in events {
            let name = bind(Param::Text(event.clone()));
            let since = bind(Param::Int(*since));
            let _ = write!(
                sql,
                " AND {negate}EXISTS (SELECT 1 FROM events e WHERE e.customer_id = m.customer_id \
                 AND e.name = {name} AND e.occurred_at >= {since})"
            );
        }
    }
    if let Select::Page { limit, .. } = select {
        let limit = bind(Param::Int(limit as i64));
        let _ = write!(sql, " ORDER BY m.customer_id LIMIT {limit}");
    }
    (sql, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_bound_never_spliced() {
        let query = SegmentQuery {
            all_of: vec![vec!["country:NL".into(), "country:BE'--".into()]],
            none_of: vec!["consent:email:marketing=opted_out".into()],
            did: vec![("purchase".into(), 1_000)],
            did_not: vec![],
        };
        let (sql, params) = sql(
            &query,
            Select::Page {
                after: "",
                limit: 10,
            },
            |n| format!("${n}"),
        );
        assert!(!sql.contains("BE'"), "{sql}");
        assert_eq!(params.len(), 8);
        assert!(sql.ends_with("ORDER BY m.customer_id LIMIT $8"), "{sql}");
    }
}

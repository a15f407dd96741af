//! The `Store` trait's contract, one suite run unchanged against every
//! backend: `store::sqlite::*` and `store::postgres::*` are the same tests.
//! The PostgreSQL half needs `CROSSGATE_TEST_POSTGRES_URL` (see
//! support/postgres.rs).
//!
//! Each test gets two handles on one fresh database, `a` and `b`: for
//! PostgreSQL two stores as two nodes would open them, for SQLite (one
//! process per file) the same store twice.

mod contract;

use crossgate::clock::wall_ms;
use crossgate::config::Database;
use crossgate::message::{Channel, Content};
use crossgate::store::{self, NewDelivery, NewMessage, Store};
use std::sync::Arc;

pub struct Stores {
    pub a: Arc<dyn Store>,
    pub b: Arc<dyn Store>,
    /// The node names `a` and `b` record attempts under.
    pub a_node: &'static str,
    pub b_node: &'static str,
    /// Keeps an SQLite file alive for the test.
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Stores {
    let dir = tempfile::tempdir().unwrap();
    let database = Database::Sqlite(dir.path().join("crossgate.db"));
    let a = store::open(&database, 1, "node-a", wall_ms())
        .await
        .unwrap();
    Stores {
        b: a.clone(),
        a_node: "node-a",
        b_node: "node-a",
        a,
        _dir: Some(dir),
    }
}

async fn postgres(test: &str) -> Option<Stores> {
    let url = crate::support::postgres::migrated_database(test).await?;
    let database = Database::Postgres(url);
    let (a, b) = tokio::join!(
        store::open(&database, 4, "node-a", wall_ms()),
        store::open(&database, 4, "node-b", wall_ms())
    );
    Some(Stores {
        a: a.unwrap(),
        b: b.unwrap(),
        a_node: "node-a",
        b_node: "node-b",
        _dir: None,
    })
}

/// A message for `+31612345678` with one SMS delivery per connector named.
pub fn message(id: &str, created_at: i64, connectors: &[&str]) -> NewMessage {
    NewMessage {
        id: id.into(),
        channel: Channel::Sms,
        recipient: "+31612345678".into(),
        scope: "phone:+31612345678".into(),
        content: Content {
            text: format!("hello from {id}"),
            ..Default::default()
        },
        created_at,
        send_at: None,
        expires_at: None,
        cancel_key: None,
        dedup: None,
        idempotency: None,
        callback_url: None,
        customer_id: None,
        category: None,
        plan: None,
        template: None,
        campaign: None,
        region: None,
        suppressed: None,
        deliveries: connectors
            .iter()
            .map(|c| NewDelivery {
                channel: Channel::Sms,
                connector: (*c).into(),
                address: "+31612345678".into(),
                content: None,
                cost: Some(0.07),
                escalate_after: None,
                ends_on_delivery: false,
            })
            .collect(),
    }
}

/// Every contract test, once per backend.
macro_rules! suite {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::contract::$test(super::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let name = concat!("store::postgres::", stringify!($test));
                    if let Some(stores) = super::postgres(name).await {
                        super::contract::$test(stores).await;
                    }
                }
            )*
        }
    };
}

suite!(
    a_lease_is_exclusive_until_it_runs_out,
    a_dead_address_is_suppressed_and_forgotten,
    due_work_counts_what_some_node_must_still_do,
    concurrent_leases_never_share_a_delivery,
    only_the_lease_holder_finishes_a_message,
    a_split_message_is_as_far_as_its_slowest_part,
    turns_are_taken_from_one_timeline,
    a_report_of_delivery_ends_a_failover_on_silence,
    connectors_health_is_shared_by_every_node,
    a_failed_delivery_falls_back_then_the_message_fails,
    a_message_past_its_ttl_expires_instead_of_being_leased,
    racing_idempotency_keys_store_one_message,
    a_page_of_messages_is_answered_in_order,
    dedup_keys_hold_until_they_expire,
    cancellation_stops_what_has_not_left,
    the_outbox_holds_every_status_change_until_posted,
    provider_reports_move_status_forward_only,
    profiles_index_addresses_and_erasure_cancels,
    suppressions_keep_a_persons_wish_over_a_finding,
    backlog_and_due_times_count_every_node,
    expired_keys_are_purged,
    what_a_message_said_is_read_back_as_stored,
    events_are_claimed_per_customer_once,
    the_first_event_since_a_trigger_is_found_whatever_its_arrival,
    experiment_arms_are_kept_once_and_counted,
    runs_are_written_by_revision_and_leased_when_due,
    a_reply_is_recorded_once_for_its_customers,
    segments_are_computed_from_traits_and_events,
    broadcasts_are_leased_resumed_and_cancelled,
    campaign_messages_are_counted_and_cancelled_together,
    refused_members_are_kept_once_and_counted,
    history_past_retention_is_purged_in_batches,
    abandoned_callbacks_past_retention_are_purged,
    superseded_journey_runs_past_retention_are_purged,
    a_backlog_of_history_is_purged_in_short_writes,
    conversions_are_credited_and_reported,
    report_days_are_kept_until_their_messages_change,
    a_customers_runs_are_read_a_page_at_a_time,
    shared_secrets_and_claimed_keys_are_one_for_every_node,
    start_lifts_only_what_stop_withdrew,
    a_consent_request_is_confirmed_once_within_its_window,
    feed_items_are_listed_marked_and_counted_per_customer,
    every_node_hears_of_a_feed_change,
    an_escalation_waits_and_a_read_ends_it,
    feed_items_go_with_message_retention,
    messages_are_found_newest_first_a_page_at_a_time,
    console_sessions_end_everywhere_and_expire,
    runs_are_counted_by_journey_and_status,
    a_messages_callbacks_are_read_back_in_order,
);

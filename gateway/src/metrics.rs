//! `GET /metrics`: what the gateway did, in Prometheus text format
//! (`prometheus-client`, the Prometheus project's own Rust client).
//!
//! Counters are bumped where things happen (accept, attempt, callback,
//! request); queue gauges are read from the store when scraped, so they
//! cost nothing between scrapes.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicI64, AtomicU64};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Accepted {
    channel: String,
    category: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Finished {
    channel: String,
    connector: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Attempt {
    connector: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Connector {
    connector: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Fault {
    connector: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Request {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Callback {
    outcome: String,
}

/// Every metric the gateway keeps; cheap to clone pieces out of, shared by
/// the API, the dispatcher and the callback sender.
pub struct Metrics {
    registry: Registry,
    accepted: Family<Accepted, Counter>,
    finished: Family<Finished, Counter>,
    attempts: Family<Attempt, Counter>,
    attempt_seconds: Family<Connector, Histogram>,
    faults: Family<Fault, Counter>,
    requests: Family<Request, Counter>,
    callbacks: Family<Callback, Counter>,
    backlog: Gauge<i64, AtomicI64>,
    oldest_due_seconds: Gauge<f64, AtomicU64>,
    outbox: Gauge<i64, AtomicI64>,
    kept_instances: Family<Connector, Gauge<i64, AtomicI64>>,
    circuits: Family<Connector, Gauge<i64, AtomicI64>>,
    feed_streams: Gauge<i64, AtomicI64>,
    feed_items: Family<FeedChannel, Counter>,
    feed_read_seconds: Histogram,
    /// Each connector's last attempts on this node, for the console.
    recent: std::sync::Mutex<std::collections::HashMap<String, Recent>>,
}

/// How many attempts per connector the console's figures are taken over.
const RECENT: usize = 1000;

/// One connector's last [`RECENT`] attempts: whether each sent, its error
/// code, and how long it took.
#[derive(Default)]
struct Recent {
    attempts: std::collections::VecDeque<(bool, Option<String>, f64)>,
}

/// What the console shows of a connector's recent attempts.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorHealth {
    pub connector: String,
    pub attempts: usize,
    /// Sent of all attempts, 0 to 1.
    pub success_rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Error codes, most frequent first.
    pub errors: Vec<(String, usize)>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FeedChannel {
    channel: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let accepted = Family::<Accepted, Counter>::default();
        registry.register(
            "crossgate_messages_accepted",
            "Messages accepted, by channel, category and the status they were stored with",
            accepted.clone(),
        );
        let finished = Family::<Finished, Counter>::default();
        registry.register(
            "crossgate_messages_finished",
            "Messages that left the queue: sent, failed or expired, by channel and connector",
            finished.clone(),
        );
        let attempts = Family::<Attempt, Counter>::default();
        registry.register(
            "crossgate_attempts",
            "Connector calls by outcome",
            attempts.clone(),
        );
        let attempt_seconds = Family::<Connector, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 15))
        });
        registry.register(
            "crossgate_attempt_duration_seconds",
            "Connector call latency, sandbox and provider round trip together",
            attempt_seconds.clone(),
        );
        let faults = Family::<Fault, Counter>::default();
        registry.register(
            "crossgate_plugin_faults",
            "Calls the sandbox stopped: trap, timeout, cpu_budget, memory_limit, egress_denied",
            faults.clone(),
        );
        let requests = Family::<Request, Counter>::default();
        registry.register(
            "crossgate_http_requests",
            "API requests by route and status",
            requests.clone(),
        );
        let callbacks = Family::<Callback, Counter>::default();
        registry.register(
            "crossgate_callbacks",
            "Status callback posts by outcome: delivered, retried, abandoned",
            callbacks.clone(),
        );
        let backlog = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "crossgate_queue_depth",
            "Deliveries due and not yet attempted, plus those in flight",
            backlog.clone(),
        );
        let oldest_due_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "crossgate_queue_oldest_due_age_seconds",
            "How long the oldest due delivery has been waiting",
            oldest_due_seconds.clone(),
        );
        let outbox = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "crossgate_callback_outbox_depth",
            "Status callbacks waiting to be posted",
            outbox.clone(),
        );
        let kept_instances = Family::<Connector, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "crossgate_plugin_instances_kept",
            "Sandbox instances kept between calls (connectors with calls_per_instance above 1)",
            kept_instances.clone(),
        );
        let circuits = Family::<Connector, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "crossgate_connector_circuit_state",
            "Each connector's circuit, as every node's attempts judge it: 0 closed, 1 half open (probing), 2 open (skipped)",
            circuits.clone(),
        );
        let feed_streams = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "crossgate_feed_streams",
            "Live feed streams (Server-Sent Events) open on this node",
            feed_streams.clone(),
        );
        let feed_items = Family::<FeedChannel, Counter>::default();
        registry.register(
            "crossgate_feed_items_delivered",
            "Items delivered into customers' feeds, by channel (inbox, in_app)",
            feed_items.clone(),
        );
        let feed_read_seconds = Histogram::new(exponential_buckets(1.0, 4.0, 12));
        registry.register(
            "crossgate_feed_read_latency_seconds",
            "From an item's delivery to the customer reading it",
            feed_read_seconds.clone(),
        );
        Metrics {
            recent: std::sync::Mutex::default(),
            registry,
            feed_streams,
            feed_items,
            feed_read_seconds,
            accepted,
            finished,
            attempts,
            attempt_seconds,
            faults,
            requests,
            callbacks,
            backlog,
            oldest_due_seconds,
            outbox,
            kept_instances,
            circuits,
        }
    }

    pub fn accepted(&self, channel: &str, category: &str, status: &str) {
        self.accepted
            .get_or_create(&Accepted {
                channel: channel.to_owned(),
                category: category.to_owned(),
                status: status.to_owned(),
            })
            .inc();
    }

    pub fn finished(&self, channel: &str, connector: &str, status: &str) {
        self.finished
            .get_or_create(&Finished {
                channel: channel.to_owned(),
                connector: connector.to_owned(),
                status: status.to_owned(),
            })
            .inc();
    }

    /// One connector call: its outcome, its latency, and the sandbox fault
    /// that ended it, if one did (read from the failure code).
    pub fn attempt(&self, connector: &str, outcome: &str, code: Option<&str>, seconds: f64) {
        {
            let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            // The connector's name is allocated once, not per attempt.
            if !recent.contains_key(connector) {
                recent.insert(connector.to_owned(), Recent::default());
            }
            let Some(Recent { attempts: ring }) = recent.get_mut(connector) else {
                return;
            };
            if ring.len() == RECENT {
                ring.pop_front();
            }
            ring.push_back((outcome == "sent", code.map(str::to_owned), seconds * 1000.0));
        }
        self.attempts
            .get_or_create(&Attempt {
                connector: connector.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        self.attempt_seconds
            .get_or_create(&Connector {
                connector: connector.to_owned(),
            })
            .observe(seconds);
        let kind = match code {
            Some("plugin_trap") => "trap",
            Some("plugin_timeout") => "timeout",
            Some("plugin_cpu_budget") => "cpu_budget",
            Some("plugin_memory_limit") => "memory_limit",
            Some("egress_denied") => "egress_denied",
            _ => return,
        };
        self.faults
            .get_or_create(&Fault {
                connector: connector.to_owned(),
                kind: kind.to_owned(),
            })
            .inc();
    }

    pub fn request(&self, route: &str, status: u16) {
        self.requests
            .get_or_create(&Request {
                route: route.to_owned(),
                status,
            })
            .inc();
    }

    /// Each connector's last attempts on this node (up to 1000): success
    /// rate, latency p50/p99 and error codes; by connector name.
    pub fn connector_health(&self) -> Vec<ConnectorHealth> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<ConnectorHealth> = recent
            .iter()
            .map(|(connector, r)| {
                let mut ms: Vec<f64> = r.attempts.iter().map(|(_, _, ms)| *ms).collect();
                ms.sort_by(f64::total_cmp);
                let at = |p: f64| {
                    ms.get(((ms.len().saturating_sub(1)) as f64 * p).round() as usize)
                        .copied()
                        .unwrap_or(0.0)
                };
                let mut errors: std::collections::BTreeMap<String, usize> = Default::default();
                for code in r.attempts.iter().filter_map(|(_, code, _)| code.clone()) {
                    *errors.entry(code).or_default() += 1;
                }
                let mut errors: Vec<(String, usize)> = errors.into_iter().collect();
                errors.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
                let sent = r.attempts.iter().filter(|(ok, _, _)| *ok).count();
                ConnectorHealth {
                    connector: connector.clone(),
                    attempts: r.attempts.len(),
                    success_rate: sent as f64 / r.attempts.len().max(1) as f64,
                    p50_ms: at(0.5),
                    p99_ms: at(0.99),
                    errors,
                }
            })
            .collect();
        out.sort_by(|a, b| a.connector.cmp(&b.connector));
        out
    }

    /// A live feed stream opened (`1`) or closed (`-1`).
    pub fn feed_stream(&self, change: i64) {
        self.feed_streams.inc_by(change);
    }

    pub fn feed_item(&self, channel: &str) {
        self.feed_items
            .get_or_create(&FeedChannel {
                channel: channel.to_owned(),
            })
            .inc();
    }

    pub fn feed_read(&self, seconds: f64) {
        self.feed_read_seconds.observe(seconds);
    }

    pub fn callback(&self, outcome: &str) {
        self.callbacks
            .get_or_create(&Callback {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// The text a scrape gets, with the gauges read for it: the queue as the
    /// store reports it now, and the instances each connector keeps (cleared
    /// first: a reload may have removed a connector).
    pub fn render(
        &self,
        backlog: u64,
        oldest_due_seconds: Option<f64>,
        outbox: u64,
        kept_instances: &[(&str, usize)],
        circuits: &[(String, i64)],
    ) -> String {
        self.backlog.set(i64::try_from(backlog).unwrap_or(i64::MAX));
        self.oldest_due_seconds
            .set(oldest_due_seconds.unwrap_or(0.0));
        self.outbox.set(i64::try_from(outbox).unwrap_or(i64::MAX));
        self.kept_instances.clear();
        for (connector, kept) in kept_instances {
            self.kept_instances
                .get_or_create(&Connector {
                    connector: (*connector).to_owned(),
                })
                .set(i64::try_from(*kept).unwrap_or(i64::MAX));
        }
        self.circuits.clear();
        for (connector, state) in circuits {
            self.circuits
                .get_or_create(&Connector {
                    connector: connector.clone(),
                })
                .set(*state);
        }
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!("cannot encode metrics: {e}");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::Metrics;

    #[test]
    fn a_connectors_health_is_taken_over_its_last_attempts() {
        let metrics = Metrics::new();
        for i in 0..1_200 {
            let failed = i % 10 == 0;
            metrics.attempt(
                "twilio",
                if failed { "retryable" } else { "sent" },
                failed.then_some("http_503"),
                f64::from(i % 100 + 1) / 1000.0,
            );
        }
        let health = metrics.connector_health();
        assert_eq!(health.len(), 1);
        let twilio = &health[0];
        assert_eq!(twilio.attempts, 1000, "the last 1000 only");
        assert!((twilio.success_rate - 0.9).abs() < 1e-9, "{twilio:?}");
        assert_eq!(twilio.errors, [("http_503".to_owned(), 100)]);
        assert!(twilio.p50_ms >= 45.0 && twilio.p50_ms <= 55.0, "{twilio:?}");
        assert!(twilio.p99_ms >= 98.0, "{twilio:?}");
    }
}

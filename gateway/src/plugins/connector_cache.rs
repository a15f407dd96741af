//! The per-connector cache behind the contract's `cache-get`/`cache-set`.
//!
//! Every plugin call runs in a fresh sandbox, so a connector that exchanges
//! credentials for an access token (FCM) would otherwise fetch one per
//! message. The cache is in memory and bounded; a restart only costs one
//! token request per connector.
//!
//! A miss hands the caller a *claim* to fill the key. Other calls asking for
//! the same key meanwhile wait for the fill (up to [`FILL_WAIT`]) instead of
//! all missing at once, so a burst on a cold gateway makes one token request,
//! not one per worker. A claim ends when the value is set or when the call
//! that holds it ends, whichever comes first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The longest a call waits for another call to fill a key.
pub const FILL_WAIT: Duration = Duration::from_secs(2);
/// Entries per connector; expired entries make room first.
const MAX_ENTRIES: usize = 1024;
pub const MAX_KEY_BYTES: usize = 256;
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// The longest a value may live, whatever the connector asks for.
const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);

enum Slot {
    Ready {
        value: Arc<[u8]>,
        expires: Instant,
    },
    Filling {
        claim: u64,
        until: Instant,
        filled: Arc<Notify>,
    },
}

#[derive(Default)]
pub struct ConnectorCache {
    slots: Mutex<HashMap<String, Slot>>,
    next_claim: AtomicU64,
}

/// A key one call has promised to fill.
pub struct Claim {
    key: String,
    id: u64,
}

/// What `get` found.
pub enum Lookup {
    Hit(Arc<[u8]>),
    /// Nobody has the value: the caller should fetch and `set` it.
    Miss(Claim),
}

/// Why a value was not stored.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    KeyTooLong,
    ValueTooLarge,
    Full,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::KeyTooLong => write!(f, "key longer than {MAX_KEY_BYTES} bytes"),
            Refused::ValueTooLarge => write!(f, "value larger than {MAX_VALUE_BYTES} bytes"),
            Refused::Full => write!(f, "cache full ({MAX_ENTRIES} live entries)"),
        }
    }
}

impl ConnectorCache {
    /// The live value of `key`, waiting for a fill in progress elsewhere.
    pub async fn get(&self, key: &str) -> Lookup {
        loop {
            let notify: Arc<Notify>;
            let until: Instant;
            let notified;
            {
                let mut slots = self.slots.lock().expect("cache lock");
                let now = Instant::now();
                match slots.get(key) {
                    Some(Slot::Ready { value, expires }) if *expires > now => {
                        return Lookup::Hit(value.clone());
                    }
                    Some(Slot::Filling {
                        until: fill_until,
                        filled,
                        ..
                    }) if *fill_until > now => {
                        notify = filled.clone();
                        until = *fill_until;
                        // Created under the lock: a `set` after it wakes us.
                        notified = notify.notified();
                    }
                    _ => {
                        let id = self.next_claim.fetch_add(1, Ordering::Relaxed);
                        slots.insert(
                            key.to_owned(),
                            Slot::Filling {
                                claim: id,
                                until: now + FILL_WAIT,
                                filled: Arc::new(Notify::new()),
                            },
                        );
                        return Lookup::Miss(Claim {
                            key: key.to_owned(),
                            id,
                        });
                    }
                }
            }
            // Re-checked on wake-up: the filler may have given up instead.
            let _ = tokio::time::timeout_at(until.into(), notified).await;
        }
    }

    /// The live value of `key`, without claiming or waiting.
    pub fn peek(&self, key: &str) -> Option<Arc<[u8]>> {
        let slots = self.slots.lock().expect("cache lock");
        match slots.get(key) {
            Some(Slot::Ready { value, expires }) if *expires > Instant::now() => {
                Some(value.clone())
            }
            _ => None,
        }
    }

    pub fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), Refused> {
        if key.len() > MAX_KEY_BYTES {
            return Err(Refused::KeyTooLong);
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(Refused::ValueTooLarge);
        }
        let now = Instant::now();
        let mut slots = self.slots.lock().expect("cache lock");
        if slots.len() >= MAX_ENTRIES && !slots.contains_key(key) {
            slots.retain(|_, slot| match slot {
                Slot::Ready { expires, .. } => *expires > now,
                Slot::Filling { until, .. } => *until > now,
            });
            if slots.len() >= MAX_ENTRIES {
                return Err(Refused::Full);
            }
        }
        let ready = Slot::Ready {
            value: value.into(),
            expires: now + ttl.min(MAX_TTL),
        };
        if let Some(Slot::Filling { filled, .. }) = slots.insert(key.to_owned(), ready) {
            filled.notify_waiters();
        }
        Ok(())
    }

    /// Give up a claim that was not filled, waking the waiters so one of
    /// them can try.
    pub fn release(&self, claim: &Claim) {
        let mut slots = self.slots.lock().expect("cache lock");
        if let Some(Slot::Filling {
            claim: id, filled, ..
        }) = slots.get(&claim.key)
            && *id == claim.id
        {
            filled.notify_waiters();
            slots.remove(&claim.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn miss_then_hit_until_expiry() {
        let cache = ConnectorCache::default();
        assert!(matches!(cache.get("token").await, Lookup::Miss(_)));
        cache
            .set("token", b"abc".to_vec(), Duration::from_millis(50))
            .unwrap();
        match cache.get("token").await {
            Lookup::Hit(v) => assert_eq!(&*v, b"abc"),
            Lookup::Miss(_) => panic!("expected a hit"),
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(matches!(cache.get("token").await, Lookup::Miss(_)));
    }

    #[tokio::test]
    async fn concurrent_callers_wait_for_the_fill() {
        let cache = Arc::new(ConnectorCache::default());
        let Lookup::Miss(_claim) = cache.get("token").await else {
            panic!("first get must miss");
        };
        let waiter = tokio::spawn({
            let cache = cache.clone();
            async move {
                match cache.get("token").await {
                    Lookup::Hit(v) => v.to_vec(),
                    Lookup::Miss(_) => Vec::new(),
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        cache
            .set("token", b"t1".to_vec(), Duration::from_secs(60))
            .unwrap();
        assert_eq!(waiter.await.unwrap(), b"t1");
    }

    #[tokio::test]
    async fn a_released_claim_passes_to_a_waiter() {
        let cache = Arc::new(ConnectorCache::default());
        let Lookup::Miss(claim) = cache.get("token").await else {
            panic!("first get must miss");
        };
        let waiter = tokio::spawn({
            let cache = cache.clone();
            async move { matches!(cache.get("token").await, Lookup::Miss(_)) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        cache.release(&claim);
        assert!(waiter.await.unwrap(), "the waiter becomes the filler");
    }

    #[tokio::test]
    async fn peek_neither_claims_nor_waits() {
        let cache = ConnectorCache::default();
        assert!(cache.peek("token").is_none());
        let Lookup::Miss(_claim) = cache.get("token").await else {
            panic!("peek must not have claimed the key");
        };
        assert!(
            cache.peek("token").is_none(),
            "a fill in progress is not a value"
        );
        cache
            .set("token", b"t".to_vec(), Duration::from_secs(60))
            .unwrap();
        assert_eq!(cache.peek("token").as_deref(), Some(&b"t"[..]));
    }

    #[test]
    fn oversized_entries_are_refused() {
        let cache = ConnectorCache::default();
        let long_key = "k".repeat(MAX_KEY_BYTES + 1);
        assert_eq!(
            cache.set(&long_key, Vec::new(), Duration::from_secs(1)),
            Err(Refused::KeyTooLong)
        );
        assert_eq!(
            cache.set("k", vec![0; MAX_VALUE_BYTES + 1], Duration::from_secs(1)),
            Err(Refused::ValueTooLarge)
        );
    }
}

//! What happens after an attempt: a pure decision, so it is tested without
//! a clock, a store or a plugin. The one place that decides retry, wait and
//! give-up after an attempt, including that a retry would come after the
//! message's ttl (it then expires). A due delivery whose ttl ran out before
//! any attempt is expired by the store as it leases (`expires_at <= now`):
//! no attempt, nothing to decide here.

use crate::config::DispatchConfig;
use crate::message::MessageStatus;
use crate::plugins::{Failure, Receipt};
use crate::store::Next;
use rand::Rng;
use std::time::Duration;

/// How far one delivery may be retried.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Attempts on this connector, the failed one included.
    pub max_attempts: u32,
    /// No retry is scheduled after this time (ms since the epoch).
    pub deadline: i64,
    /// The message's ttl runs out then: a retry that would come later
    /// gives up now, and the message expires unless another delivery takes it.
    pub expires_at: Option<i64>,
    /// The delivery's escalation: once sent, the next delivery goes this
    /// long after unless the message is read first.
    pub escalate_after: Option<i64>,
}

/// The consequence of one attempt on a delivery that had `attempts_before` attempts.
pub fn decide(
    result: &Result<Receipt, Failure>,
    connector: &str,
    attempts_before: u32,
    budget: Budget,
    finished_at: i64,
    config: &DispatchConfig,
    jitter: f64,
) -> Next {
    let failure = match result {
        Ok(receipt) => {
            return Next::Sent {
                provider_message_id: receipt.provider_message_id.clone(),
                parts: receipt.parts.clone(),
                delivered: receipt.delivered,
                escalate_at: budget
                    .escalate_after
                    .map(|after| finished_at.saturating_add(after)),
            };
        }
        Err(failure) => failure,
    };
    let attempts = attempts_before + 1;
    let fail = |reason: String| Next::GiveUp {
        reason,
        ending: MessageStatus::Failed,
    };
    if !failure.retryable {
        return fail(format!(
            "{connector}: {}: {}",
            failure.code, failure.message
        ));
    }
    if attempts >= budget.max_attempts {
        return fail(format!(
            "{connector}: gave up after {attempts} attempts: {}: {}",
            failure.code, failure.message
        ));
    }
    let wait = backoff(attempts, failure.retry_after, config, jitter);
    let at = finished_at.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
    if budget.expires_at.is_some_and(|expires| at >= expires) {
        return Next::GiveUp {
            reason: format!(
                "{connector}: the ttl runs out before the next try, after {attempts} attempts: {}: {}",
                failure.code, failure.message
            ),
            ending: MessageStatus::Expired,
        };
    }
    if at > budget.deadline {
        return fail(format!(
            "{connector}: retry window of {} s exhausted after {attempts} attempts: {}: {}",
            config.retry_window_ms / 1000,
            failure.code,
            failure.message
        ));
    }
    Next::RetryAt(at)
}

/// Exponential backoff with "equal jitter" (half fixed, half random, so
/// retries spread out but never come back immediately), raised to the
/// provider's `Retry-After` and capped by `backoff_max_ms`.
///
/// `jitter` is a number in `[0, 1)`.
pub fn backoff(
    attempts: u32,
    retry_after: Option<Duration>,
    config: &DispatchConfig,
    jitter: f64,
) -> Duration {
    let full = exponential_ms(config.backoff_base_ms, config.backoff_max_ms, attempts);
    let jittered = full / 2 + ((full / 2) as f64 * jitter.clamp(0.0, 1.0)) as u64;
    let floor = retry_after.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Duration::from_millis(jittered.max(floor).min(config.backoff_max_ms))
}

/// `base * 2^(attempts-1)`, capped at `max`.
pub fn exponential_ms(base_ms: u64, max_ms: u64, attempts: u32) -> u64 {
    let exp = attempts.saturating_sub(1).min(30);
    base_ms.saturating_mul(1u64 << exp).min(max_ms)
}

/// A jitter sample for [`decide`].
pub fn jitter() -> f64 {
    rand::rng().random::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> DispatchConfig {
        DispatchConfig {
            max_attempts: 3,
            backoff_base_ms: 1000,
            backoff_max_ms: 10_000,
            ..DispatchConfig::default()
        }
    }

    const BUDGET: Budget = Budget {
        max_attempts: 3,
        deadline: i64::MAX,
        expires_at: None,
        escalate_after: None,
    };

    fn failure(retryable: bool, retry_after: Option<u64>) -> Result<Receipt, Failure> {
        Err(Failure {
            retryable,
            retry_after: retry_after.map(Duration::from_secs),
            code: "20429".into(),
            message: "Too Many Requests".into(),
        })
    }

    #[test]
    fn success_is_sent() {
        let ok = Ok(Receipt::sent("SM1".into()));
        assert_eq!(
            decide(&ok, "twilio", 0, BUDGET, 0, &config(), 0.5),
            Next::Sent {
                provider_message_id: "SM1".into(),
                parts: Vec::new(),
                delivered: false,
                escalate_at: None,
            }
        );
        let escalating = Budget {
            escalate_after: Some(7_200_000),
            ..BUDGET
        };
        let inbox = Ok(Receipt {
            provider_message_id: "msg_1".into(),
            parts: Vec::new(),
            delivered: true,
        });
        assert_eq!(
            decide(&inbox, "inbox", 0, escalating, 1_000, &config(), 0.5),
            Next::Sent {
                provider_message_id: "msg_1".into(),
                parts: Vec::new(),
                delivered: true,
                escalate_at: Some(7_201_000),
            },
            "the next channel waits its time after this one went"
        );
    }

    #[test]
    fn permanent_failure_gives_up_at_once() {
        let next = decide(
            &failure(false, None),
            "twilio",
            0,
            BUDGET,
            0,
            &config(),
            0.5,
        );
        assert_eq!(
            next,
            Next::GiveUp {
                reason: "twilio: 20429: Too Many Requests".into(),
                ending: MessageStatus::Failed,
            }
        );
    }

    #[test]
    fn retryable_failure_backs_off_exponentially_with_jitter() {
        assert_eq!(
            decide(&failure(true, None), "t", 0, BUDGET, 0, &config(), 0.0),
            Next::RetryAt(500)
        );
        assert_eq!(
            decide(&failure(true, None), "t", 0, BUDGET, 0, &config(), 0.999),
            Next::RetryAt(999)
        );
        assert_eq!(
            decide(&failure(true, None), "t", 1, BUDGET, 0, &config(), 0.0),
            Next::RetryAt(1000)
        );
    }

    #[test]
    fn retry_after_is_a_floor_within_the_cap() {
        assert_eq!(
            decide(&failure(true, Some(3)), "t", 0, BUDGET, 100, &config(), 0.0),
            Next::RetryAt(3100)
        );
        assert_eq!(
            decide(&failure(true, Some(60)), "t", 0, BUDGET, 0, &config(), 0.0),
            Next::RetryAt(10_000)
        );
    }

    #[test]
    fn attempts_are_bounded() {
        match decide(&failure(true, None), "twilio", 2, BUDGET, 0, &config(), 0.5) {
            Next::GiveUp { reason, .. } => {
                assert!(reason.contains("gave up after 3 attempts"), "{reason}")
            }
            other => panic!("expected give-up, got {other:?}"),
        }
    }

    #[test]
    fn no_retry_past_the_window() {
        let budget = Budget {
            max_attempts: 10,
            deadline: 1_000,
            expires_at: None,
            escalate_after: None,
        };
        match decide(
            &failure(true, Some(5)),
            "twilio",
            0,
            budget,
            0,
            &config(),
            0.5,
        ) {
            Next::GiveUp { reason, .. } => assert!(reason.contains("retry window"), "{reason}"),
            other => panic!("expected give-up, got {other:?}"),
        }
    }

    #[test]
    fn a_retry_past_the_ttl_expires_the_message_now() {
        let budget = Budget {
            expires_at: Some(700),
            ..BUDGET
        };
        assert_eq!(
            decide(&failure(true, None), "t", 0, budget, 0, &config(), 0.0),
            Next::RetryAt(500),
            "still in time"
        );
        match decide(&failure(true, None), "t", 1, budget, 0, &config(), 0.0) {
            Next::GiveUp { reason, ending } => {
                assert_eq!(ending, MessageStatus::Expired);
                assert!(reason.contains("ttl"), "{reason}");
            }
            other => panic!("expected give-up, got {other:?}"),
        }
    }

    #[test]
    fn backoff_never_exceeds_the_cap() {
        for attempts in 1..40 {
            assert!(backoff(attempts, None, &config(), 0.999) <= Duration::from_millis(10_000));
        }
    }
}

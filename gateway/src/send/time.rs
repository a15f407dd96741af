//! `send_at` and `ttl`: when a message may go, and until when.

use super::SendError;
use super::request::Ttl;

/// The longest a message may be scheduled ahead.
const MAX_SCHEDULE_AHEAD_MS: i64 = 366 * 24 * 3600 * 1000;

/// `send_at` as ms since the epoch: RFC 3339, at most a year ahead.
pub fn send_at(text: &str, now: i64) -> Result<i64, SendError> {
    let at: jiff::Timestamp = text.parse().map_err(|e| {
        SendError::invalid(
            "invalid_send_at",
            "send_at",
            format!("{text:?} is not an RFC 3339 time: {e}"),
        )
    })?;
    let at = at.as_millisecond();
    if at > now.saturating_add(MAX_SCHEDULE_AHEAD_MS) {
        return Err(SendError::invalid(
            "invalid_send_at",
            "send_at",
            "send_at is more than 366 days ahead",
        ));
    }
    Ok(at)
}

pub fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

pub fn ttl_ms(ttl: &Ttl) -> Result<i64, SendError> {
    let invalid = |why: String| SendError::invalid("invalid_ttl", "ttl", why);
    let ms = match ttl {
        Ttl::Seconds(secs) => secs_to_ms(*secs),
        Ttl::Text(text) => {
            let duration: jiff::SignedDuration = text.parse().map_err(|e| {
                invalid(format!(
                    "{text:?} is not a duration like \"90s\" or \"2h\": {e}"
                ))
            })?;
            i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
        }
    };
    if ms <= 0 {
        return Err(invalid("ttl must be positive".into()));
    }
    Ok(ms)
}

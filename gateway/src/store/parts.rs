//! A message its provider split into parts (a long SMS sent as several),
//! each part with its own provider id and its own delivery report. The
//! message is as far as all its parts are: delivered once every part is,
//! read once every part is, failed as soon as one part fails (the customer
//! did not get the whole text). Both stores keep the parts in
//! `provider_parts` and apply these rules.

use super::ProviderStatus;

/// A report on one of a message's parts, against every part's
/// `(provider id, state)` as stored: whether the part moves, and the report
/// the whole message then gets (`None` while some part is on its way).
pub fn report(parts: &[(String, String)], r: &ProviderStatus) -> (bool, Option<ProviderStatus>) {
    let moves = parts
        .iter()
        .any(|(id, state)| *id == r.provider_message_id && advances(state, &r.state));
    let states = parts.iter().map(|(id, state)| {
        if moves && *id == r.provider_message_id {
            r.state.as_str()
        } else {
            state.as_str()
        }
    });
    let whole = self::whole(states).map(|state| ProviderStatus {
        state: state.to_owned(),
        ..r.clone()
    });
    (moves, whole)
}

/// How far a part got; a report never moves a part back.
fn rank(state: &str) -> Option<u8> {
    match state {
        "sent" => Some(0),
        "delivered" => Some(1),
        "read" => Some(2),
        "failed" => Some(3),
        _ => None,
    }
}

/// Whether a report of `to` moves a part now at `from`.
pub fn advances(from: &str, to: &str) -> bool {
    matches!((rank(from), rank(to)), (Some(a), Some(b)) if b > a)
}

/// The report the whole message gets from its parts' states: `None` while
/// some part is still on its way.
pub fn whole<'a>(states: impl IntoIterator<Item = &'a str>) -> Option<&'static str> {
    let mut least = None::<u8>;
    for state in states {
        match rank(state) {
            Some(3) => return Some("failed"),
            Some(r) => least = Some(least.map_or(r, |l| l.min(r))),
            None => return None,
        }
    }
    match least? {
        1 => Some("delivered"),
        2 => Some("read"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_as_far_as_its_slowest_part_and_failed_by_any() {
        assert_eq!(whole(["delivered", "sent"]), None);
        assert_eq!(whole(["delivered", "delivered"]), Some("delivered"));
        assert_eq!(whole(["read", "delivered"]), Some("delivered"));
        assert_eq!(whole(["read", "read"]), Some("read"));
        assert_eq!(whole(["sent", "failed"]), Some("failed"));
        assert_eq!(whole([]), None);
        assert!(advances("sent", "delivered"));
        assert!(!advances("delivered", "sent"));
        assert!(!advances("delivered", "unknown"));
    }
}

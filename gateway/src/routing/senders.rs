//! Sender pools: the number, short code, alphanumeric sender ID or WhatsApp
//! number a connector sends from, per destination. A connector's
//! `[connectors.senders]` lists them by the recipient number's country
//! (`NL`), its region (`EU`) or `default`, tried in that order.
//!
//! The choice is sticky per recipient without storing anything: each
//! sender of the pool is scored by a hash of (recipient, sender) and the
//! highest wins (rendezvous hashing). The same customer keeps hearing from
//! the same number, and adding a sender to a pool of n moves only about
//! 1/(n+1) of the recipients. The planner shows the choice and the
//! dispatcher makes it again from the same configuration and address, so
//! nothing about it is stored with the delivery.

use super::policy::ConnectorRoute;
use crate::phone::phone_country;
use serde::Serialize;
use std::collections::BTreeMap;

/// A connector's sender for one recipient, and the pool it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chosen {
    pub connector: String,
    pub sender: String,
    /// The pool's key: a country, a region or `default`.
    pub pool: String,
}

/// Countries whose carriers refuse alphanumeric sender IDs: a pool for
/// them (or a region holding them) must list numbers or short codes.
pub const NUMBERS_ONLY: &[&str] = &["US", "CA", "CN", "BR"];

/// The sender `route` uses for `address` (E.164), if its pools name one.
pub fn choose(
    route: &ConnectorRoute,
    regions: &BTreeMap<String, String>,
    address: &str,
) -> Option<Chosen> {
    if route.senders.is_empty() {
        return None;
    }
    let country = phone_country(address);
    let region = country.as_ref().and_then(|c| regions.get(c));
    let (pool, senders) = [
        country.as_deref(),
        region.map(String::as_str),
        Some("default"),
    ]
    .into_iter()
    .flatten()
    .find_map(|key| route.senders.get_key_value(key))?;
    let sender = senders.iter().max_by_key(|sender| score(address, sender))?;
    Some(Chosen {
        connector: route.name.clone(),
        sender: sender.clone(),
        pool: pool.clone(),
    })
}

/// FNV-1a over the recipient and the sender, then MurmurHash3's final
/// mix (FNV alone leaves similar inputs with similar high bits, and the
/// highest score would follow them): stable across builds and platforms
/// (the standard library's hasher promises neither), which stickiness
/// across restarts and nodes needs.
fn score(address: &str, sender: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in address.bytes().chain([0]).chain(sender.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Channel;

    fn route(pools: &[(&str, &[&str])]) -> ConnectorRoute {
        ConnectorRoute {
            name: "vonage".into(),
            channel: Channel::Sms,
            cost: BTreeMap::new(),
            push_format: Default::default(),
            regions: None,
            senders: pools
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
            expect_report_within: None,
        }
    }

    #[test]
    fn the_country_then_the_region_then_default() {
        let regions = BTreeMap::from([
            ("NL".to_owned(), "EU".to_owned()),
            ("DE".to_owned(), "EU".to_owned()),
        ]);
        let r = route(&[
            ("NL", &["+3197010520001"]),
            ("EU", &["Crossgate"]),
            ("default", &["+15005550006"]),
        ]);
        let pick = |to| choose(&r, &regions, to).map(|c| (c.sender, c.pool));
        assert_eq!(
            pick("+31612345678"),
            Some(("+3197010520001".into(), "NL".into()))
        );
        assert_eq!(
            pick("+4915112345678"),
            Some(("Crossgate".into(), "EU".into()))
        );
        assert_eq!(
            pick("+14155550123"),
            Some(("+15005550006".into(), "default".into()))
        );
        assert_eq!(
            choose(&route(&[("NL", &["x"])]), &regions, "+14155550123"),
            None
        );
    }

    #[test]
    fn a_recipient_keeps_their_sender_and_a_new_one_moves_few() {
        let regions = BTreeMap::new();
        let three: Vec<String> = (1..=3).map(|i| format!("+3197010520{i:03}")).collect();
        let four: Vec<String> = (1..=4).map(|i| format!("+3197010520{i:03}")).collect();
        let pool = |senders: &[String]| {
            let mut r = route(&[]);
            r.senders.insert("default".into(), senders.to_vec());
            r
        };
        let (before, after) = (pool(&three), pool(&four));
        let mut moved = 0;
        let mut used = std::collections::BTreeSet::new();
        for i in 0..1_000 {
            let to = format!("+316{i:08}");
            let a = choose(&before, &regions, &to).unwrap().sender;
            assert_eq!(choose(&before, &regions, &to).unwrap().sender, a, "sticky");
            used.insert(a.clone());
            if choose(&after, &regions, &to).unwrap().sender != a {
                moved += 1;
            }
        }
        assert_eq!(used.len(), 3, "every sender is used");
        // About a quarter move to the new sender; none move between old ones.
        assert!((150..350).contains(&moved), "{moved} of 1000 moved");
    }
}

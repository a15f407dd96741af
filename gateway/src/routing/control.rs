//! The global control group: a share of customers, dealt by a hash of a
//! seed and their id, who never get the categories it names (marketing),
//! whatever sends them (the API, a journey, a broadcast). Comparing what
//! they do with what everyone else does measures what all of that
//! messaging adds. Experiments on journey steps deal their arms with the
//! same hash ([`bucket`]).

use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// Shares are counted in basis points: a bucket is one of these.
pub const BUCKETS: u64 = 10_000;

/// Where `customer_id` falls, `0..BUCKETS`, for `seed`: the same on every
/// node and in every run, with nothing stored.
pub fn bucket(seed: &str, customer_id: &str) -> u64 {
    let hash = Sha256::new()
        .chain_update(seed.as_bytes())
        .chain_update([0])
        .chain_update(customer_id.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    u64::from_be_bytes(first) % BUCKETS
}

/// Shares as basis points of 10,000: `"12.5%"` is 1,250.
pub mod optional_share {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn parse(text: &str) -> Result<u32, String> {
        let number = text
            .strip_suffix('%')
            .ok_or_else(|| format!("{text:?}: a share is a percentage like \"10%\""))?;
        let percent: f64 = number
            .trim()
            .parse()
            .map_err(|_| format!("{text:?}: a share is a percentage like \"10%\""))?;
        if !(0.0..=100.0).contains(&percent) {
            return Err(format!("{text:?}: a share is 0-100%"));
        }
        Ok((percent * 100.0).round() as u32)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map(Some).map_err(serde::de::Error::custom)
    }

    pub fn serialize<S: Serializer>(share: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
        match share {
            Some(bp) => s.serialize_str(&format!("{}%", f64::from(*bp) / 100.0)),
            None => s.serialize_none(),
        }
    }
}

/// `[experiments]`: `control_group = "5%"` of customers never get
/// `categories` (default `["marketing"]`); `seed` deals them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentsConfig {
    #[serde(default, with = "optional_share")]
    pub control_group: Option<u32>,
    #[serde(default = "default_categories")]
    pub categories: Vec<String>,
    #[serde(default = "default_seed")]
    pub seed: String,
}

fn default_categories() -> Vec<String> {
    vec!["marketing".into()]
}

fn default_seed() -> String {
    "control".into()
}

impl Default for ExperimentsConfig {
    fn default() -> Self {
        ExperimentsConfig {
            control_group: None,
            categories: default_categories(),
            seed: default_seed(),
        }
    }
}

/// The group as the planner asks it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ControlGroup {
    share: u32,
    seed: String,
    categories: BTreeSet<String>,
}

impl ControlGroup {
    pub fn new(config: &ExperimentsConfig) -> Self {
        ControlGroup {
            share: config.control_group.unwrap_or(0),
            seed: config.seed.clone(),
            categories: config.categories.iter().cloned().collect(),
        }
    }

    /// Whether `customer_id` is in the group (whatever the category).
    pub fn holds(&self, customer_id: &str) -> bool {
        self.share > 0 && bucket(&self.seed, customer_id) < u64::from(self.share)
    }

    /// Why `customer_id` gets nothing of `category`, when they are in the
    /// group and it is one the group never gets.
    pub fn withholds(&self, customer_id: &str, category: &str) -> Option<String> {
        (self.categories.contains(category) && self.holds(customer_id)).then(|| {
            format!(
                "in the global control group ({}% of customers), which gets no {category}",
                f64::from(self.share) / 100.0
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_of_customers_gets_no_marketing_and_only_marketing_is_withheld() {
        let group = ControlGroup::new(&ExperimentsConfig {
            control_group: Some(1_000),
            ..ExperimentsConfig::default()
        });
        let held: Vec<String> = (0..2_000)
            .map(|i| format!("c{i}"))
            .filter(|c| group.holds(c))
            .collect();
        // 10% of 2,000 is 200, sd 13.4: within four.
        assert!((146..=254).contains(&held.len()), "{}", held.len());
        assert!(group.withholds(&held[0], "marketing").is_some());
        assert_eq!(group.withholds(&held[0], "transactional"), None);
        let off = ControlGroup::new(&ExperimentsConfig::default());
        assert!(!off.holds(&held[0]));
    }
}

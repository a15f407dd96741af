//! Experiments on a journey's `send` step: which arm a customer is in (a
//! variant by weight, or the holdout that gets nothing), and what the
//! report says of each arm. Both are pure: the runner asks [`assign`] as it
//! makes the step, the store counts each arm, and [`report`] does the
//! arithmetic.
//!
//! Assignment hashes the experiment's seed with the customer's id
//! (SHA-256, [`crate::routing::control::bucket`]), so a customer keeps their arm across runs, nodes and
//! restarts, and nothing about it needs to be stored to be repeated.

use super::engine::SendOutcome;
use crate::config::journeys::{SendStep, Variant};
use crate::routing::control::{BUCKETS, bucket};
use crate::store::journeys::ArmTotals;
use serde::Serialize;

pub use crate::config::journeys::HOLDOUT;
/// The arm of a step with a holdout and no variants: the step as written.
pub const AS_WRITTEN: &str = "step";

/// What a customer gets from an experiment's step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arm<'a> {
    Holdout,
    /// The step as written, changed by the variant if there is one.
    Send(Option<&'a Variant>),
}

impl Arm<'_> {
    pub fn name(&self) -> &str {
        match self {
            Arm::Holdout => HOLDOUT,
            Arm::Send(Some(variant)) => &variant.name,
            Arm::Send(None) => AS_WRITTEN,
        }
    }
}

/// The arm of `customer_id` in the experiment of `journey`'s step
/// `step_id`, hashed with the step's `seed` or, when it names none, with
/// `journey.step_id`; `None` when the step is no experiment. The runner and
/// the simulation both deal by this, so a simulation shows the arm the
/// customer will get.
pub fn deal<'a>(
    journey: &str,
    step_id: &str,
    customer_id: &str,
    step: &'a SendStep,
) -> Option<Arm<'a>> {
    // Most send steps are no experiment: no seed to write for them.
    if !step.is_experiment() {
        return None;
    }
    match &step.seed {
        Some(seed) => assign(seed, customer_id, step),
        None => assign(&format!("{journey}.{step_id}"), customer_id, step),
    }
}

/// What the holdout's step is recorded as instead of a message.
pub fn held_out() -> SendOutcome {
    SendOutcome::Skipped {
        reason: "holdout",
        detail: "in the experiment's holdout: nothing sent, conversions tracked".into(),
    }
}

/// The arm of `customer_id` in `step`'s experiment, or `None` when the
/// step is none.
pub fn assign<'a>(seed: &str, customer_id: &str, step: &'a SendStep) -> Option<Arm<'a>> {
    if !step.is_experiment() {
        return None;
    }
    let bucket = bucket(seed, customer_id);
    let holdout = u64::from(step.holdout.unwrap_or(0));
    if bucket < holdout {
        return Some(Arm::Holdout);
    }
    let total: u64 = step.variants.iter().map(|v| u64::from(v.weight)).sum();
    if total == 0 {
        return Some(Arm::Send(None));
    }
    // The rest of the buckets, spread over the variants by weight.
    let mut point = (bucket - holdout) * total / (BUCKETS - holdout).max(1);
    for variant in &step.variants {
        let weight = u64::from(variant.weight);
        if point < weight {
            return Some(Arm::Send(Some(variant)));
        }
        point -= weight;
    }
    step.variants.last().map(|v| Arm::Send(Some(v)))
}

/// A proportion with its 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    pub rate: f64,
    pub low: f64,
    pub high: f64,
}

/// One arm of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmReport {
    pub arm: String,
    pub customers: u64,
    pub sent: u64,
    pub delivered: u64,
    pub conversions: u64,
    pub conversion_rate: Rate,
    /// This arm's conversion rate less the holdout's, with the 95% interval
    /// of the difference; `None` without a holdout (or for it).
    pub uplift: Option<Rate>,
    pub cost: f64,
    /// Cost over the conversions this arm added beyond the holdout's rate;
    /// `None` when it added none (or there is no holdout).
    pub cost_per_incremental_conversion: Option<f64>,
}

/// z for a two-sided 95% interval.
const Z: f64 = 1.959_963_984_540_054;

/// Wilson's score interval for `successes` of `n`: it stays inside 0-1
/// and behaves at small counts, where the normal approximation does not.
pub fn wilson(successes: u64, n: u64) -> Rate {
    if n == 0 {
        return Rate {
            rate: 0.0,
            low: 0.0,
            high: 0.0,
        };
    }
    let (k, n) = (successes as f64, n as f64);
    let p = k / n;
    let z2 = Z * Z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Rate {
        rate: p,
        low: (centre - half).max(0.0),
        high: (centre + half).min(1.0),
    }
}

/// The difference of two proportions with Newcombe's hybrid score
/// interval (his method 10), built from each one's Wilson interval.
pub fn difference(a: Rate, b: Rate) -> Rate {
    let d = a.rate - b.rate;
    Rate {
        rate: d,
        low: d - ((a.rate - a.low).powi(2) + (b.high - b.rate).powi(2)).sqrt(),
        high: d + ((a.high - a.rate).powi(2) + (b.rate - b.low).powi(2)).sqrt(),
    }
}

/// Each arm's figures from the store's counts, against the holdout's.
pub fn report(totals: &[ArmTotals]) -> Vec<ArmReport> {
    let holdout = totals
        .iter()
        .find(|t| t.arm == HOLDOUT)
        .map(|t| wilson(t.conversions, t.customers));
    totals
        .iter()
        .map(|t| {
            let rate = wilson(t.conversions, t.customers);
            let uplift = match holdout {
                Some(base) if t.arm != HOLDOUT => Some(difference(rate, base)),
                _ => None,
            };
            let added = uplift.map(|u| u.rate * t.customers as f64);
            ArmReport {
                arm: t.arm.clone(),
                customers: t.customers,
                sent: t.sent,
                delivered: t.delivered,
                conversions: t.conversions,
                conversion_rate: rate,
                uplift,
                cost: t.cost,
                cost_per_incremental_conversion: added
                    .filter(|added| *added > 0.0)
                    .map(|added| t.cost / added),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(toml_text: &str) -> SendStep {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn a_thousand_customers_split_by_weight_and_keep_their_arm() {
        let experiment = step(
            r#"text = "x"
               category = "c"
               holdout = "10%"
               variants = [{ name = "a", weight = 3 }, { name = "b", weight = 1 }]"#,
        );
        let mut counts = std::collections::BTreeMap::new();
        for i in 0..1000 {
            let customer = format!("customer-{i}");
            let arm = assign("cart.remind", &customer, &experiment).unwrap();
            assert_eq!(
                assign("cart.remind", &customer, &experiment),
                Some(arm),
                "sticky"
            );
            *counts.entry(arm.name().to_owned()).or_insert(0u32) += 1;
        }
        // Expected 100 / 675 / 225: each within four standard deviations.
        for (arm, share) in [("holdout", 0.1_f64), ("a", 0.675), ("b", 0.225)] {
            let expected = 1000.0 * share;
            let sd = (1000.0 * share * (1.0 - share)).sqrt();
            let got = f64::from(counts[arm]);
            assert!((got - expected).abs() < 4.0 * sd, "{arm}: {got} of 1000");
        }
        // Another seed deals again.
        let moved = (0..1000)
            .filter(|i| {
                let customer = format!("customer-{i}");
                assign("cart.remind", &customer, &experiment)
                    != assign("other", &customer, &experiment)
            })
            .count();
        assert!(moved > 200, "{moved}");
        assert_eq!(assign("s", "c", &step(r#"text = "x""#)), None);
    }

    #[test]
    fn the_report_computes_rates_uplift_and_cost_per_incremental_conversion() {
        let totals = [
            ArmTotals {
                arm: "a".into(),
                customers: 400,
                sent: 390,
                delivered: 380,
                conversions: 60,
                cost: 31.2,
            },
            ArmTotals {
                arm: HOLDOUT.into(),
                customers: 100,
                sent: 0,
                delivered: 0,
                conversions: 10,
                cost: 0.0,
            },
        ];
        let rows = report(&totals);
        let a = &rows[0];
        assert!((a.conversion_rate.rate - 0.15).abs() < 1e-12);
        // Wilson for 60 of 400, by hand: centre (0.15 + z²/800) / (1 + z²/400)
        // = 0.15333, half-width 0.03498: 0.11835-0.18831.
        assert!((a.conversion_rate.low - 0.11835).abs() < 1e-4, "{a:?}");
        assert!((a.conversion_rate.high - 0.18831).abs() < 1e-4, "{a:?}");
        let uplift = a.uplift.unwrap();
        assert!((uplift.rate - 0.05).abs() < 1e-12);
        assert!(uplift.low < 0.0 && uplift.high > 0.05, "{uplift:?}");
        // 5 points over 400 customers: 20 added conversions for 31.2.
        assert!((a.cost_per_incremental_conversion.unwrap() - 1.56).abs() < 1e-9);
        assert_eq!(rows[1].uplift, None);
    }
}

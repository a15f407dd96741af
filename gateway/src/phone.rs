//! Phone numbers: which ones exist, in which country, written as E.164.
//!
//! The numbering plans are libphonenumber's, from the `phonenumber` crate's
//! metadata; the matching is ours. That crate looks every pattern up in one
//! process-wide cache of 100 compiled regexes behind a mutex, so traffic to
//! more than a handful of countries evicts and recompiles them on every
//! number: about a millisecond a number, with every accept waiting on the
//! lock (`make bench` prints both cases). Here a country's patterns are
//! compiled once, on its first number, and kept for the process's life.

use phonenumber::metadata::{DATABASE, Descriptor, Metadata};
use regex::{Regex, RegexBuilder};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

/// A phone number in strict E.164 (`+` and country code), normalised.
pub fn e164(raw: &str) -> Result<String, String> {
    let invalid = |why: &str| format!("{raw:?} is not a valid E.164 phone number: {why}");
    let Some(written) = raw.strip_prefix('+') else {
        return Err(invalid("it must start with + and the country code"));
    };
    // Letters would be read as a phone keypad reads them (`abc` = 2): in a
    // number given to us they are a mistake, not a vanity number.
    if !written
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')' | '.'))
    {
        return Err(invalid("only digits, spaces and - ( ) . may follow the +"));
    }
    let digits: String = written.chars().filter(char::is_ascii_digit).collect();
    // libphonenumber's bounds for the national number (2 to 17 digits:
    // some plans go beyond E.164's 15 in all); the plans decide the rest.
    if digits.len() > MAX_DIGITS {
        return Err(invalid("too many digits for any numbering plan"));
    }
    let Some((code, national, regions)) = split_code(&digits) else {
        return Err(invalid("no country has that calling code"));
    };
    if valid_national(code, national, &regions) {
        return Ok(format!("+{digits}"));
    }
    // "+44 (0)20 ...": the trunk prefix people write out of habit is not
    // part of the number.
    if let Some(trimmed) = national_prefix(code).and_then(|p| national.strip_prefix(p))
        && valid_national(code, trimmed, &regions)
    {
        return Ok(format!("+{code}{trimmed}"));
    }
    Err(invalid("no such number in its country's numbering plan"))
}

/// The ISO 3166 country of an E.164 number, e.g. `NL` for `+31...`.
/// Calling codes shared by several countries (+1, +7, +44) are told apart
/// by the rest of the number.
pub fn phone_country(e164: &str) -> Option<String> {
    let (code, national, regions) = split_code(e164.strip_prefix('+')?)?;
    let country = region_for(code, national, &regions)?;
    (country != NON_GEOGRAPHIC).then(|| country.to_owned())
}

/// A calling code's three digits and libphonenumber's longest national number.
const MAX_DIGITS: usize = 3 + 17;
/// The region libphonenumber gives calling codes of no country (+800, +882).
const NON_GEOGRAPHIC: &str = "001";

/// The calling code, the national number and the regions that share the
/// code: calling codes are prefix-free, so the first one to three digits
/// that name one are it.
fn split_code(digits: &str) -> Option<(u16, &str, Vec<&'static str>)> {
    (1..=3).find_map(|len| {
        let code: u16 = digits.get(..len)?.parse().ok()?;
        let regions = DATABASE.region(&code)?;
        Some((code, &digits[len..], regions))
    })
}

fn national_prefix(code: u16) -> Option<&'static str> {
    DATABASE.by_code(&code)?.first()?.national_prefix()
}

fn valid_national(code: u16, national: &str, regions: &[&'static str]) -> bool {
    region_for(code, national, regions)
        .and_then(|id| plan(code, id))
        .is_some_and(|plan| plan.is_valid(national))
}

/// Which region of a calling code a national number belongs to: the only
/// one, or among those sharing the code the first whose leading digits (or,
/// lacking them, whose numbers) fit, as libphonenumber decides.
fn region_for(code: u16, national: &str, regions: &[&'static str]) -> Option<&'static str> {
    if let [only] = regions {
        return Some(only);
    }
    regions.iter().copied().find(|&id| {
        plan(code, id).is_some_and(|plan| match &plan.leading_digits {
            Some(leading) => leading.find(national).is_some_and(|m| m.start() == 0),
            None => plan.is_valid(national),
        })
    })
}

/// One region's numbering plan, compiled.
struct Plan {
    general: Pattern,
    /// Fixed line, mobile, toll free and the other kinds: a number is valid
    /// when it fits the general pattern and one of these.
    kinds: Vec<Pattern>,
    leading_digits: Option<Regex>,
}

struct Pattern {
    lengths: &'static [u16],
    regex: Regex,
}

impl Pattern {
    fn compile(descriptor: &'static Descriptor) -> Option<Self> {
        let source = descriptor.national_number().as_str();
        Some(Self {
            lengths: descriptor.possible_length(),
            regex: compile(&format!("^(?:{source})$"))?,
        })
    }

    fn matches(&self, national: &str) -> bool {
        let length = u16::try_from(national.len()).unwrap_or(u16::MAX);
        (self.lengths.is_empty() || self.lengths.contains(&length)) && self.regex.is_match(national)
    }
}

impl Plan {
    fn compile(meta: &'static Metadata) -> Option<Self> {
        Some(Self {
            general: Pattern::compile(meta.descriptors().general())?,
            kinds: kinds(meta).filter_map(Pattern::compile).collect(),
            leading_digits: meta
                .leading_digits()
                .and_then(|leading| compile(leading.as_str())),
        })
    }

    fn is_valid(&self, national: &str) -> bool {
        self.general.matches(national) && self.kinds.iter().any(|kind| kind.matches(national))
    }
}

/// The metadata writes its patterns over several indented lines. National
/// numbers are ASCII digits: a Unicode `\d` would make every compiled
/// pattern about nine times larger (all regions: 120 MiB against 13).
fn compile(pattern: &str) -> Option<Regex> {
    RegexBuilder::new(pattern)
        .ignore_whitespace(true)
        .unicode(false)
        .build()
        .ok()
}

/// The kinds of number a region has patterns for (the general pattern
/// aside): fixed line, mobile, toll free and the rest.
fn kinds(meta: &'static Metadata) -> impl Iterator<Item = &'static Descriptor> {
    let all = meta.descriptors();
    [
        all.fixed_line(),
        all.mobile(),
        all.toll_free(),
        all.premium_rate(),
        all.shared_cost(),
        all.personal_number(),
        all.voip(),
        all.pager(),
        all.uan(),
        all.voicemail(),
    ]
    .into_iter()
    .flatten()
}

/// A region's metadata; the non-geographic codes share one region name
/// and are told apart by their code.
fn metadata(code: u16, id: &str) -> Option<&'static Metadata> {
    if id == NON_GEOGRAPHIC {
        DATABASE.by_code(&code)?.first().copied()
    } else {
        DATABASE.by_id(id)
    }
}

type Plans = RwLock<HashMap<(u16, &'static str), Arc<Plan>>>;

/// The compiled plans, by calling code and region (the non-geographic
/// codes all share one region name).
static PLANS: LazyLock<Plans> = LazyLock::new(Plans::default);

fn plan(code: u16, id: &'static str) -> Option<Arc<Plan>> {
    if let Some(plan) = PLANS.read().ok()?.get(&(code, id)) {
        return Some(plan.clone());
    }
    // Compiled outside the lock: numbers of countries already known go on.
    let compiled = Arc::new(Plan::compile(metadata(code, id)?)?);
    let mut plans = PLANS.write().ok()?;
    Some(plans.entry((code, id)).or_insert(compiled).clone())
}

#[cfg(test)]
mod tests {
    use super::{e164, kinds, metadata, phone_country};
    use phonenumber::metadata::DATABASE;

    #[test]
    fn phone_numbers_with_letters_are_refused() {
        assert!(e164("+3161234abcd").is_err());
        assert_eq!(e164("+31 (6) 1234-5678").unwrap(), "+31612345678");
        assert!(e164("31612345678").is_err(), "no +");
        assert!(e164("+31").is_err() && e164("+316123456789012345678").is_err());
    }

    /// Italy keeps the leading zero of its fixed lines in E.164.
    #[test]
    fn a_leading_zero_that_belongs_to_the_number_is_kept() {
        assert_eq!(e164("+39 06 6982 1234").unwrap(), "+390669821234");
        assert_eq!(e164("+1 (415) 555-2671").unwrap(), "+14155552671");
    }

    #[test]
    fn a_trunk_prefix_written_after_the_country_code_is_dropped() {
        assert_eq!(e164("+44 (0)20 7946 0958").unwrap(), "+442079460958");
        assert_eq!(e164("+31 06 12345678").unwrap(), "+31612345678");
    }

    #[test]
    fn a_numbers_country_comes_from_its_calling_code() {
        assert_eq!(phone_country("+31612345678").as_deref(), Some("NL"));
        assert_eq!(phone_country("+5511987654321").as_deref(), Some("BR"));
        assert_eq!(phone_country("+14155550100").as_deref(), Some("US"));
        assert_eq!(phone_country("+16135550100").as_deref(), Some("CA"));
        assert_eq!(phone_country("+447400123456").as_deref(), Some("GB"));
        // Guernsey has its own mobile ranges under +44.
        assert_eq!(phone_country("+447911123456").as_deref(), Some("GG"));
        assert_eq!(phone_country("+79161234567").as_deref(), Some("RU"));
        assert_eq!(phone_country("+77011234567").as_deref(), Some("KZ"));
        assert_eq!(phone_country("+80012345678"), None, "non-geographic");
        assert_eq!(phone_country("nonsense"), None);
    }

    /// Every example number libphonenumber's metadata gives, of every
    /// kind and region, is valid and placed in its region (or in one listed
    /// before it under the same calling code that has the number too, as
    /// libphonenumber places it). The `phonenumber` crate's own validator
    /// refuses some of them: Russian, Kazakh, Lithuanian and Belarusian
    /// toll-free numbers lose their leading 8 to its trunk-prefix stripping.
    #[test]
    fn every_example_number_of_the_metadata_is_valid_in_its_region() {
        let mut checked = 0;
        for code in 1..1000u16 {
            let regions = DATABASE.region(&code).unwrap_or_default();
            for (index, &region) in regions.iter().enumerate() {
                let Some(meta) = metadata(code, region) else {
                    continue;
                };
                for example in kinds(meta).filter_map(|d| d.example()) {
                    let number = format!("+{code}{example}");
                    assert_eq!(e164(&number).as_deref(), Ok(number.as_str()));
                    let country = phone_country(&number);
                    if region == "001" {
                        assert_eq!(country, None, "{number}");
                    } else {
                        let placed = country.unwrap_or_default();
                        let position = regions.iter().position(|r| *r == placed);
                        assert!(
                            position.is_some_and(|p| p <= index),
                            "{number} of {region} placed in {placed:?}"
                        );
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 700, "only {checked} examples checked");
    }

    /// Numbers a digit short or long, or in ranges no one was given, are
    /// refused, as the `phonenumber` crate refuses them.
    #[test]
    fn numbers_outside_the_plans_are_refused() {
        for number in [
            "+3161234567",
            "+316123456789",
            "+12005550123",
            "+4470",
            "+4915",
            "+999123456789",
            "+80012345",
        ] {
            assert!(e164(number).is_err(), "{number}");
            let theirs = phonenumber::parse(None, number).is_ok_and(|n| phonenumber::is_valid(&n));
            assert!(!theirs, "{number} is valid to the phonenumber crate");
        }
    }
}

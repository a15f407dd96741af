//! Phone numbers as providers want them. The gateway hands a connector
//! every phone number in E.164 (`+31612345678`); many SMS APIs want the
//! bare digits, and send their own senders back without the `+`.

use crate::Failure;

/// The digits of an E.164 number, without its `+`; a permanent
/// `invalid_number` failure for anything else (it will not become valid).
pub fn digits(number: &str) -> Result<&str, Failure> {
    let digits = number.strip_prefix('+').unwrap_or_default();
    let valid = (8..=15).contains(&digits.len())
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit());
    if valid {
        Ok(digits)
    } else {
        Err(Failure::permanent(
            "invalid_number",
            format!("{number:?} is not an E.164 number (+ and 8 to 15 digits)"),
        ))
    }
}

/// A provider's bare digits (or an E.164 number) as E.164, when they can be one.
pub fn e164(digits: &str) -> Option<String> {
    let number = format!("+{}", digits.trim().trim_start_matches('+'));
    let valid = self::digits(&number).is_ok();
    valid.then_some(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_lose_and_regain_their_plus() {
        assert_eq!(digits("+31612345678").unwrap(), "31612345678");
        for bad in [
            "31612345678",
            "+0612345678",
            "+316123",
            "+31 6 1234 5678",
            "",
        ] {
            assert_eq!(digits(bad).unwrap_err().code, "invalid_number", "{bad:?}");
        }
        assert_eq!(e164("31612345678").as_deref(), Some("+31612345678"));
        assert_eq!(e164("+31612345678").as_deref(), Some("+31612345678"));
        assert_eq!(e164("VONAGE"), None);
    }
}

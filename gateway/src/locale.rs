//! Locale tags as customers and templates carry them, and which of a
//! template's locales (or an SMS footer's) a customer reads: their own, then each
//! shorter form of it, then the template's default (`nl-BE` -> `nl` -> `en`).

/// The locales to try, most specific first, without repeats. Locale tags
/// compare case-insensitively and `_` is read as `-` (`nl_BE` = `nl-BE`).
pub fn chain(requested: Option<&str>, default: &str) -> Vec<String> {
    let mut chain: Vec<String> = Vec::with_capacity(3);
    if let Some(requested) = requested {
        let mut tag = normalise(requested);
        loop {
            if !tag.is_empty() && !chain.contains(&tag) {
                chain.push(tag.clone());
            }
            match tag.rfind('-') {
                Some(cut) => tag.truncate(cut),
                None => break,
            }
        }
    }
    let default = normalise(default);
    if !chain.contains(&default) {
        chain.push(default);
    }
    chain
}

/// `nl_be` -> `nl-BE`: the language lower case, a region upper case, a
/// script title case, as BCP 47 writes them (and template folders are named).
pub fn normalise(tag: &str) -> String {
    tag.trim()
        .split(['-', '_'])
        .filter(|part| !part.is_empty())
        .enumerate()
        .map(|(i, part)| match (i, part.len()) {
            (0, _) => part.to_ascii_lowercase(),
            (_, 2) => part.to_ascii_uppercase(),
            (_, 4) => {
                let lower = part.to_ascii_lowercase();
                lower[..1].to_ascii_uppercase() + &lower[1..]
            }
            _ => part.to_ascii_lowercase(),
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Whether `tag` is a BCP 47 language tag of the common shape: a language
/// (2-3 lower-case letters), then optionally a script (4 letters), a region
/// (2 upper-case letters or 3 digits); `_` is read as `-`.
pub fn valid(tag: &str) -> bool {
    let mut parts = tag.split(['-', '_']);
    let language = parts.next().unwrap_or("");
    if !(2..=3).contains(&language.len()) || !language.bytes().all(|b| b.is_ascii_lowercase()) {
        return false;
    }
    parts.all(|p| {
        (p.len() == 4 && p.bytes().all(|b| b.is_ascii_alphabetic()))
            || (p.len() == 2 && p.bytes().all(|b| b.is_ascii_uppercase()))
            || (p.len() == 3 && p.bytes().all(|b| b.is_ascii_digit()))
    })
}

#[cfg(test)]
mod tests {
    use super::{chain, normalise, valid};

    #[test]
    fn a_locale_falls_back_to_its_language_then_the_default() {
        assert_eq!(chain(Some("nl-BE"), "en"), ["nl-BE", "nl", "en"]);
        assert_eq!(chain(Some("nl_be"), "en"), ["nl-BE", "nl", "en"]);
        assert_eq!(
            chain(Some("zh-Hant-TW"), "en"),
            ["zh-Hant-TW", "zh-Hant", "zh", "en"]
        );
        assert_eq!(chain(Some("en-GB"), "en"), ["en-GB", "en"]);
        assert_eq!(chain(None, "en"), ["en"]);
        assert_eq!(chain(Some(" "), "en"), ["en"]);
    }

    #[test]
    fn tags_are_written_the_bcp47_way() {
        assert_eq!(normalise("PT-br"), "pt-BR");
        assert_eq!(normalise("sr_latn_rs"), "sr-Latn-RS");
        assert!(valid("nl") && valid("nl-BE") && valid("zh-Hant"));
        assert!(!valid("") && !valid("Dutch") && !valid("nl-") && !valid("../x"));
    }
}

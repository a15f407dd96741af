//! What a plugin returns or logs is untrusted text: it is bounded and
//! stripped of control characters before it is stored, served or logged,
//! so a plugin cannot bloat the store nor forge log lines.

use crate::message::is_unsafe_char;

/// `text` with every control character (newlines included) replaced by a
/// space, cut to at most `max` bytes on a character boundary.
pub fn text(text: &str, max: usize) -> String {
    bounded(
        text.chars()
            .map(|c| if is_unsafe_char(c) { ' ' } else { c }),
        max,
    )
}

/// A customer's own words (a reply): line breaks are theirs and kept, every
/// other control character goes, and the whole is cut to `max` bytes.
pub fn lines(text: &str, max: usize) -> String {
    let kept = text.replace("\r\n", "\n");
    bounded(
        kept.chars().map(|c| {
            if c != '\n' && is_unsafe_char(c) {
                ' '
            } else {
                c
            }
        }),
        max,
    )
}

fn bounded(chars: impl Iterator<Item = char>, max: usize) -> String {
    let mut clean: String = chars.collect();
    if clean.len() > max {
        let mut end = max.saturating_sub('…'.len_utf8());
        while !clean.is_char_boundary(end) {
            end -= 1;
        }
        clean.truncate(end);
        clean.push('…');
    }
    clean
}

/// A machine-readable code: letters, digits and `_ - . :` only, at most `max` bytes.
pub fn code(code: &str, max: usize) -> String {
    let clean: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
        .take(max)
        .collect();
    if clean.is_empty() {
        "unspecified".to_owned()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn plugin_text_is_bounded_and_cannot_forge_lines() {
        let forged = "ok\n2026-12-01T00:00:00Z ERROR admin password reset\u{1b}[0m";
        let clean = super::text(forged, 1024);
        assert!(
            !clean.contains('\n') && !clean.contains('\u{1b}'),
            "{clean}"
        );
        let long = "é".repeat(5000);
        let cut = super::text(&long, 100);
        assert!(cut.len() <= 100 && cut.ends_with('…'), "{}", cut.len());
        assert_eq!(super::code("21211\nFAKE", 64), "21211FAKE");
        assert_eq!(super::code("\n", 64), "unspecified");
        assert_eq!(super::lines("yes,\r\nplease\u{1b}!", 64), "yes,\nplease !");
    }
}

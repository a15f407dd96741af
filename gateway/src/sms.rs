//! The shape of an SMS on the air: which encoding a text needs and how many
//! segments it costs. Operators pay per segment, so the plan's SMS cost and
//! a category's `max_segments` are counted here, by the published rules
//! (3GPP TS 23.038 and 23.040):
//!
//! - GSM-7 when every character is in the GSM 03.38 default alphabet or its
//!   extension table; an extension character (`{ } [ ] ~ \ | ^ €` and form
//!   feed) is sent as escape + character and counts two septets. One
//!   segment holds 160 septets; a longer text is split into segments of 153
//!   (the user data header takes 7), and an escape pair is never split.
//! - UCS-2 otherwise: 70 UTF-16 units in one segment, 67 per segment when
//!   split, a surrogate pair (an emoji) is never split.

use serde::Serialize;

/// How a text is encoded on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Encoding {
    #[serde(rename = "GSM-7")]
    Gsm7,
    #[serde(rename = "UCS-2")]
    Ucs2,
}

/// What one text costs: its encoding and the segments it is split into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Segments {
    pub encoding: Encoding,
    pub segments: u32,
    /// Septets (GSM-7) or UTF-16 units (UCS-2) the text takes.
    pub units: u32,
}

/// The GSM 03.38 default alphabet, as Unicode (the escape code 0x1B, which
/// introduces the extension table, is not a character of its own).
const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// The extension table: each costs an escape septet and its own.
const EXTENSION: &str = "\u{0C}^{}\\[~]|€";

/// Septets `c` takes in GSM-7, or `None` when GSM-7 cannot carry it.
fn septets(c: char) -> Option<u32> {
    // ASCII letters and digits first: the common case needs no table scan.
    if c.is_ascii_alphanumeric() || c == ' ' {
        return Some(1);
    }
    if BASIC.contains(c) {
        Some(1)
    } else if EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Whether GSM-7 can carry all of `text`.
pub fn is_gsm7(text: &str) -> bool {
    text.chars().all(|c| septets(c).is_some())
}

/// The encoding and segment count of `text`.
pub fn segments(text: &str) -> Segments {
    if is_gsm7(text) {
        let widths = text.chars().filter_map(septets);
        let (segments, units) = pack(widths, 160, 153);
        Segments {
            encoding: Encoding::Gsm7,
            segments,
            units,
        }
    } else {
        let widths = text.chars().map(|c| c.len_utf16() as u32);
        let (segments, units) = pack(widths, 70, 67);
        Segments {
            encoding: Encoding::Ucs2,
            segments,
            units,
        }
    }
}

/// Segments needed for characters of the given widths: all in one when
/// they fit `single`, else filled `multi` at a time without splitting a
/// character (an escape pair, a surrogate pair) across two segments.
fn pack(widths: impl Iterator<Item = u32> + Clone, single: u32, multi: u32) -> (u32, u32) {
    let total: u32 = widths.clone().sum();
    if total <= single {
        return (1, total);
    }
    let (mut segments, mut used) = (1, 0);
    for width in widths {
        if used + width > multi {
            segments += 1;
            used = 0;
        }
        used += width;
    }
    (segments, total)
}

/// Characters that push a text out of GSM-7 for no reason a reader would
/// see, with their GSM-7 stand-ins: typographic quotes, dashes, ellipses
/// and unusual spaces, as word processors and phones type them.
const LOOKALIKES: &[(char, &str)] = &[
    ('\u{00A0}', " "),
    ('\u{00AB}', "\""),
    ('\u{00BB}', "\""),
    ('\u{2000}', " "),
    ('\u{2001}', " "),
    ('\u{2002}', " "),
    ('\u{2003}', " "),
    ('\u{2004}', " "),
    ('\u{2005}', " "),
    ('\u{2006}', " "),
    ('\u{2007}', " "),
    ('\u{2008}', " "),
    ('\u{2009}', " "),
    ('\u{200A}', " "),
    ('\u{200B}', ""),
    ('\u{2010}', "-"),
    ('\u{2011}', "-"),
    ('\u{2012}', "-"),
    ('\u{2013}', "-"),
    ('\u{2014}', "-"),
    ('\u{2015}', "-"),
    ('\u{2018}', "'"),
    ('\u{2019}', "'"),
    ('\u{201A}', "'"),
    ('\u{201B}', "'"),
    ('\u{201C}', "\""),
    ('\u{201D}', "\""),
    ('\u{201E}', "\""),
    ('\u{201F}', "\""),
    ('\u{2022}', "-"),
    ('\u{2026}', "..."),
    ('\u{202F}', " "),
    ('\u{2032}', "'"),
    ('\u{2033}', "\""),
    ('\u{2039}', "<"),
    ('\u{203A}', ">"),
    ('\u{205F}', " "),
    ('\u{2212}', "-"),
    ('\u{3000}', " "),
    ('\u{FEFF}', ""),
];

/// `text` with look-alike characters replaced by GSM-7 ones, when that
/// makes the whole text GSM-7; otherwise `text` as it is (it goes as UCS-2
/// either way, and there the originals cost nothing extra).
pub fn smart_encode(text: &str) -> std::borrow::Cow<'_, str> {
    if is_gsm7(text) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match LOOKALIKES.iter().find(|(from, _)| *from == c) {
            Some((_, to)) => out.push_str(to),
            None => out.push(c),
        }
    }
    if is_gsm7(&out) {
        out.into()
    } else {
        text.into()
    }
}

#[cfg(test)]
mod tests {
    use super::{Encoding, segments, smart_encode};

    fn count(text: &str) -> (Encoding, u32) {
        let s = segments(text);
        (s.encoding, s.segments)
    }

    #[test]
    fn gsm7_fits_160_then_153_per_segment() {
        assert_eq!(count(&"a".repeat(160)), (Encoding::Gsm7, 1));
        assert_eq!(count(&"a".repeat(161)), (Encoding::Gsm7, 2));
        assert_eq!(count(&"a".repeat(306)), (Encoding::Gsm7, 2));
        assert_eq!(count(&"a".repeat(307)), (Encoding::Gsm7, 3));
        assert_eq!(count(&"a".repeat(459)), (Encoding::Gsm7, 3));
        assert_eq!(count(&"a".repeat(460)), (Encoding::Gsm7, 4));
        // The default alphabet has some accents and Greek capitals, not all.
        assert_eq!(count("Ça ÆØÅ æøå ß ¿¡ §¤ Δ_ΦΓΛΩΠΨΣΘΞ"), (Encoding::Gsm7, 1));
        assert_eq!(count("Ça coûte"), (Encoding::Ucs2, 1), "û is not GSM-7");
    }

    #[test]
    fn extension_characters_count_double_and_are_never_split() {
        // 80 braces are 160 septets: one segment; one more septet is two.
        assert_eq!(segments(&"{".repeat(80)).units, 160);
        assert_eq!(count(&"{".repeat(80)), (Encoding::Gsm7, 1));
        assert_eq!(count(&format!("{}a", "{".repeat(80))), (Encoding::Gsm7, 2));
        assert_eq!(count(&"€".repeat(80)), (Encoding::Gsm7, 1));
        // 152 septets then an escape pair: the pair moves to segment two
        // whole, so 153 + 153 + 1 septets make three segments, not two.
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        assert_eq!(segments(&text).units, 306);
        assert_eq!(count(&text), (Encoding::Gsm7, 3));
        for c in ['^', '{', '}', '\\', '[', '~', ']', '|', '€', '\u{0C}'] {
            assert_eq!(segments(&c.to_string()).units, 2, "{c:?}");
        }
    }

    #[test]
    fn ucs2_fits_70_then_67_per_segment() {
        assert_eq!(count(&"ж".repeat(70)), (Encoding::Ucs2, 1));
        assert_eq!(count(&"ж".repeat(71)), (Encoding::Ucs2, 2));
        assert_eq!(count(&"ж".repeat(134)), (Encoding::Ucs2, 2));
        assert_eq!(count(&"ж".repeat(135)), (Encoding::Ucs2, 3));
        // One character outside GSM-7 makes the whole text UCS-2.
        assert_eq!(count(&format!("{}ж", "a".repeat(69))), (Encoding::Ucs2, 1));
        assert_eq!(count(&format!("{}ж", "a".repeat(70))), (Encoding::Ucs2, 2));
        // An emoji is a surrogate pair: two units, never split.
        assert_eq!(segments(&"😀".repeat(35)).units, 70);
        assert_eq!(count(&"😀".repeat(35)), (Encoding::Ucs2, 1));
        let text = format!("{}😀{}", "ж".repeat(66), "ж".repeat(66));
        assert_eq!(segments(&text).units, 134);
        assert_eq!(count(&text), (Encoding::Ucs2, 3));
    }

    #[test]
    fn smart_encoding_keeps_a_text_in_gsm7_when_it_can() {
        let typed = "Don\u{2019}t miss it \u{2013} \u{201C}50% off\u{201D}\u{2026}";
        assert_eq!(count(typed).0, Encoding::Ucs2);
        let smart = smart_encode(typed);
        assert_eq!(smart, "Don't miss it - \"50% off\"...");
        assert_eq!(count(&smart).0, Encoding::Gsm7);
        // An emoji keeps it UCS-2 anyway: then the text is left as typed.
        let emoji = "Don\u{2019}t miss it 😀";
        assert_eq!(smart_encode(emoji), emoji);
    }
}

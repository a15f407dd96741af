//! The cursors newest-first lists page with: the last item's time and id,
//! opaque to the client (base64url), so a page never repeats or skips an
//! item however many arrive meanwhile.

use super::ApiError;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub fn encode(at: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{at} {id}"))
}

/// The cursor after a full page (`limit` items, the last at `at` with
/// `id`); `None` after a short one: there is nothing older.
pub fn next<T>(page: &[T], limit: usize, key: impl Fn(&T) -> (i64, &str)) -> Option<String> {
    let last = page.last().filter(|_| page.len() == limit)?;
    let (at, id) = key(last);
    Some(encode(at, id))
}

/// What `encode` made, or `422` on the parameter `field`.
pub fn decode(cursor: &str, field: &str) -> Result<(i64, String), ApiError> {
    let bad = || ApiError::invalid("invalid_cursor", field, "not a cursor this list gave");
    let text = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(text).map_err(|_| bad())?;
    let (at, id) = text.split_once(' ').ok_or_else(bad)?;
    Ok((at.parse().map_err(|_| bad())?, id.to_owned()))
}

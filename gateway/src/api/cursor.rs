//! The cursors newest-first lists page with: the last item's time and id,
//! opaque to the client (base64url), so a page never repeats or skips an
//! item however many arrive meanwhile.

use super::ApiError;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub fn encode(at: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{at} {id}"))
}

/// What `encode` made, or `422` on the parameter `field`.
pub fn decode(cursor: &str, field: &str) -> Result<(i64, String), ApiError> {
    let bad = || ApiError::invalid("invalid_cursor", field, "not a cursor this list gave");
    let text = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(text).map_err(|_| bad())?;
    let (at, id) = text.split_once(' ').ok_or_else(bad)?;
    Ok((at.parse().map_err(|_| bad())?, id.to_owned()))
}

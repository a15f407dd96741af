//! Tokens the gateway hands out so a customer can act without an API key:
//! an unsubscribe link, a preference-page link, a feed token. Each names a
//! customer (and what else its purpose needs) and an expiry, and is signed,
//! so nobody acts for someone else and the gateway keeps nothing per token:
//! any node verifies what another signed.
//!
//! `base64url(field \n field ... \n expires_ms) . base64url(HMAC-SHA256)`,
//! the MAC taken over `purpose \n` and the payload, so a token made for one
//! purpose never passes for another. A platform's backend can make feed
//! tokens itself with the same recipe (docs/api.md).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the link is not one this gateway made")]
    Forged,
    #[error("the link has expired")]
    Expired,
}

/// What a token is for: part of what is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `customer \n category`: opt out of one category's email.
    Unsubscribe,
    /// `customer`: the customer's own preference page.
    Preferences,
    /// `customer`: read and mark the customer's feed.
    Inbox,
}

impl Purpose {
    fn domain(self) -> &'static [u8] {
        match self {
            Purpose::Unsubscribe => b"crossgate-unsubscribe-v1\n",
            Purpose::Preferences => b"crossgate-preferences-v1\n",
            Purpose::Inbox => b"crossgate-inbox-v1\n",
        }
    }

    /// How many fields come before the expiry.
    fn fields(self) -> usize {
        match self {
            Purpose::Unsubscribe => 2,
            Purpose::Preferences | Purpose::Inbox => 1,
        }
    }
}

/// A token for `fields` (none may hold a line break) until `expires_at`.
pub fn sign(secret: &[u8], purpose: Purpose, fields: &[&str], expires_at: i64) -> String {
    debug_assert_eq!(fields.len(), purpose.fields());
    let mut payload = fields.join("\n");
    payload.push('\n');
    payload.push_str(&expires_at.to_string());
    let signature = mac(secret, purpose, payload.as_bytes())
        .finalize()
        .into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// The fields and expiry of `token`, if this gateway signed it for
/// `purpose` and it has not expired at `now`.
pub fn verify(
    secret: &[u8],
    purpose: Purpose,
    token: &str,
    now: i64,
) -> Result<(Vec<String>, i64), Refused> {
    let (payload, signature) = token.split_once('.').ok_or(Refused::Forged)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| Refused::Forged)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| Refused::Forged)?;
    mac(secret, purpose, &payload)
        .verify_slice(&signature)
        .map_err(|_| Refused::Forged)?;
    // Signed by us (or the platform's backend), so well formed; checked anyway.
    let payload = String::from_utf8(payload).map_err(|_| Refused::Forged)?;
    let mut fields: Vec<String> = payload
        .splitn(purpose.fields() + 1, '\n')
        .map(str::to_owned)
        .collect();
    if fields.len() != purpose.fields() + 1 {
        return Err(Refused::Forged);
    }
    let expires_at: i64 = fields
        .pop()
        .and_then(|e| e.parse().ok())
        .ok_or(Refused::Forged)?;
    if now >= expires_at {
        return Err(Refused::Expired);
    }
    Ok((fields, expires_at))
}

/// The check a form served under `token` posts back: a cross-site page
/// cannot read it, so it cannot post the form for the customer (the
/// token in the URL alone is not enough: it may be in a mail's history).
pub fn form_check(secret: &[u8], token: &str) -> String {
    URL_SAFE_NO_PAD.encode(check_mac(secret, token).finalize().into_bytes())
}

/// Whether `check` is [`form_check`]'s for `token`, compared in constant time.
pub fn form_check_holds(secret: &[u8], token: &str, check: &str) -> bool {
    URL_SAFE_NO_PAD
        .decode(check)
        .is_ok_and(|check| check_mac(secret, token).verify_slice(&check).is_ok())
}

fn check_mac(secret: &[u8], token: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(b"crossgate-form-check-v1\n");
    mac.update(token.as_bytes());
    mac
}

fn mac(secret: &[u8], purpose: Purpose, payload: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(purpose.domain());
    mac.update(payload);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a secret of sixteen or more";

    #[test]
    fn a_token_verifies_for_its_purpose_until_it_expires() {
        let token = sign(SECRET, Purpose::Inbox, &["cust-42"], 10_000);
        assert_eq!(
            verify(SECRET, Purpose::Inbox, &token, 9_999),
            Ok((vec!["cust-42".to_owned()], 10_000))
        );
        assert_eq!(
            verify(SECRET, Purpose::Inbox, &token, 10_000),
            Err(Refused::Expired)
        );
        assert_eq!(
            verify(SECRET, Purpose::Preferences, &token, 0),
            Err(Refused::Forged),
            "a feed token is no preference link"
        );
        assert_eq!(
            verify(b"another secret", Purpose::Inbox, &token, 0),
            Err(Refused::Forged)
        );
    }

    #[test]
    fn a_customer_id_with_a_line_break_cannot_shift_fields() {
        // Customer ids are checked before signing; a forged extra field
        // would not parse as an expiry.
        let token = sign(SECRET, Purpose::Inbox, &["a"], 10);
        let (_, signature) = token.split_once('.').unwrap();
        let payload = URL_SAFE_NO_PAD.encode("a\nb\n10");
        assert_eq!(
            verify(SECRET, Purpose::Inbox, &format!("{payload}.{signature}"), 0),
            Err(Refused::Forged)
        );
    }
}

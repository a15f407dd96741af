//! One-click unsubscribe links (RFC 8058): a token that names a customer
//! and a category, signed so nobody can unsubscribe someone else, and
//! expiring so an old mail's link does not work forever.
//!
//! `base64url(customer \n category \n expires_ms) . base64url(HMAC-SHA256)`:
//! the gateway keeps nothing per link, so any node verifies any link.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Who unsubscribes from what, as a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    pub customer_id: String,
    pub category: String,
    pub expires_at: i64,
}

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the link is not one this gateway made")]
    Forged,
    #[error("the link has expired")]
    Expired,
}

/// A signed token for `who`.
pub fn sign(secret: &[u8], who: &Unsubscribe) -> String {
    let payload = format!("{}\n{}\n{}", who.customer_id, who.category, who.expires_at);
    let signature = mac(secret, payload.as_bytes()).finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// What `token` says, if this gateway signed it and it has not expired at `now`.
pub fn verify(secret: &[u8], token: &str, now: i64) -> Result<Unsubscribe, Refused> {
    let (payload, signature) = token.split_once('.').ok_or(Refused::Forged)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| Refused::Forged)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| Refused::Forged)?;
    mac(secret, &payload)
        .verify_slice(&signature)
        .map_err(|_| Refused::Forged)?;
    // Signed by us, so well formed; checked anyway.
    let payload = String::from_utf8(payload).map_err(|_| Refused::Forged)?;
    let mut fields = payload.splitn(3, '\n');
    let (Some(customer_id), Some(category), Some(expires_at)) =
        (fields.next(), fields.next(), fields.next())
    else {
        return Err(Refused::Forged);
    };
    let expires_at: i64 = expires_at.parse().map_err(|_| Refused::Forged)?;
    if now >= expires_at {
        return Err(Refused::Expired);
    }
    Ok(Unsubscribe {
        customer_id: customer_id.to_owned(),
        category: category.to_owned(),
        expires_at,
    })
}

fn mac(secret: &[u8], payload: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(b"crossgate-unsubscribe-v1\n");
    mac.update(payload);
    mac
}

#[cfg(test)]
mod tests {
    use super::{Refused, Unsubscribe, sign, verify};

    const SECRET: &[u8] = b"a secret of sixteen or more";

    fn who() -> Unsubscribe {
        Unsubscribe {
            customer_id: "cust-42".into(),
            category: "marketing".into(),
            expires_at: 10_000,
        }
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let token = sign(SECRET, &who());
        assert_eq!(verify(SECRET, &token, 9_999), Ok(who()));
        assert_eq!(verify(SECRET, &token, 10_000), Err(Refused::Expired));
    }

    #[test]
    fn a_changed_or_foreign_token_is_forged() {
        let token = sign(SECRET, &who());
        assert_eq!(
            verify(b"another secret entirely", &token, 0),
            Err(Refused::Forged)
        );
        let mut other = who();
        other.customer_id = "cust-43".into();
        let (_, signature) = token.split_once('.').unwrap();
        let (payload, _) = sign(b"x", &other)
            .split_once('.')
            .map(|(p, s)| (p.to_owned(), s.to_owned()))
            .unwrap();
        assert_eq!(
            verify(SECRET, &format!("{payload}.{signature}"), 0),
            Err(Refused::Forged)
        );
        for junk in ["", ".", "abc", "abc.def", "!!!.???"] {
            assert_eq!(verify(SECRET, junk, 0), Err(Refused::Forged), "{junk:?}");
        }
    }
}

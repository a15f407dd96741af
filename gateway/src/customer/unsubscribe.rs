//! One-click unsubscribe links (RFC 8058): a token that names a customer
//! and a category, signed so nobody can unsubscribe someone else, and
//! expiring so an old mail's link does not work forever.
//!
//! Signed and read as [`super::signed`] says: the gateway keeps nothing per
//! link, so any node verifies any link.

pub use super::signed::Refused;
use super::signed::{self, Purpose};

/// Who unsubscribes from what, as a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    pub customer_id: String,
    pub category: String,
    pub expires_at: i64,
}

/// A signed token for `who`.
pub fn sign(secret: &[u8], who: &Unsubscribe) -> String {
    signed::sign(
        secret,
        Purpose::Unsubscribe,
        &[&who.customer_id, &who.category],
        who.expires_at,
    )
}

/// What `token` says, if this gateway signed it and it has not expired at `now`.
pub fn verify(secret: &[u8], token: &str, now: i64) -> Result<Unsubscribe, Refused> {
    let (fields, expires_at) = signed::verify(secret, Purpose::Unsubscribe, token, now)?;
    let [customer_id, category] = <[String; 2]>::try_from(fields).map_err(|_| Refused::Forged)?;
    Ok(Unsubscribe {
        customer_id,
        category,
        expires_at,
    })
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

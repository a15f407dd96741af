//! Feed tokens: how a customer's device proves whose feed it reads. The
//! platform's backend makes them with `[inbox] secret` (the recipe is in
//! docs/api.md, so it need not call us) or asks `POST /v1/inbox/tokens`.
//! Never an API key: a token reads and marks one customer's feed, nothing else.

use crate::customer::signed::{self, Purpose, Refused};

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefused {
    #[error("no feed token: send Authorization: Bearer <token> or ?token=")]
    Missing,
    #[error("the feed token is not one signed with this gateway's [inbox] secret")]
    Forged,
    #[error("the feed token has expired")]
    Expired,
    #[error("the feed token is valid for longer than [inbox] max_token_age allows")]
    TooLongLived,
}

/// Signs and checks feed tokens.
#[derive(Clone)]
pub struct FeedTokens {
    secret: Vec<u8>,
    max_age: i64,
}

impl FeedTokens {
    /// `None` when `[inbox]` has no secret: the feed is off.
    pub fn from_config(inbox: &crate::config::InboxConfig) -> Option<FeedTokens> {
        inbox.secret.as_ref().map(|secret| FeedTokens {
            secret: secret.get_ref().as_bytes().to_vec(),
            max_age: inbox.max_token_age,
        })
    }

    pub fn max_age(&self) -> i64 {
        self.max_age
    }

    /// A token for `customer_id` (a checked id: no line breaks) until `expires_at`.
    pub fn issue(&self, customer_id: &str, expires_at: i64) -> String {
        signed::sign(&self.secret, Purpose::Inbox, &[customer_id], expires_at)
    }

    /// The customer `token` was made for, if it is ours, unexpired at
    /// `now`, and not made to outlive `max_token_age`.
    pub fn verify(&self, token: &str, now: i64) -> Result<String, TokenRefused> {
        let (fields, expires_at) = signed::verify(&self.secret, Purpose::Inbox, token, now)
            .map_err(|e| match e {
                Refused::Forged => TokenRefused::Forged,
                Refused::Expired => TokenRefused::Expired,
            })?;
        if expires_at.saturating_sub(now) > self.max_age {
            return Err(TokenRefused::TooLongLived);
        }
        let [customer_id] = <[String; 1]>::try_from(fields).map_err(|_| TokenRefused::Forged)?;
        crate::customer::check_id(&customer_id).map_err(|_| TokenRefused::Forged)?;
        Ok(customer_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> FeedTokens {
        FeedTokens {
            secret: b"a feed secret of some length".to_vec(),
            max_age: 1_000,
        }
    }

    #[test]
    fn a_token_names_its_customer_until_it_expires() {
        let t = tokens();
        let token = t.issue("ada", 500);
        assert_eq!(t.verify(&token, 0), Ok("ada".to_owned()));
        assert_eq!(t.verify(&token, 500), Err(TokenRefused::Expired));
        assert_eq!(
            t.verify(&t.issue("ada", 5_000), 0),
            Err(TokenRefused::TooLongLived)
        );
        let other = FeedTokens {
            secret: b"another secret".to_vec(),
            max_age: 1_000,
        };
        assert_eq!(other.verify(&token, 0), Err(TokenRefused::Forged));
    }
}

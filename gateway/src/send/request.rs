//! The body of `POST /v1/messages` and `POST /v1/routes/preview`, as sent.

use super::content::ContentRequest;
use crate::message::Channel;
use serde::Deserialize;

/// Journeys and broadcasts build one too: `..SendRequest::default()` for
/// what they leave out.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// With `to`: send to an address on this channel.
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub to: Option<Recipient>,
    /// With `category`: send to a customer on the channel their plan picks.
    #[serde(default)]
    pub customer_id: Option<String>,
    /// Required for customer sends; address sends default to `transactional`.
    #[serde(default)]
    pub category: Option<String>,
    /// For customer sends: an explicit channel order, still subject to consent.
    #[serde(default)]
    pub channels: Option<Vec<Channel>>,
    /// What to say; or give `template` and `data` instead.
    #[serde(default)]
    pub content: Option<ContentRequest>,
    /// A template from `[templates].dir`: each chosen channel gets its own
    /// variant, rendered with `data` in the customer's language.
    #[serde(default)]
    pub template: Option<String>,
    /// The template's variables.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub data: serde_json::Map<String, serde_json::Value>,
    /// BCP 47, e.g. `nl-BE`: the template's language (default: the customer's `locale`).
    #[serde(default)]
    pub locale: Option<String>,
    /// Same as the `Idempotency-Key` header.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// At most one message per recipient and key within `messages.dedup_window_secs`.
    #[serde(default)]
    pub dedup_key: Option<String>,
    /// `POST /v1/cancellations` with this key cancels the message while it is pending.
    #[serde(default)]
    pub cancel_key: Option<String>,
    /// RFC 3339: hold the message until then.
    #[serde(default)]
    pub send_at: Option<String>,
    /// Seconds, or a duration like `"2h"`: not delivered by then means `expired`.
    #[serde(default)]
    pub ttl: Option<Ttl>,
    /// Where status changes are posted (default: `callbacks.default_url`).
    #[serde(default)]
    pub callback_url: Option<String>,
    /// At most one message of this group per customer (or address) per
    /// window, across journeys, broadcasts and channels: the 10%-by-email,
    /// 25%-by-SMS case. A second is answered as a duplicate and not sent.
    #[serde(default)]
    pub offer_group: Option<OfferGroup>,
    /// Double opt-in: this message asks its customer for consent in a
    /// category ("Reply YES to get our offers by SMS"); their YES on the
    /// channel it reached them by, within `window`, grants it.
    #[serde(default)]
    pub consent_request: Option<ConsentRequestBody>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentRequestBody {
    /// The category the customer is asked to consent to.
    pub category: String,
    /// How long a YES counts: a duration like `"24h"` (default), at most `"7d"`.
    #[serde(default)]
    pub window: Option<String>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferGroup {
    pub name: String,
    /// A duration like `"30d"`.
    pub window: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Ttl {
    Seconds(u64),
    Text(String),
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

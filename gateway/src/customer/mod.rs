//! Customers as the platform describes them (profiles, addresses, consent)
//! and the addresses nobody may message (the suppression list). Routing and
//! the store both speak these types; neither owns them.

pub mod double_opt_in;
pub mod profile;
pub mod signed;
pub mod suppression;
pub mod traits;
pub mod unsubscribe;

pub use profile::{
    Addresses, Consent, ConsentStatus, Invalid, Profile, PushAddress, PushFormat,
    WebPushSubscription, check_id, keyword_source,
};
pub use suppression::{Suppression, SuppressionReason, Written, address_key, email};

//! What a customer may choose themselves, and what a choice writes: for
//! each configured category, on each channel they can be reached on,
//! whether they get it. The preference page (`/p/{token}`) and
//! `GET/PUT /v1/customers/{id}/preferences` both read and write through
//! here, so a platform drawing its own page gets exactly what ours shows.

use crate::customer::{Consent, ConsentStatus, Profile};
use crate::message::Channel;
use crate::routing::policy::{CategoryConfig, ConsentMode, DEFAULT_CATEGORY, Policy};
use serde::Serialize;
use std::collections::BTreeMap;

/// Where a choice made here comes from, as consent records it.
pub const SOURCE: &str = "preference_center";

/// Locales the page's own words are shipped in; the first is the fallback.
pub const LOCALES: [&str; 2] = ["en", "nl"];

/// One category as the customer sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategoryChoice {
    pub name: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `opt-in`: nothing is sent without a yes; `opt-out`: sent unless no.
    pub consent: &'static str,
    pub channels: Vec<ChannelChoice>,
}

/// One channel of a category: whether the customer gets it, and what they
/// said (nothing yet: the category's default holds).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelChoice {
    pub channel: Channel,
    pub label: &'static str,
    pub subscribed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub said: Option<ConsentStatus>,
}

/// The page's words in `locale` (its language, else English).
pub fn language(locale: Option<&str>) -> &'static str {
    let asked = locale
        .and_then(|l| l.split(['-', '_']).next())
        .map(str::to_ascii_lowercase);
    LOCALES
        .into_iter()
        .find(|l| asked.as_deref() == Some(*l))
        .unwrap_or(LOCALES[0])
}

/// A channel's name for a person.
pub fn label(channel: Channel, language: &str) -> &'static str {
    let dutch = language == "nl";
    match channel {
        Channel::Email => {
            if dutch {
                "E-mail"
            } else {
                "Email"
            }
        }
        Channel::Sms => "SMS",
        Channel::Whatsapp => "WhatsApp",
        Channel::Push => {
            if dutch {
                "Pushberichten"
            } else {
                "Push notifications"
            }
        }
        Channel::Inbox => {
            if dutch {
                "Berichten in de app"
            } else {
                "Inbox in the app"
            }
        }
        Channel::InApp => {
            if dutch {
                "Meldingen in de app"
            } else {
                "Banners in the app"
            }
        }
    }
}

/// The channels the customer can be reached on: those they have an
/// address for, and their feed when the gateway has one.
pub fn channels(profile: &Profile, feed: bool) -> Vec<Channel> {
    Channel::ALL
        .into_iter()
        .filter(|c| {
            if c.is_feed() {
                feed
            } else {
                profile.addresses.has(*c)
            }
        })
        .collect()
}

/// The categories a customer chooses among: every configured one but the
/// implicit `transactional` (messages they cannot refuse and still be a
/// customer), unless the configuration gives it a title to show.
fn shown(policy: &Policy) -> impl Iterator<Item = (&String, &CategoryConfig)> {
    policy
        .categories
        .iter()
        .filter(|(name, c)| name.as_str() != DEFAULT_CATEGORY || !c.title.is_empty())
}

/// A text of the category per locale: the customer's language, else
/// English, else any.
fn localised(texts: &BTreeMap<String, String>, language: &str) -> Option<String> {
    texts
        .get(language)
        .or_else(|| texts.get("en"))
        .or_else(|| texts.values().next())
        .cloned()
}

/// Everything the customer may choose, as they stand now.
pub fn choices(profile: &Profile, policy: &Policy, feed: bool) -> Vec<CategoryChoice> {
    let language = language(profile.locale.as_deref());
    let channels = channels(profile, feed);
    shown(policy)
        .map(|(name, category)| CategoryChoice {
            name: name.clone(),
            title: localised(&category.title, language).unwrap_or_else(|| name.clone()),
            description: localised(&category.description, language),
            consent: match category.consent {
                ConsentMode::OptIn => "opt-in",
                ConsentMode::OptOut => "opt-out",
            },
            channels: channels
                .iter()
                .map(|&channel| {
                    let said = profile
                        .consent
                        .get(&channel)
                        .and_then(|c| c.get(name))
                        .map(|c| c.status);
                    ChannelChoice {
                        channel,
                        label: label(channel, language),
                        subscribed: match said {
                            Some(status) => status == ConsentStatus::OptedIn,
                            None => category.consent == ConsentMode::OptOut,
                        },
                        said,
                    }
                })
                .collect(),
        })
        .collect()
}

/// A choice the customer cannot make: a category or channel not offered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct NotOffered {
    pub field: String,
    pub message: String,
}

/// The consent changes `wanted` (channel -> category -> subscribed)
/// makes, stamped `at`: only where it differs from what holds now, so
/// saving an unchanged page writes nothing. Anything not offered is refused.
pub fn changes(
    current: &[CategoryChoice],
    wanted: &BTreeMap<Channel, BTreeMap<String, bool>>,
    at: jiff::Timestamp,
) -> Result<Vec<(Channel, String, Consent)>, NotOffered> {
    let mut out = Vec::new();
    for (channel, by_category) in wanted {
        for (category, &subscribed) in by_category {
            let choice = current
                .iter()
                .find(|c| c.name == *category)
                .ok_or_else(|| NotOffered {
                    field: format!("{channel}.{category}"),
                    message: format!("no category {category:?} to choose"),
                })?;
            let now = choice
                .channels
                .iter()
                .find(|c| c.channel == *channel)
                .ok_or_else(|| NotOffered {
                    field: format!("{channel}.{category}"),
                    message: format!("the customer cannot be reached on {channel}"),
                })?;
            if now.subscribed != subscribed {
                out.push((
                    *channel,
                    category.clone(),
                    Consent {
                        status: if subscribed {
                            ConsentStatus::OptedIn
                        } else {
                            ConsentStatus::OptedOut
                        },
                        at,
                        source: Some(SOURCE.to_owned()),
                    },
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        let mut marketing = CategoryConfig::transactional();
        marketing.consent = ConsentMode::OptIn;
        marketing.title = BTreeMap::from([
            ("en".to_owned(), "Offers".to_owned()),
            ("nl".to_owned(), "Aanbiedingen".to_owned()),
        ]);
        Policy {
            categories: BTreeMap::from([
                ("marketing".to_owned(), marketing),
                (DEFAULT_CATEGORY.to_owned(), CategoryConfig::transactional()),
            ]),
            ..Policy::default()
        }
    }

    fn profile() -> Profile {
        let mut p = Profile::default();
        p.addresses.email = Some("a@example.com".into());
        p.addresses.phone = Some("+31612345678".into());
        p.locale = Some("nl-NL".into());
        p
    }

    #[test]
    fn a_customer_sees_their_categories_on_their_channels_in_their_language() {
        let shown = choices(&profile(), &policy(), false);
        assert_eq!(shown.len(), 1, "transactional is not a choice");
        assert_eq!(shown[0].title, "Aanbiedingen");
        let channels: Vec<Channel> = shown[0].channels.iter().map(|c| c.channel).collect();
        assert_eq!(channels, [Channel::Email, Channel::Sms]);
        assert!(
            shown[0].channels.iter().all(|c| !c.subscribed),
            "opt-in: nothing until a yes"
        );
    }

    #[test]
    fn only_what_differs_is_written_and_only_what_is_offered() {
        let at = jiff::Timestamp::UNIX_EPOCH;
        let current = choices(&profile(), &policy(), false);
        let wanted = BTreeMap::from([(
            Channel::Email,
            BTreeMap::from([("marketing".to_owned(), true)]),
        )]);
        let written = changes(&current, &wanted, at).unwrap();
        assert_eq!(written.len(), 1);
        assert_eq!(written[0].2.status, ConsentStatus::OptedIn);
        assert_eq!(written[0].2.source.as_deref(), Some(SOURCE));
        let push = BTreeMap::from([(
            Channel::Push,
            BTreeMap::from([("marketing".to_owned(), true)]),
        )]);
        assert!(changes(&current, &push, at).is_err(), "no push address");
        let unknown = BTreeMap::from([(
            Channel::Email,
            BTreeMap::from([("transactional".to_owned(), false)]),
        )]);
        assert!(changes(&current, &unknown, at).is_err());
    }
}

//! What a message says, per channel: the shared default with each channel's
//! variant over it, bounded before anything is stored.

use super::SendError;
use crate::message::{Channel, Content, ProviderTemplate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The longest text accepted; Twilio's own limit for one SMS body.
pub(super) const MAX_TEXT_CHARS: usize = 1600;

#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContentRequest {
    /// The shared default; a channel's variant overrides it field by field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Variant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms: Option<Variant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whatsapp: Option<Variant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<Variant>,
    /// The feed item: `subject` is its title, `text` its body; metadata
    /// `action_url` and `image_url` (https or http) and `data:*` go with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbox: Option<Variant>,
    /// The banner or modal shown while the app is open, read like `inbox`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_app: Option<Variant>,
    /// For every channel's connector; a variant's entries win.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<ProviderTemplate>,
}

/// Bounds on what is handed to connectors as metadata.
const MAX_METADATA_ENTRIES: usize = 32;
const MAX_METADATA_KEY: usize = 64;
const MAX_METADATA_VALUE: usize = 1024;
const MAX_TEMPLATE_PARAMETERS: usize = 32;

fn check_metadata(field: &str, metadata: &BTreeMap<String, String>) -> Result<(), SendError> {
    if metadata.len() > MAX_METADATA_ENTRIES {
        return Err(SendError::invalid(
            "invalid_metadata",
            field,
            format!("at most {MAX_METADATA_ENTRIES} entries"),
        ));
    }
    for (key, value) in metadata {
        let key_ok = (1..=MAX_METADATA_KEY).contains(&key.len())
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b));
        if !key_ok {
            return Err(SendError::invalid(
                "invalid_metadata",
                &format!("{field}.{key}"),
                format!("keys are 1-{MAX_METADATA_KEY} characters of A-Z, a-z, 0-9, _ - . :"),
            ));
        }
        if key.starts_with("sms:") {
            return Err(SendError::invalid(
                "reserved_metadata",
                &format!("{field}.{key}"),
                "sms: keys are the gateway's own: it tells SMS connectors the encoding and segments",
            ));
        }
        if let Some(header) = key.strip_prefix("header:")
            && RESERVED_HEADERS.contains(&header.to_ascii_lowercase().as_str())
        {
            return Err(SendError::invalid(
                "reserved_header",
                &format!("{field}.{key}"),
                format!("{header} is set from the message itself and cannot be overridden"),
            ));
        }
        if value.chars().count() > MAX_METADATA_VALUE {
            return Err(SendError::invalid(
                "invalid_metadata",
                &format!("{field}.{key}"),
                format!("values are at most {MAX_METADATA_VALUE} characters"),
            ));
        }
    }
    Ok(())
}

/// Mail headers the provider sets from the message itself: a `header:`
/// override of one would send another sender, recipient or subject than the
/// message says (SendGrid refuses most of them anyway, after the fact).
const RESERVED_HEADERS: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "reply-to",
    "sender",
    "return-path",
    "content-type",
    "content-transfer-encoding",
    "dkim-signature",
    "received",
    "x-sg-id",
    "x-sg-eid",
    "message-id",
    "date",
    "mime-version",
    // The gateway's one-click unsubscribe (RFC 8058): a caller's own would
    // send the customer's click elsewhere, or hide the link.
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-id",
    // SendGrid's own instructions, which can add recipients and rewrite the message.
    "x-smtpapi",
];

/// No control or bidi-override characters anywhere a person or a log reads.
pub(super) fn check_characters(channel: Channel, content: &Content) -> Result<(), SendError> {
    let fields = [
        ("text", Some(content.text.as_str())),
        ("subject", content.subject.as_deref()),
        ("html", content.html.as_deref()),
    ];
    let metadata = content
        .metadata
        .values()
        .map(|v| ("metadata", Some(v.as_str())));
    let parameters = content
        .template
        .iter()
        .flat_map(|t| t.parameters.iter().chain([&t.name]))
        .map(|p| ("template", Some(p.as_str())));
    for (field, value) in fields.into_iter().chain(metadata).chain(parameters) {
        if let Some(why) = value.and_then(crate::message::unsafe_text) {
            return Err(SendError::invalid(
                "unsafe_text",
                &format!("content.{channel}.{field}"),
                format!("content.{field} {why}"),
            ));
        }
    }
    // A subject and metadata become mail headers: a line break in one would
    // start a header of the caller's own (`Bcc:`), whatever the provider does.
    let one_line = std::iter::once(("subject", content.subject.as_deref())).chain(
        content
            .metadata
            .values()
            .map(|v| ("metadata", Some(v.as_str()))),
    );
    for (field, value) in one_line {
        if value.is_some_and(|v| v.contains(['\r', '\n'])) {
            return Err(SendError::invalid(
                "unsafe_text",
                &format!("content.{channel}.{field}"),
                format!("content.{field} is one line: it may not contain CR or LF"),
            ));
        }
    }
    Ok(())
}

fn check_template(field: &str, template: &ProviderTemplate) -> Result<(), SendError> {
    let invalid = |message: String| SendError::invalid("invalid_template", field, message);
    if !(1..=512).contains(&template.name.len()) {
        return Err(invalid("name must be 1-512 characters".into()));
    }
    let language_ok = (2..=15).contains(&template.language.len())
        && template
            .language
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !language_ok {
        return Err(invalid("language must be a code like en_US".into()));
    }
    if template.parameters.len() > MAX_TEMPLATE_PARAMETERS
        || template
            .parameters
            .iter()
            .any(|p| p.chars().count() > MAX_METADATA_VALUE)
    {
        return Err(invalid(format!(
            "at most {MAX_TEMPLATE_PARAMETERS} parameters of at most {MAX_METADATA_VALUE} characters"
        )));
    }
    Ok(())
}

impl ContentRequest {
    /// The shared default alone, for a message that goes nowhere (suppressed).
    pub fn shared(&self) -> Content {
        Content {
            subject: self.subject.clone(),
            text: self.text.clone().unwrap_or_default(),
            html: self.html.clone(),
            metadata: self.metadata.clone(),
            template: None,
        }
    }

    fn variant(&self, channel: Channel) -> Option<&Variant> {
        match channel {
            Channel::Email => self.email.as_ref(),
            Channel::Sms => self.sms.as_ref(),
            Channel::Whatsapp => self.whatsapp.as_ref(),
            Channel::Push => self.push.as_ref(),
            Channel::Inbox => self.inbox.as_ref(),
            Channel::InApp => self.in_app.as_ref(),
        }
    }

    /// The content `channel` gets: its variant over the shared default.
    pub fn for_channel(&self, channel: Channel) -> Result<Content, SendError> {
        let variant = self.variant(channel);
        let pick = |own: Option<&Option<String>>, shared: &Option<String>| {
            own.and_then(|o| o.clone()).or_else(|| shared.clone())
        };
        let text = pick(variant.map(|v| &v.text), &self.text).ok_or_else(|| {
            SendError::invalid(
                "missing_content",
                &format!("content.{channel}.text"),
                format!("no text for {channel}: give content.text or content.{channel}.text"),
            )
        })?;
        let field = if variant.is_some_and(|v| v.text.is_some()) {
            format!("content.{channel}.text")
        } else {
            "content.text".to_owned()
        };
        if text.trim().is_empty() {
            return Err(SendError::invalid(
                "empty_text",
                &field,
                format!("{field} is empty"),
            ));
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(SendError::invalid(
                "text_too_long",
                &field,
                format!("{field} exceeds {MAX_TEXT_CHARS} characters"),
            ));
        }
        check_metadata("content.metadata", &self.metadata)?;
        let mut metadata = self.metadata.clone();
        if let Some(variant) = variant {
            check_metadata(&format!("content.{channel}.metadata"), &variant.metadata)?;
            metadata.extend(variant.metadata.clone());
            if metadata.len() > MAX_METADATA_ENTRIES {
                return Err(SendError::invalid(
                    "invalid_metadata",
                    &format!("content.{channel}.metadata"),
                    format!("at most {MAX_METADATA_ENTRIES} entries with content.metadata"),
                ));
            }
        }
        let template = variant.and_then(|v| v.template.clone());
        if let Some(template) = &template {
            check_template(&format!("content.{channel}.template"), template)?;
        }
        let content = Content {
            subject: pick(variant.map(|v| &v.subject), &self.subject),
            text,
            html: pick(variant.map(|v| &v.html), &self.html),
            metadata,
            template,
        };
        check_characters(channel, &content)?;
        if channel.is_feed() {
            check_feed_links(channel, &content)?;
        }
        Ok(content)
    }
}

/// A feed item's links are opened by the customer's app or browser: only
/// web links, so no `javascript:` URL reaches a page that shows the item.
pub(crate) fn check_feed_links(channel: Channel, content: &Content) -> Result<(), SendError> {
    for key in crate::feed::LINKS {
        let Some(url) = content.metadata.get(key) else {
            continue;
        };
        if !crate::feed::is_web_link(url) {
            return Err(SendError::invalid(
                "invalid_url",
                &format!("content.{channel}.metadata.{key}"),
                format!("{key} must be an absolute https or http URL"),
            ));
        }
    }
    Ok(())
}

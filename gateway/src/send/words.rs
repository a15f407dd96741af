//! What each channel of a send says: the request's own content, or a
//! template rendered in the customer's language; SMS text shaped for the air
//! (the category's opt-out footer, smart encoding, segments counted and
//! bounded); email of opt-in categories with a one-click unsubscribe link.

use super::SendError;
use super::content::{ContentRequest, MAX_TEXT_CHARS, check_characters};
use crate::customer::unsubscribe::{self, Unsubscribe};
use crate::locale;
use crate::message::{Channel, Content};
use crate::routing::policy::{CategoryConfig, ConsentMode};
use crate::sms::{self, Segments};
use crate::templates::{Extras, RenderError, Template, Templates};
use serde_json::{Map, Value, json};

/// The longest email body (text or HTML) a template may render.
const MAX_EMAIL_CHARS: usize = 512 * 1024;

/// Where the words come from.
pub enum Source<'a> {
    Inline(&'a ContentRequest),
    Template {
        templates: &'a Templates,
        template: &'a Template,
        data: &'a Map<String, Value>,
    },
}

/// How one-click unsubscribe links are made (`[unsubscribe]`).
#[derive(Debug, Clone)]
pub struct UnsubscribeLinks {
    pub secret: Vec<u8>,
    pub mailto: Option<String>,
    pub valid_for: i64,
    /// The gateway's public URL, without a trailing slash.
    pub base_url: String,
}

/// The words of one send, per channel.
pub struct Words<'a> {
    source: Source<'a>,
    category: &'a CategoryConfig,
    /// The customer's locales, most specific first, then the template's default.
    chain: Vec<String>,
    /// The locale the send asked for, or the customer's.
    requested: Option<String>,
    region: String,
    extras: Extras,
    /// `List-Unsubscribe` for email, when the category is opt-in.
    list_unsubscribe: Option<String>,
}

/// One channel's content, and what rendering it found out.
pub struct ChannelWords {
    pub content: Content,
    /// The template locale it was rendered in.
    pub locale: Option<String>,
    /// SMS only.
    pub segments: Option<Segments>,
}

/// Who reads a send: what picks its language, footer and unsubscribe link.
pub struct Reader<'r> {
    /// Only a customer gets an unsubscribe link: it opts a customer out,
    /// not an address.
    pub customer_id: Option<&'r str>,
    /// The send's `locale`, else the customer's.
    pub locale: Option<&'r str>,
    /// The routing region, for the SMS footer.
    pub region: String,
}

impl<'a> Words<'a> {
    /// `links` makes an unsubscribe link when the category is opt-in and
    /// the reader is a customer.
    pub fn new(
        source: Source<'a>,
        (category_name, category): (&str, &'a CategoryConfig),
        reader: Reader<'_>,
        links: Option<&UnsubscribeLinks>,
        now: i64,
    ) -> Self {
        let default = match &source {
            Source::Template { template, .. } => template.default_locale.as_str(),
            Source::Inline(_) => "default",
        };
        let chain = locale::chain(reader.locale, default);
        let link = match (links, reader.customer_id) {
            (Some(links), Some(customer)) if category.consent == ConsentMode::OptIn => {
                let token = unsubscribe::sign(
                    &links.secret,
                    &Unsubscribe {
                        customer_id: customer.to_owned(),
                        category: category_name.to_owned(),
                        expires_at: now.saturating_add(links.valid_for),
                    },
                );
                Some((
                    format!("{}/u/{token}", links.base_url),
                    links.mailto.as_ref(),
                ))
            }
            _ => None,
        };
        // A template may link the customer's own preference page (signed
        // only for one that does); inline content has no placeholder for it.
        let preferences_url = match (links, reader.customer_id, &source) {
            (Some(links), Some(customer), Source::Template { template, .. })
                if template.links_preferences =>
            {
                Some(format!(
                    "{}/p/{}",
                    links.base_url,
                    crate::customer::signed::sign(
                        &links.secret,
                        crate::customer::signed::Purpose::Preferences,
                        &[customer],
                        now.saturating_add(links.valid_for),
                    )
                ))
            }
            _ => None,
        };
        let list_unsubscribe = link.as_ref().map(|(url, mailto)| match mailto {
            Some(mailto) => format!("<{url}>, <mailto:{mailto}?subject=unsubscribe>"),
            None => format!("<{url}>"),
        });
        Words {
            source,
            category,
            chain,
            requested: reader.locale.map(locale::normalise),
            region: reader.region,
            extras: Extras {
                customer_id: reader.customer_id.map(str::to_owned),
                unsubscribe_url: link.map(|(url, _)| url),
                preferences_url,
            },
            list_unsubscribe,
        }
    }

    /// What `channel` says, or why it cannot say anything.
    pub fn for_channel(&self, channel: Channel) -> Result<ChannelWords, SendError> {
        let (mut content, locale) = match &self.source {
            Source::Inline(request) => (request.for_channel(channel)?, None),
            Source::Template {
                templates,
                template,
                data,
            } => {
                let rendered = templates
                    .render(&template.name, channel, &self.chain, data, &self.extras)
                    .map_err(render_error)?;
                check_rendered(channel, &rendered.content)?;
                (rendered.content, Some(rendered.locale))
            }
        };
        let mut segments = None;
        match channel {
            Channel::Sms => {
                let (text, shape) = self.shape_sms(&content.text)?;
                content.text = text;
                segments = Some(shape);
            }
            Channel::Email => {
                if let Some(header) = &self.list_unsubscribe {
                    content
                        .metadata
                        .insert("header:List-Unsubscribe".into(), header.clone());
                    content.metadata.insert(
                        "header:List-Unsubscribe-Post".into(),
                        "List-Unsubscribe=One-Click".into(),
                    );
                }
            }
            _ => {}
        }
        Ok(ChannelWords {
            content,
            locale,
            segments,
        })
    }

    /// The footer added, look-alikes replaced, segments counted and bounded.
    fn shape_sms(&self, text: &str) -> Result<(String, Segments), SendError> {
        let mut text = text.to_owned();
        if let Some(footer) = self.category.sms_footer(&self.region, &self.chain) {
            text = format!("{text}\n{footer}");
        }
        if self.category.smart_encoding {
            text = sms::smart_encode(&text).into_owned();
        }
        let shape = sms::segments(&text);
        if let Some(max) = self.category.max_segments
            && shape.segments > max
        {
            return Err(SendError::invalid(
                "too_many_segments",
                self.sms_field(),
                format!(
                    "the SMS text takes {} {:?} segments ({} units); the category allows {max}",
                    shape.segments, shape.encoding, shape.units
                ),
            ));
        }
        Ok((text, shape))
    }

    fn sms_field(&self) -> &'static str {
        match self.source {
            Source::Inline(request) if request.sms.as_ref().is_some_and(|v| v.text.is_some()) => {
                "content.sms.text"
            }
            Source::Inline(_) => "content.text",
            Source::Template { .. } => "template",
        }
    }

    /// For `GET /v1/messages/{id}`: the template, the locale asked for and
    /// what each chosen channel rendered. `None` for inline content.
    pub fn summary(&self, rendered: &[(Channel, &ChannelWords)]) -> Option<Value> {
        let Source::Template { template, .. } = &self.source else {
            return None;
        };
        let mut channels = Map::new();
        for (channel, words) in rendered {
            let mut entry = serde_json::to_value(&words.content).unwrap_or_default();
            if let Value::Object(entry) = &mut entry {
                entry.insert("locale".into(), json!(words.locale));
                if let Some(segments) = words.segments {
                    entry.insert("encoding".into(), json!(segments.encoding));
                    entry.insert("segments".into(), json!(segments.segments));
                }
            }
            channels.insert(channel.as_str().into(), entry);
        }
        let first_locale = rendered.first().and_then(|(_, w)| w.locale.clone());
        Some(json!({
            "name": template.name,
            "locale": first_locale,
            "requested_locale": self.requested,
            "channels": channels,
        }))
    }
}

/// A rendered text within what the channel takes, with no control characters.
fn check_rendered(channel: Channel, content: &Content) -> Result<(), SendError> {
    let limit = match channel {
        Channel::Email => MAX_EMAIL_CHARS,
        _ => MAX_TEXT_CHARS,
    };
    let longest = content
        .text
        .chars()
        .count()
        .max(content.html.as_deref().map_or(0, |h| h.chars().count()));
    if longest > limit {
        return Err(SendError::invalid(
            "text_too_long",
            "template",
            format!("the {channel} variant renders {longest} characters; at most {limit}"),
        ));
    }
    if content.text.trim().is_empty() && content.template.is_none() {
        return Err(SendError::invalid(
            "empty_text",
            "template",
            format!("the {channel} variant renders no text"),
        ));
    }
    check_characters(channel, content)
}

fn render_error(e: RenderError) -> SendError {
    let message = e.to_string();
    match e {
        RenderError::UnknownTemplate(_) => {
            SendError::invalid("unknown_template", "template", message)
        }
        RenderError::NoVariant { .. } => SendError::invalid("missing_variant", "template", message),
        RenderError::MissingVariable { variable, .. } => {
            SendError::invalid("missing_variable", &format!("data.{variable}"), message)
        }
        RenderError::Failed { .. } => SendError::invalid("template_error", "data", message),
    }
}

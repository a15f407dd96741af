//! Message templates: one folder per template, one folder per locale in it,
//! one file per channel part, rendered with minijinja.
//!
//! ```text
//! config/templates/order_confirmation/
//!   template.toml        category, default locale, variables, example data,
//!                        an optional approved WhatsApp template mapping
//!   en/email.subject  en/email.html  en/email.txt  en/sms.txt
//!   en/push.title  en/push.body  en/whatsapp.txt
//!   en/inbox.title  en/inbox.body     the feed item (inbox and in-app)
//!   nl/...
//! ```
//!
//! Every channel gets its own words: a send renders the variant of each
//! channel its plan chose, so a fallback from email to SMS sends the SMS
//! text, not the email squeezed into an SMS. A channel's parts all come
//! from one locale, the first of the customer's fallback chain that has the
//! channel ([`crate::locale::chain`]). Undefined variables are errors, never empty
//! text; only `email.html` is HTML-escaped.

mod load;

pub use load::{TemplateError, load};

use crate::message::{Channel, Content, ProviderTemplate};
use minijinja::Environment;
use std::collections::{BTreeMap, BTreeSet};

/// The files a locale folder may hold.
pub const PARTS: [&str; 9] = [
    "email.subject",
    "email.html",
    "email.txt",
    "sms.txt",
    "push.title",
    "push.body",
    "whatsapp.txt",
    "inbox.title",
    "inbox.body",
];

/// Variables every template may use without declaring them.
pub const BUILTINS: [&str; 4] = [
    "locale",
    "customer_id",
    "unsubscribe_url",
    "preferences_url",
];

/// Every template of a configuration, compiled.
#[derive(Default)]
pub struct Templates {
    templates: BTreeMap<String, Template>,
    env: Environment<'static>,
}

/// One template folder.
#[derive(Debug, Clone)]
pub struct Template {
    pub name: String,
    /// The category its messages are sent in, unless the send says otherwise.
    pub category: String,
    pub default_locale: String,
    /// Variables a send's `data` must have.
    pub variables: Vec<String>,
    /// Variables a send's `data` may have.
    pub optional: Vec<String>,
    /// Data `crossgate check` renders every part with.
    pub example: serde_json::Map<String, serde_json::Value>,
    /// Locale to the parts its folder has.
    pub locales: BTreeMap<String, BTreeSet<&'static str>>,
    /// An approved WhatsApp template to send instead of free text.
    pub whatsapp: Option<WhatsappMapping>,
    /// Some part uses `{{ preferences_url }}`: only then is a link signed for a send.
    pub links_preferences: bool,
}

/// `[whatsapp]` in `template.toml`.
#[derive(Debug, Clone)]
pub struct WhatsappMapping {
    pub name: String,
    /// How many parameters there are; each is compiled as a template.
    pub parameters: usize,
    /// Locale to the language code WhatsApp knows the template by; a locale
    /// not listed is sent as itself with `_` (`pt-BR` -> `pt_BR`).
    pub languages: BTreeMap<String, String>,
}

/// A channel's content, rendered, and the locale it was rendered in.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub locale: String,
    pub content: Content,
}

/// Why a template could not be rendered for a send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("no template {0:?}")]
    UnknownTemplate(String),
    #[error("template {template:?} has no {channel} variant in {}", tried.join(", "))]
    NoVariant {
        template: String,
        channel: Channel,
        tried: Vec<String>,
    },
    #[error("template {template:?} needs data.{variable}")]
    MissingVariable { template: String, variable: String },
    #[error("{file}: {message}")]
    Failed { file: String, message: String },
}

/// What a template is rendered with besides the send's `data`.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    pub customer_id: Option<String>,
    /// The one-click unsubscribe link, when the send has one.
    pub unsubscribe_url: Option<String>,
    /// The customer's own preference page, when the send is for a customer
    /// and preference links are signed (`[inbox] secret`).
    pub preferences_url: Option<String>,
}

/// The templates of `[templates].dir`; none without it.
pub fn for_config(config: &crate::config::Config) -> Result<Templates, Vec<TemplateError>> {
    let Some(dir) = &config.templates.dir else {
        return Ok(Templates::default());
    };
    let categories = config.policy().categories.into_keys().collect();
    load(dir, &categories)
}

impl Templates {
    pub fn get(&self, name: &str) -> Option<&Template> {
        self.templates.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Template> {
        self.templates.values()
    }

    pub fn len(&self) -> usize {
        self.templates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    /// `channel`'s content from template `name`, in the first locale of
    /// `chain` that has the channel.
    pub fn render(
        &self,
        name: &str,
        channel: Channel,
        chain: &[String],
        data: &serde_json::Map<String, serde_json::Value>,
        extras: &Extras,
    ) -> Result<Rendered, RenderError> {
        let template = self
            .templates
            .get(name)
            .ok_or_else(|| RenderError::UnknownTemplate(name.to_owned()))?;
        if let Some(missing) = template.missing_variable(data) {
            return Err(RenderError::MissingVariable {
                template: name.to_owned(),
                variable: missing.to_owned(),
            });
        }
        let locale = chain
            .iter()
            .find(|locale| template.has(channel, locale))
            .ok_or_else(|| RenderError::NoVariant {
                template: name.to_owned(),
                channel,
                tried: chain.to_vec(),
            })?;
        let context = context(data, locale, extras);
        let part = |file: &str| -> Result<Option<String>, RenderError> {
            if !template.locales[locale].contains(file) {
                return Ok(None);
            }
            let key = format!("{name}/{locale}/{file}");
            self.render_one(&key, &context).map(Some)
        };
        let content = match channel {
            Channel::Email => {
                let subject = part("email.subject")?.map(|s| one_line(&s));
                let html = part("email.html")?;
                let text = match (part("email.txt")?, &html) {
                    (Some(text), _) => text,
                    (None, Some(html)) => text_of(html),
                    (None, None) => String::new(),
                };
                Content {
                    subject,
                    text,
                    html,
                    ..Content::default()
                }
            }
            Channel::Sms => Content {
                text: part("sms.txt")?.unwrap_or_default().trim().to_owned(),
                ..Content::default()
            },
            Channel::Push => Content {
                subject: part("push.title")?.map(|s| one_line(&s)),
                text: part("push.body")?.unwrap_or_default().trim().to_owned(),
                ..Content::default()
            },
            // One feed item's words, whether kept in the inbox or shown in-app.
            Channel::Inbox | Channel::InApp => Content {
                subject: part("inbox.title")?.map(|s| one_line(&s)),
                text: part("inbox.body")?.unwrap_or_default().trim().to_owned(),
                ..Content::default()
            },
            Channel::Whatsapp => {
                let text = part("whatsapp.txt")?.map(|t| t.trim().to_owned());
                let template = match &template.whatsapp {
                    Some(mapping) => Some(self.whatsapp(name, mapping, locale, &context)?),
                    None => None,
                };
                let text = text.unwrap_or_else(|| {
                    template.as_ref().map_or_else(String::new, |t| {
                        format!("{} ({})", t.name, t.parameters.join(", "))
                    })
                });
                Content {
                    text,
                    template,
                    ..Content::default()
                }
            }
        };
        Ok(Rendered {
            locale: locale.clone(),
            content,
        })
    }

    fn whatsapp(
        &self,
        name: &str,
        mapping: &WhatsappMapping,
        locale: &str,
        context: &minijinja::Value,
    ) -> Result<ProviderTemplate, RenderError> {
        let parameters = (0..mapping.parameters)
            .map(|i| self.render_one(&format!("{name}/whatsapp.parameters[{i}]"), context))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ProviderTemplate {
            name: mapping.name.clone(),
            language: mapping
                .languages
                .get(locale)
                .cloned()
                .unwrap_or_else(|| locale.replace('-', "_")),
            parameters: parameters.into_iter().map(|p| one_line(&p)).collect(),
        })
    }

    fn render_one(&self, key: &str, context: &minijinja::Value) -> Result<String, RenderError> {
        let failed = |e: minijinja::Error| RenderError::Failed {
            file: match e.line() {
                Some(line) => format!("{key}:{line}"),
                None => key.to_owned(),
            },
            message: e
                .detail()
                .map_or_else(|| e.kind().to_string(), str::to_owned),
        };
        self.env
            .get_template(key)
            .map_err(failed)?
            .render(context)
            .map_err(failed)
    }
}

impl Template {
    /// The first variable the template needs that `data` lacks.
    pub fn missing_variable(
        &self,
        data: &serde_json::Map<String, serde_json::Value>,
    ) -> Option<&str> {
        self.variables
            .iter()
            .find(|v| !data.contains_key(*v))
            .map(String::as_str)
    }

    /// Whether `locale`'s folder has what `channel` needs.
    pub fn has(&self, channel: Channel, locale: &str) -> bool {
        let Some(parts) = self.locales.get(locale) else {
            return false;
        };
        match channel {
            Channel::Email => {
                parts.contains("email.subject")
                    && (parts.contains("email.html") || parts.contains("email.txt"))
            }
            Channel::Sms => parts.contains("sms.txt"),
            Channel::Push => parts.contains("push.body"),
            Channel::Inbox | Channel::InApp => parts.contains("inbox.body"),
            // A mapping serves every locale; a text serves its own.
            Channel::Whatsapp => self.whatsapp.is_some() || parts.contains("whatsapp.txt"),
        }
    }

    /// The channels some locale of this template can send.
    pub fn channels(&self) -> Vec<Channel> {
        Channel::ALL
            .into_iter()
            .filter(|c| self.locales.keys().any(|l| self.has(*c, l)))
            .collect()
    }
}

/// The send's data with the built-in variables over it.
fn context(
    data: &serde_json::Map<String, serde_json::Value>,
    locale: &str,
    extras: &Extras,
) -> minijinja::Value {
    let mut context = data.clone();
    context.insert("locale".into(), locale.into());
    if let Some(id) = &extras.customer_id {
        context.insert("customer_id".into(), id.as_str().into());
    }
    if let Some(url) = &extras.unsubscribe_url {
        context.insert("unsubscribe_url".into(), url.as_str().into());
    }
    if let Some(url) = &extras.preferences_url {
        context.insert("preferences_url".into(), url.as_str().into());
    }
    minijinja::Value::from_serialize(&context)
}

/// A subject or title on one line: a template's line breaks and runs of
/// spaces collapse to single spaces.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The plain-text part of an email whose template has only its HTML: no
/// markdown-like decoration, links as numbered footnotes with whole URLs.
fn text_of(html: &str) -> String {
    html2text::config::plain_no_decorate()
        .link_footnotes(true)
        .no_link_wrapping()
        .string_from_read(html.as_bytes(), 78)
        .map(|text| text.trim().to_owned())
        .unwrap_or_default()
}

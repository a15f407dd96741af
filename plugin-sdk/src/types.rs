//! Plain Rust mirrors of the contract's records, so plugin code and its
//! native tests never touch generated bindings.

use std::fmt;

/// The channel a connector serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Email,
    Sms,
    Whatsapp,
    Push,
}

/// Log severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// A provider-side template (WhatsApp approved template, SendGrid dynamic template).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProviderTemplate {
    pub name: String,
    pub language: String,
    pub parameters: Vec<String>,
}

/// One attempt to hand one message to the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Stable across attempts: pass it to the provider as an idempotency key where it has one.
    pub id: String,
    /// 1 for the first attempt on this connector.
    pub attempt: u32,
    pub channel: Channel,
    /// The address on this channel: E.164 phone number, email address, push token.
    pub to: String,
    pub subject: Option<String>,
    pub text: String,
    pub html: Option<String>,
    pub template: Option<ProviderTemplate>,
    pub metadata: Vec<(String, String)>,
    /// The number, short code, sender ID or WhatsApp number the gateway's
    /// sender pool chose for this recipient; `None`: the connector's own
    /// configured sender.
    pub sender: Option<String>,
}

impl Message {
    /// A plain text message, handy in tests.
    pub fn text(channel: Channel, to: &str, text: &str) -> Self {
        Message {
            id: "msg_test".to_owned(),
            attempt: 1,
            channel,
            to: to.to_owned(),
            subject: None,
            text: text.to_owned(),
            html: None,
            template: None,
            metadata: Vec::new(),
            sender: None,
        }
    }

    /// A metadata value by key.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// An SMS's encoding as the gateway counted it: `GSM-7` or `UCS-2`
    /// (a provider's "unicode" type). `None` on other channels and from
    /// gateways before this SDK.
    pub fn sms_encoding(&self) -> Option<&str> {
        self.metadata("sms:encoding")
    }

    /// How many SMS parts the text takes, as the gateway counted them.
    pub fn sms_segments(&self) -> Option<u32> {
        self.metadata("sms:segments")?.parse().ok()
    }
}

/// The provider accepted the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub provider_message_id: String,
    /// The provider's ids of the message's further parts, when it split the
    /// message (a long SMS sent as several): their delivery reports count
    /// for this message too.
    pub part_ids: Vec<String>,
}

impl Receipt {
    pub fn new(provider_message_id: impl Into<String>) -> Self {
        Receipt {
            provider_message_id: provider_message_id.into(),
            part_ids: Vec::new(),
        }
    }

    /// A message the provider split: the first part's id names it, the
    /// others' reports count for it as well.
    pub fn with_parts(mut self, part_ids: impl IntoIterator<Item = String>) -> Self {
        self.part_ids = part_ids.into_iter().collect();
        self
    }
}

/// Why the provider did not take the message, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub retryable: bool,
    pub retry_after_ms: Option<u64>,
    /// Machine-readable: the provider's error code where it has one.
    pub code: String,
    /// Human-readable, shown to operators in the message's attempt history.
    pub message: String,
}

impl Failure {
    /// A failure whose retryability the connector works out itself.
    pub fn new(code: impl Into<String>, message: impl Into<String>, retryable: bool) -> Self {
        Failure {
            retryable,
            retry_after_ms: None,
            code: code.into(),
            message: message.into(),
        }
    }

    /// Trying again later may succeed (rate limits, provider outages, timeouts).
    pub fn retryable(code: impl Into<String>, message: impl Into<String>) -> Self {
        Failure::new(code, message, true)
    }

    /// Trying again cannot succeed (invalid number, bad credentials, rejected content).
    pub fn permanent(code: impl Into<String>, message: impl Into<String>) -> Self {
        Failure::new(code, message, false)
    }

    /// The provider asked to wait this long before the next attempt.
    pub fn with_retry_after_ms(mut self, ms: Option<u64>) -> Self {
        self.retry_after_ms = ms;
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// What `describe` reports to the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub channel: Channel,
    pub sdk_version: String,
    pub description: String,
}

/// An inbound provider callback.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WebhookRequest {
    pub method: String,
    /// The public URL the provider called, for signature checks.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl WebhookRequest {
    /// A header value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as `application/x-www-form-urlencoded`.
    pub fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(&self.body).into_owned().collect()
    }
}

/// Provider-reported progress of an accepted message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Sent,
    Delivered,
    Read,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusEvent {
    pub provider_message_id: String,
    pub state: DeliveryState,
    pub code: Option<String>,
    pub description: Option<String>,
}

/// What a provider callback told the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundEvent {
    Status(StatusEvent),
    /// The address asked to stop receiving messages (a STOP keyword, an
    /// unsubscribe, a spam complaint). Nothing overrides it but an opt-in.
    OptOut(String),
    /// The address asked to receive messages again.
    OptIn(String),
    /// The provider says the address does not exist (a hard bounce): the
    /// gateway suppresses it on this connector's channel.
    Undeliverable {
        address: String,
        reason: String,
    },
    /// A customer wrote back (not a STOP or START keyword): the gateway
    /// records it as their `message.received` event and tells the platform.
    Message(InboundMessage),
}

/// A customer's reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InboundMessage {
    /// The sender's address: E.164 for phone numbers (`+31612345678`).
    pub from: String,
    pub text: String,
    /// The provider's id of the reply: a repeated callback is one reply.
    pub provider_message_id: String,
    /// The provider's id of the message this answers, when it says.
    pub in_reply_to: Option<String>,
}

/// Why a provider callback was not taken; the gateway answers the provider
/// with the matching HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookError {
    /// Not provably from the provider: a bad or missing signature (`401`).
    Unauthorized(String),
    /// From the provider, but not something this connector can read (`400`).
    Malformed(String),
    /// This connector takes no callbacks (`404`).
    Unsupported,
}

impl fmt::Display for WebhookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebhookError::Unauthorized(m) => write!(f, "unauthorized: {m}"),
            WebhookError::Malformed(m) => write!(f, "malformed: {m}"),
            WebhookError::Unsupported => {
                f.write_str("unsupported: this connector takes no webhooks")
            }
        }
    }
}

/// What a setting holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKind {
    Text,
    /// `http://` or `https://` and a host.
    Url,
    Number,
    /// `true` or `false`; read it with [`crate::Config::boolean`].
    Boolean,
    /// One of these words; read it with [`crate::Config::choice`].
    Choice(&'static [&'static str]),
}

/// A key of the connector's `[connectors.config]`, declared so the gateway
/// checks the operator's file before anything is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub name: &'static str,
    pub required: bool,
    pub secret: bool,
    pub kind: SettingKind,
}

impl Setting {
    /// An optional text setting.
    pub const fn text(name: &'static str) -> Setting {
        Setting {
            name,
            required: false,
            secret: false,
            kind: SettingKind::Text,
        }
    }

    /// An optional URL setting.
    pub const fn url(name: &'static str) -> Setting {
        Setting {
            kind: SettingKind::Url,
            ..Setting::text(name)
        }
    }

    /// An optional number setting.
    pub const fn number(name: &'static str) -> Setting {
        Setting {
            kind: SettingKind::Number,
            ..Setting::text(name)
        }
    }

    /// An optional `true` / `false` setting; read it with [`crate::Config::boolean`].
    pub const fn boolean(name: &'static str) -> Setting {
        Setting {
            kind: SettingKind::Boolean,
            ..Setting::text(name)
        }
    }

    /// An optional setting that holds one of `words` (a region, a mode);
    /// read it with [`crate::Config::choice`].
    pub const fn choice(name: &'static str, words: &'static [&'static str]) -> Setting {
        Setting {
            kind: SettingKind::Choice(words),
            ..Setting::text(name)
        }
    }

    pub const fn required(self) -> Setting {
        Setting {
            required: true,
            ..self
        }
    }

    pub const fn secret(self) -> Setting {
        Setting {
            secret: true,
            ..self
        }
    }
}

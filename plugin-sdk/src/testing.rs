//! Run a connector natively against scripted HTTP responses.
//!
//! ```text
//! use crossgate_plugin_sdk::{http::Response, testing::Harness, Channel, Message};
//!
//! let mut harness = Harness::new([("account_sid", "AC..."), ("auth_token", "t")]);
//! harness.respond(Response::new(201, r#"{"sid":"SM1"}"#));
//! let receipt = harness.deliver::<MyConnector>(&Message::text(Channel::Sms, "+3161234", "hi"));
//! assert_eq!(receipt.unwrap().provider_message_id, "SM1");
//! assert_eq!(harness.requests()[0].method, "POST");
//! ```
//!
//! The script is per thread, so tests run in parallel without seeing each
//! other's requests.

use crate::http::message::{HttpError, Request, Response};
use crate::{
    Config, ConfigError, Connector, Failure, InboundEvent, Level, Message, Receipt, WebhookError,
    WebhookRequest,
};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Script {
    responses: VecDeque<Result<Response, HttpError>>,
    requests: Vec<Request>,
    logs: Vec<(Level, String)>,
    /// The connector cache, shared by every call of one harness like the gateway's.
    cache: HashMap<String, (Vec<u8>, Instant)>,
    dead_addresses: Vec<(String, String)>,
}

thread_local! {
    static SCRIPT: RefCell<Script> = RefCell::new(Script::default());
}

/// A connector's configuration plus the HTTP responses its calls will get.
pub struct Harness {
    config: Config,
}

impl Harness {
    /// A harness with the given `[connectors.config]` entries and an empty script.
    pub fn new<'a>(config: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        SCRIPT.with(|s| *s.borrow_mut() = Script::default());
        Harness {
            config: config.into_iter().collect(),
        }
    }

    /// Queue the response for the next request.
    pub fn respond(&mut self, response: Response) -> &mut Self {
        SCRIPT.with(|s| s.borrow_mut().responses.push_back(Ok(response)));
        self
    }

    /// Queue a transport error (no response) for the next request.
    pub fn fail(&mut self, message: &str) -> &mut Self {
        let error = HttpError {
            message: message.to_owned(),
        };
        SCRIPT.with(|s| s.borrow_mut().responses.push_back(Err(error)));
        self
    }

    /// What the gateway checks when it loads the plugin: the declared
    /// settings ([`crate::settings::check`]), then `validate-config`.
    pub fn validate<C: Connector>(&self) -> Result<(), ConfigError> {
        self.settings_hold::<C>()?;
        C::new(&self.config).map(|_| ())
    }

    /// One `deliver` call, as the gateway makes it; a configuration the
    /// gateway would not load fails as `invalid_config`.
    pub fn deliver<C: Connector>(&mut self, msg: &Message) -> Result<Receipt, Failure> {
        self.settings_hold::<C>()
            .map_err(|e| Failure::permanent("invalid_config", e.to_string()))?;
        crate::deliver(C::new(&self.config).as_ref().map_err(Clone::clone), msg)
    }

    /// One `handle-webhook` call, as the gateway makes it.
    pub fn handle_webhook<C: Connector>(
        &mut self,
        req: &WebhookRequest,
    ) -> Result<Vec<InboundEvent>, WebhookError> {
        self.settings_hold::<C>()
            .map_err(|e| WebhookError::Malformed(format!("connector configuration: {e}")))?;
        crate::handle_webhook(C::new(&self.config).as_ref().map_err(Clone::clone), req)
    }

    /// The harness's configuration against `C::SETTINGS`, as the gateway
    /// holds it at load: the first mistake, if any.
    fn settings_hold<C: Connector>(&self) -> Result<(), ConfigError> {
        let declared: Vec<crate::settings::Declared<'_>> =
            C::SETTINGS.iter().map(Into::into).collect();
        match crate::settings::check(&declared, self.config.entries())
            .into_iter()
            .next()
        {
            Some(mistake) => Err(ConfigError::new(mistake.key, mistake.message)),
            None => Ok(()),
        }
    }

    /// Every request the connector sent so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        SCRIPT.with(|s| s.borrow().requests.clone())
    }

    /// Addresses the connector reported dead so far, with its reasons.
    pub fn dead_addresses(&self) -> Vec<(String, String)> {
        SCRIPT.with(|s| s.borrow().dead_addresses.clone())
    }

    /// What the connector cached under `key`, if it is still live.
    pub fn cached(&self, key: &str) -> Option<Vec<u8>> {
        cache_get(key)
    }

    /// Forget everything cached, as a gateway restart would.
    pub fn clear_cache(&mut self) {
        SCRIPT.with(|s| s.borrow_mut().cache.clear());
    }

    /// Every line the connector logged so far.
    pub fn logs(&self) -> Vec<(Level, String)> {
        SCRIPT.with(|s| s.borrow().logs.clone())
    }
}

pub(crate) fn send_http(req: Request) -> Result<Response, HttpError> {
    SCRIPT.with(|s| {
        let mut script = s.borrow_mut();
        script.requests.push(req.clone());
        script.responses.pop_front().unwrap_or_else(|| {
            Err(HttpError {
                message: format!(
                    "testing: no scripted response left for {} {}",
                    req.method, req.url
                ),
            })
        })
    })
}

pub(crate) fn log(level: Level, message: &str) {
    SCRIPT.with(|s| s.borrow_mut().logs.push((level, message.to_owned())));
}

pub(crate) fn cache_get(key: &str) -> Option<Vec<u8>> {
    SCRIPT.with(|s| {
        let script = s.borrow();
        let (value, expires) = script.cache.get(key)?;
        (*expires > Instant::now()).then(|| value.clone())
    })
}

pub(crate) fn cache_set(key: &str, value: &[u8], ttl: Duration) {
    let expires = Instant::now() + ttl;
    SCRIPT.with(|s| {
        s.borrow_mut()
            .cache
            .insert(key.to_owned(), (value.to_vec(), expires))
    });
}

pub(crate) fn report_dead_address(address: &str, reason: &str) {
    SCRIPT.with(|s| {
        s.borrow_mut()
            .dead_addresses
            .push((address.to_owned(), reason.to_owned()))
    });
}

//! `crossgate plugin new`: a connector crate, anywhere, that builds for
//! `wasm32-wasip2` and passes its tests as generated. It speaks the
//! provider simulator's example API (`POST /example/v1/messages`, see
//! `tests/src/example.rs`), so `crossgate plugin run` can deliver with it
//! before its author has changed a line; what to change is marked.
//!
//! The files carry what every connector needs and authors used to copy by
//! hand: `cdylib` (without it cargo writes no `.wasm`), the small release
//! profile, the 128 KiB stack, a standalone `[workspace]`.

use crate::message::Channel;
use std::path::{Path, PathBuf};

/// The SDK release a new crate asks the registry for (a test holds it to
/// `plugin-sdk/Cargo.toml`).
const SDK_VERSION: &str = "0.1";

/// Where the new crate takes the SDK from.
#[derive(Debug, Clone)]
pub enum Sdk {
    /// The Rust package registry.
    Registry,
    /// A checkout of Crossgate (its `plugin-sdk` folder).
    Path(PathBuf),
    /// A git repository holding Crossgate, at a tag.
    Git { url: String, tag: Option<String> },
}

impl Sdk {
    fn dependency(&self) -> String {
        match self {
            Sdk::Registry => format!("\"{SDK_VERSION}\""),
            Sdk::Path(path) => format!("{{ path = {} }}", toml_string(&path.display().to_string())),
            Sdk::Git {
                url,
                tag: Some(tag),
            } => {
                format!(
                    "{{ git = {}, tag = {} }}",
                    toml_string(url),
                    toml_string(tag)
                )
            }
            Sdk::Git { url, tag: None } => format!("{{ git = {} }}", toml_string(url)),
        }
    }
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// What to generate.
pub struct NewConnector<'a> {
    pub name: &'a str,
    pub channel: Channel,
    /// The folder the crate's folder goes in.
    pub parent: &'a Path,
    pub sdk: Sdk,
}

/// Write the crate; its folder, or why not (a bad name, a folder that
/// exists: nothing is overwritten).
pub fn new(c: &NewConnector<'_>) -> Result<PathBuf, String> {
    check_name(c.name)?;
    let variant = match c.channel {
        Channel::Sms => "Sms",
        Channel::Email => "Email",
        Channel::Whatsapp => "Whatsapp",
        Channel::Push => "Push",
        other => {
            return Err(format!(
                "a connector serves sms, email, whatsapp or push; {other} is the gateway's own"
            ));
        }
    };
    let dir = c.parent.join(c.name);
    if dir.exists() {
        return Err(format!("{} exists already: nothing written", dir.display()));
    }
    let type_name: String = c
        .name
        .split(['-', '_'])
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    let fill = |template: &str| {
        template
            .replace("{{name}}", c.name)
            .replace("{{crate}}", &c.name.replace('-', "_"))
            .replace("{{Type}}", &type_name)
            .replace("{{Channel}}", variant)
            .replace("{{channel}}", &c.channel.to_string())
            .replace("{{address}}", example_address(c.channel))
            .replace("{{sdk}}", &c.sdk.dependency())
    };
    let files = [
        ("Cargo.toml", CARGO_TOML),
        (".cargo/config.toml", CARGO_CONFIG),
        ("src/lib.rs", LIB_RS),
        ("src/tests.rs", TESTS_RS),
        ("dev.toml", DEV_TOML),
        ("README.md", README),
        (".gitignore", "/target\n/Cargo.lock\n"),
    ];
    for (path, template) in files {
        let path = dir.join(path);
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)
                .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
        }
        std::fs::write(&path, fill(template))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(dir)
}

/// A crate name cargo takes, which is also the connector's `NAME`.
fn check_name(name: &str) -> Result<(), String> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.len() <= 64;
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{name:?}: a connector's name starts with a lowercase letter and has only \
             lowercase letters, digits, - and _ (at most 64)"
        ))
    }
}

fn example_address(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "ada@example.com",
        Channel::Push => "device-token-1",
        _ => "+31612345678",
    }
}

const CARGO_TOML: &str = r#"[package]
name = "{{name}}"
description = "Crossgate {{channel}} connector"
version = "0.1.0"
edition = "2024"
license = "Apache-2.0"

[lib]
# cdylib: the .wasm component the gateway loads (without it cargo writes
# none); rlib: the native unit tests.
crate-type = ["cdylib", "rlib"]

[dependencies]
crossgate-plugin-sdk = {{sdk}}
serde = { version = "1", features = ["derive"] }
serde_json = "1"

# Small, fast components: the gateway compiles each once and caches it.
[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
panic = "abort"
strip = true

# Its own workspace, wherever the folder is.
[workspace]
"#;

const CARGO_CONFIG: &str = r#"# A 128 KiB stack instead of Rust's default 1 MiB: the stack sits at the
# bottom of the sandbox's memory, and with the default every call touches
# pages the gateway does not keep between calls.
[target.wasm32-wasip2]
rustflags = ["-C", "link-arg=-zstack-size=131072"]
"#;

const LIB_RS: &str = r#"//! A Crossgate {{channel}} connector.
//!
//! As generated it speaks the provider simulator's example API: `POST
//! {base_url}/example/v1/messages` with a bearer key and a JSON body, a JSON
//! answer with the provider's id, errors as `{"code": ..., "message": ...}`.
//! Change the three places marked CHANGE to your provider's API.

use crossgate_plugin_sdk::{
    Channel, Config, ConfigError, Connector, Failure, Message, Receipt, Setting, http,
};
use serde::Deserialize;

pub struct {{Type}} {
    base_url: String,
    api_key: String,
    from: Option<String>,
}

/// CHANGE: what the provider answers when it takes a message.
#[derive(Deserialize)]
struct Accepted {
    id: String,
}

/// CHANGE: the provider's error body.
#[derive(Deserialize)]
struct Refused {
    code: String,
    message: String,
}

crossgate_plugin_sdk::settings! {
    /// The connector's `[connectors.config]` keys, declared once: the
    /// gateway checks the operator's file against them, `new` reads them.
    /// Kinds: text, url, number, boolean, choice["a", "b"]; `required`
    /// or `optional`, `secret` for what should come from `env:` or `file:`.
    struct Settings {
        base_url: optional url,
        api_key: required secret text,
        from: optional text,
    }
}

impl Connector for {{Type}} {
    const NAME: &'static str = "{{name}}";
    const CHANNEL: Channel = Channel::{{Channel}};
    /// Every `[connectors.config]` key: the gateway refuses any other.
    const SETTINGS: &'static [Setting] = Settings::DECLARED;

    fn new(config: &Config) -> Result<Self, ConfigError> {
        let settings = Settings::read(config)?;
        Ok({{Type}} {
            // CHANGE: the provider's origin; `base_url` points it elsewhere.
            base_url: config.base_url("https://api.provider.example")?,
            api_key: settings.api_key,
            from: settings.from,
        })
    }

    fn deliver(&self, msg: &Message) -> Result<Receipt, Failure> {
        // CHANGE: the provider's request.
        let body = serde_json::json!({
            "to": msg.to,
            "from": self.from,
            "subject": msg.subject,
            "text": msg.text,
        });
        let response = http::Request::post(&format!("{}/example/v1/messages", self.base_url))
            .bearer_auth(&self.api_key)
            // The same on every attempt: the provider takes a message once.
            .header("Idempotency-Key", &msg.id)
            .json(body.to_string())
            .send()?;
        if response.is_success() {
            return Ok(Receipt::new(response.json::<Accepted>()?.id));
        }
        // The provider's own code and words, or its status when the body has none;
        // 429 and 5xx are retryable, other refusals permanent.
        let (code, message) = match serde_json::from_slice::<Refused>(&response.body) {
            Ok(refused) => (refused.code, refused.message),
            Err(_) => (format!("http_{}", response.status), response.text()),
        };
        Err(response.failure(code, message))
    }
}

crossgate_plugin_sdk::register_connector!({{Type}});

#[cfg(test)]
mod tests;
"#;

const TESTS_RS: &str = r##"//! The connector natively, against scripted provider answers: no wasm
//! runtime, no network.

use super::*;
use crossgate_plugin_sdk::http::Response;
use crossgate_plugin_sdk::testing::Harness;

fn harness() -> Harness {
    Harness::new([("api_key", "key-1"), ("base_url", "https://provider.test")])
}

fn message() -> Message {
    Message::text(Channel::{{Channel}}, "{{address}}", "Your order shipped")
}

#[test]
fn a_message_the_provider_takes_is_sent_with_its_id() {
    let mut h = harness();
    h.respond(Response::new(201, r#"{"id":"ex_1"}"#));
    let receipt = h.deliver::<{{Type}}>(&message()).unwrap();
    assert_eq!(receipt.provider_message_id, "ex_1");
    let request = &h.requests()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.url, "https://provider.test/example/v1/messages");
    assert_eq!(request.header_value("authorization"), Some("Bearer key-1"));
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["to"], "{{address}}");
    assert_eq!(body["text"], "Your order shipped");
}

#[test]
fn a_busy_provider_is_tried_again_and_a_refusal_is_not() {
    let mut h = harness();
    h.respond(Response::new(503, r#"{"code":"busy","message":"try later"}"#));
    let busy = h.deliver::<{{Type}}>(&message()).unwrap_err();
    assert!(busy.retryable);
    assert_eq!(busy.code, "busy");

    h.respond(Response::new(400, r#"{"code":"invalid_to","message":"no such address"}"#));
    let refused = h.deliver::<{{Type}}>(&message()).unwrap_err();
    assert!(!refused.retryable);
    assert_eq!(refused.code, "invalid_to");
}

#[test]
fn a_missing_key_is_a_configuration_error() {
    let h = Harness::new([("base_url", "https://provider.test")]);
    assert_eq!(h.validate::<{{Type}}>().unwrap_err().key, "api_key");
}

/// The harness holds the settings to `SETTINGS` as the gateway does at load.
#[test]
fn a_misspelled_setting_is_refused_as_the_gateway_would() {
    let h = Harness::new([("api_key", "key-1"), ("bse_url", "https://provider.test")]);
    let refused = h.validate::<{{Type}}>().unwrap_err();
    assert_eq!(refused.key, "bse_url");
    assert!(refused.message.contains("did you mean \"base_url\"?"), "{refused}");
}
"##;

const DEV_TOML: &str = r#"# A gateway configuration with this one connector, pointed at the provider
# simulator on this machine (`cargo run --bin provider-sim` in a Crossgate
# checkout listens on 127.0.0.1:9090). Try it without a gateway:
#   crossgate plugin run target/wasm32-wasip2/release/{{crate}}.wasm --config dev.toml \
#       --to {{address}} --text "hello"
[[connectors]]
name = "{{name}}"
plugin = "target/wasm32-wasip2/release/{{crate}}.wasm"
channel = "{{channel}}"
allowed_hosts = ["http://127.0.0.1:9090"]
[connectors.config]
base_url = "http://127.0.0.1:9090"
api_key = "example-key"

# Compiled components are cached here rather than in ./data.
[plugins]
cache_dir = "target/plugin-cache"
"#;

const README: &str = r#"# {{name}}

A Crossgate {{channel}} connector, built as a WebAssembly component against
`crossgate-plugin-sdk`.

```sh
rustup target add wasm32-wasip2
cargo test                                      # native, against scripted answers
cargo build --release --target wasm32-wasip2    # target/wasm32-wasip2/release/{{crate}}.wasm
crossgate plugin inspect target/wasm32-wasip2/release/{{crate}}.wasm
crossgate plugin run target/wasm32-wasip2/release/{{crate}}.wasm --config dev.toml \
    --to {{address}} --text "hello"
```

As generated it speaks the provider simulator's example API; `src/lib.rs` marks
what to change for a real provider. An operator adds it to `crossgate.toml`:

```toml
[[connectors]]
name = "{{name}}"
plugin = "{{crate}}.wasm"      # in [plugins] dir
channel = "{{channel}}"
allowed_hosts = ["https://api.provider.example"]
[connectors.config]
api_key = "env:PROVIDER_API_KEY"
```
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cargo_would_refuse_are_refused() {
        for bad in ["", "Acme", "1sms", "acme sms", "acme/sms"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["acme", "acme-sms", "acme_sms2"] {
            assert!(check_name(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn the_registry_version_is_the_sdks() {
        let manifest = include_str!("../../../plugin-sdk/Cargo.toml");
        let version = manifest
            .lines()
            .find_map(|line| line.strip_prefix("version = \""))
            .unwrap();
        assert!(version.starts_with(&format!("{SDK_VERSION}.")), "{version}");
    }

    #[test]
    fn the_sdk_is_named_as_cargo_reads_it() {
        assert_eq!(
            Sdk::Path("/src/crossgate/plugin-sdk".into()).dependency(),
            r#"{ path = "/src/crossgate/plugin-sdk" }"#
        );
        assert_eq!(
            Sdk::Git {
                url: "https://git.example/crossgate".into(),
                tag: Some("v0.1.0".into())
            }
            .dependency(),
            r#"{ git = "https://git.example/crossgate", tag = "v0.1.0" }"#
        );
    }
}

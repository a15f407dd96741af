//! `crossgate plugin`: what a connector's author runs outside any
//! gateway. `new` writes a crate that builds and passes its tests as
//! generated ([`scaffold`]); `inspect` says what a `.wasm` is; `run` and
//! `webhook` make one call through the real sandbox and egress rules, with
//! no store, and print what went out and what came back.
//!
//! Each answers `Ok(text to print)` or `Err(text to print)`: the command
//! line prints it and exits accordingly.

pub mod scaffold;

use crate::config::{self, Config, ConfigReport};
use crate::message::Content;
use crate::plugins::{Answer, Exchange, Inspected, Outgoing, PluginHost, WebhookRequest};
use std::fmt::Write as _;
use std::path::Path;

/// `crossgate plugin inspect <file>`.
pub async fn inspect(file: &Path) -> Result<String, String> {
    let bytes =
        std::fs::read(file).map_err(|e| format!("cannot read {}: {e}\n", file.display()))?;
    let host = PluginHost::load(&empty_config()?)
        .await
        .map_err(|errors| format!("cannot start the sandbox: {errors:?}\n"))?;
    let Inspected { info, settings } = host
        .inspect(&bytes)
        .await
        .map_err(|e| format!("{}: {e:#}\n", file.display()))?;
    let mut out = String::new();
    let _ = writeln!(out, "file      {} ({} bytes)", file.display(), bytes.len());
    let _ = writeln!(out, "name      {}", info.name);
    let _ = writeln!(out, "version   {}", info.version);
    let _ = writeln!(out, "channel   {}", info.channel);
    let _ = writeln!(out, "contract  {}", info.contract_version);
    let _ = writeln!(out, "sdk       {}", info.sdk_version);
    let _ = writeln!(out, "about     {}", info.description);
    if settings.is_empty() {
        let _ = writeln!(out, "settings  none declared (the gateway checks no keys)");
    }
    for (i, s) in settings.iter().enumerate() {
        let kind = s.kind.describe();
        let required = if s.required { "required" } else { "optional" };
        let label = if i == 0 { "settings" } else { "" };
        let _ = writeln!(out, "{label:<9} {:<24} {kind:<8} {required}", s.name);
    }
    Ok(out)
}

/// A gateway configuration with no connector: the sandbox alone.
fn empty_config() -> Result<Config, String> {
    config::parse("<plugin kit>", "", &|_| None).map_err(|report| report.to_string())
}

/// Which connector of a configuration file to call, with its plugin
/// replaced by the file being tried.
pub struct Target<'a> {
    pub plugin: &'a Path,
    pub config: &'a Path,
    /// Needed when the file configures several connectors.
    pub connector: Option<&'a str>,
}

/// The host with that one connector loaded, and its name. Configuration
/// mistakes come back as `crossgate check` reports them, at their lines.
async fn load(target: &Target<'_>) -> Result<(PluginHost, String, Config), String> {
    let (mut config, text) = config::load(target.config).map_err(|r| r.to_string())?;
    let name = target.config.display().to_string();
    let chosen = match target.connector {
        Some(wanted) => config.connectors.iter().position(|c| c.name == wanted),
        None if config.connectors.len() == 1 => Some(0),
        None => None,
    };
    let Some(chosen) = chosen else {
        let names: Vec<&str> = config.connectors.iter().map(|c| c.name.as_str()).collect();
        return Err(match target.connector {
            Some(wanted) => format!("{name}: no connector named {wanted:?} (it has {names:?})\n"),
            None => format!(
                "{name}: {} connectors ({names:?}): say which with --connector\n",
                names.len()
            ),
        });
    };
    let mut connector = config.connectors.swap_remove(chosen);
    connector.plugin = std::path::absolute(target.plugin)
        .map_err(|e| format!("{}: {e}\n", target.plugin.display()))?;
    config.connectors = vec![connector];
    let host = PluginHost::load(&config)
        .await
        .map_err(|errors| ConfigReport::new(&name, &text, errors).to_string())?;
    let connector = config.connectors[0].name.clone();
    Ok((host, connector, config))
}

/// `crossgate plugin run`: one delivery, printed request by request.
pub async fn run(target: &Target<'_>, to: &str, content: &Content) -> Result<String, String> {
    let (mut host, connector, config) = load(target).await?;
    let transcript = host.transcribe(&connector);
    let channel = config.connectors[0].channel;
    let id = format!("plugin-run-{}", uuid::Uuid::now_v7());
    let delivered = host
        .deliver(
            &connector,
            Outgoing {
                message_id: &id,
                attempt: 1,
                channel,
                to,
                content,
                sender: None,
            },
        )
        .await;
    let mut out = exchanges(transcript.as_deref());
    for (address, reason) in &delivered.dead_addresses {
        let _ = writeln!(out, "reported dead: {address} ({reason})");
    }
    match delivered.result {
        Ok(receipt) => {
            let _ = writeln!(
                out,
                "outcome: sent, provider message id {:?}{}",
                receipt.provider_message_id,
                if receipt.delivered {
                    " (delivered)"
                } else {
                    ""
                }
            );
            Ok(out)
        }
        Err(failure) => {
            let _ = writeln!(
                out,
                "outcome: failed, {} ({}): {}",
                failure.code,
                if failure.retryable {
                    "retryable: the gateway would try again"
                } else {
                    "permanent: the gateway would fall back"
                },
                failure.message
            );
            Err(out)
        }
    }
}

/// A provider callback, as `crossgate plugin webhook` is given it.
pub struct Callback {
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
    /// The query string, without `?`.
    pub query: Option<String>,
}

/// `crossgate plugin webhook`: one callback, and what the gateway would
/// make of it.
pub async fn webhook(target: &Target<'_>, callback: Callback) -> Result<String, String> {
    let (mut host, connector, config) = load(target).await?;
    let transcript = host.transcribe(&connector);
    let base = config
        .server
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.server.listen));
    let query = callback
        .query
        .map(|q| format!("?{}", q.trim_start_matches('?')))
        .unwrap_or_default();
    let request = WebhookRequest {
        method: "POST".into(),
        url: format!("{base}/v1/webhooks/{connector}{query}"),
        headers: callback.headers,
        body: callback.body,
    };
    let url = request.url.clone();
    let handled = host.handle_webhook(&connector, request).await;
    let mut out = format!("POST {url}\n");
    out += &exchanges(transcript.as_deref());
    match handled {
        Ok(events) if events.is_empty() => {
            out += "answered 200: nothing to record\n";
            Ok(out)
        }
        Ok(events) => {
            out += "answered 200, events:\n";
            for event in events {
                let _ = writeln!(out, "  {event:?}");
            }
            Ok(out)
        }
        Err(rejection) => {
            let _ = writeln!(out, "refused: {rejection:?}");
            Err(out)
        }
    }
}

/// The requests a call made and their answers, as text.
fn exchanges(transcript: Option<&crate::plugins::Transcript>) -> String {
    let mut out = String::new();
    let Some(transcript) = transcript else {
        return out;
    };
    for Exchange {
        method,
        url,
        headers,
        body,
        answer,
    } in transcript.lock().unwrap_or_else(|e| e.into_inner()).iter()
    {
        let _ = writeln!(out, "> {method} {url}");
        for (name, value) in headers {
            let shown = if name.eq_ignore_ascii_case("authorization") {
                "[hidden]"
            } else {
                value
            };
            let _ = writeln!(out, "> {name}: {shown}");
        }
        let _ = writeln!(out, ">\n> {}", String::from_utf8_lossy(body));
        match answer {
            Ok(Answer {
                status,
                headers,
                body,
            }) => {
                let _ = writeln!(out, "< {status}");
                for (name, value) in headers {
                    let _ = writeln!(out, "< {name}: {value}");
                }
                let _ = writeln!(out, "<\n< {}", String::from_utf8_lossy(body));
            }
            Err(why) => {
                let _ = writeln!(out, "< no answer: {why}");
            }
        }
    }
    out
}

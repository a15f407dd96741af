//! A connector written outside the repository with the plugin kit, as its
//! author would: `crossgate plugin new` in a temporary folder, the SDK by
//! path to this checkout, the generated tests run, the component built for
//! `wasm32-wasip2`, then `plugin inspect` and `plugin run` against the
//! provider simulator; `plugin webhook` with a signed Twilio callback; and
//! what `inspect` says of files that are no component.
//!
//! The crate resolves its dependencies as the repository's connectors did
//! (their lockfile) and builds in their target folder, offline: what they
//! built already is not built again, and nothing leaves this machine.

use crate::support::{plugin_dir, repo_root};
use crate::webhooks::twilio_signature;
use crossgate::message::{Channel, Content};
use crossgate::plugin_kit::{self, Callback, Target, scaffold};
use crossgate_tests::{DEFAULT_AUTH_TOKEN, ProviderSim, default_twilio};
use std::path::Path;
use std::process::Command;

/// `cargo <args>` in `dir`, as the author would run it; its output when it fails.
fn cargo(dir: &Path, args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(args)
        .arg("--offline")
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", repo_root().join("plugins/target"))
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo {args:?} in {}:\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `crossgate <args>`: its exit, standard output and standard error.
fn crossgate(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_crossgate"))
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .expect("crossgate runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_made_outside_the_repository_builds_and_delivers() {
    let outside = tempfile::tempdir().unwrap();
    let sdk = repo_root().join("plugin-sdk");
    let (ok, said, stderr) = crossgate(&[
        "plugin",
        "new",
        "acme-sms",
        "--channel",
        "sms",
        "--dir",
        outside.path().to_str().unwrap(),
        "--sdk-path",
        sdk.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let dir = outside.path().join("acme-sms");
    assert!(said.contains(&dir.display().to_string()), "{said}");
    let again = scaffold::new(&scaffold::NewConnector {
        name: "acme-sms",
        channel: Channel::Sms,
        parent: outside.path(),
        sdk: scaffold::Sdk::Registry,
    });
    assert!(again.unwrap_err().contains("exists already"));
    std::fs::copy(
        repo_root().join("plugins/Cargo.lock"),
        dir.join("Cargo.lock"),
    )
    .unwrap();
    cargo(&dir, &["test", "--quiet"]);
    cargo(
        &dir,
        &["build", "--quiet", "--release", "--target", "wasm32-wasip2"],
    );
    let wasm = repo_root().join("plugins/target/wasm32-wasip2/release/acme_sms.wasm");

    let (ok, inspected, stderr) = crossgate(&["plugin", "inspect", wasm.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    for line in [
        "name      acme-sms",
        "channel   sms",
        "contract  0.4.0",
        "api_key                  text     required",
    ] {
        assert!(inspected.contains(line), "{line:?} in:\n{inspected}");
    }

    // Its own dev.toml, pointed at this test's simulator.
    let sim = ProviderSim::start().await.unwrap();
    // Compiled components cached in the crate's own target folder, not
    // in the working directory of this test.
    let dev = std::fs::read_to_string(dir.join("dev.toml"))
        .unwrap()
        .replace("http://127.0.0.1:9090", &sim.url())
        .replace(
            "\"target/plugin-cache\"",
            &format!("\"{}\"", dir.join("target/plugin-cache").display()),
        );
    std::fs::write(dir.join("dev.toml"), &dev).unwrap();
    let target = Target {
        plugin: &wasm,
        config: &dir.join("dev.toml"),
        connector: None,
    };
    let content = Content {
        text: "Your order shipped".into(),
        ..Content::default()
    };
    let (ok, ran, stderr) = crossgate(&[
        "plugin",
        "run",
        wasm.to_str().unwrap(),
        "--config",
        dir.join("dev.toml").to_str().unwrap(),
        "--to",
        "+31612345678",
        "--text",
        "Your order shipped",
    ]);
    assert!(ok, "{ran}{stderr}");
    assert!(
        ran.contains(&format!("> POST {}/example/v1/messages", sim.url())),
        "{ran}"
    );
    assert!(ran.contains("> authorization: [hidden]"), "{ran}");
    assert!(ran.contains("< 201"), "{ran}");
    assert!(
        ran.contains("outcome: sent, provider message id \"ex_"),
        "{ran}"
    );
    assert_eq!(sim.requests().len(), 1);

    // A misspelled key: refused at its line, with the likely meant one.
    std::fs::write(dir.join("dev.toml"), dev.replace("api_key", "api_kye")).unwrap();
    let refused = plugin_kit::run(&target, "+31612345678", &content)
        .await
        .unwrap_err();
    assert!(
        refused.contains("dev.toml:13:1: connectors[0].config.api_kye")
            && refused.contains("did you mean \"api_key\"?"),
        "{refused}"
    );
    assert_eq!(sim.requests().len(), 1, "nothing sent");
}

#[tokio::test]
async fn inspect_says_what_to_build_instead_of_a_parse_error() {
    let dir = tempfile::tempdir().unwrap();
    let files: [(&str, &[u8], &str); 4] = [
        (
            "lib.rlib",
            b"!<arch>\n/               0           0     0     0       8       `\n",
            "crate-type = [\"cdylib\"]",
        ),
        ("core.wasm", b"\0asm\x01\0\0\0", "core WebAssembly module"),
        ("core.wat", b"(module)", "core module in text form"),
        ("junk.wasm", b"GIF89a\x01\0", "neither binary nor text"),
    ];
    for (name, bytes, says) in files {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let refused = plugin_kit::inspect(&path).await.unwrap_err();
        assert!(refused.contains(says), "{name}: {refused}");
    }
}

#[tokio::test]
async fn a_signed_callback_is_read_as_the_gateway_would() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("crossgate.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\npublic_url = \"https://gw.example.com\"\n[plugins]\ncache_dir = \"{}\"\n{}",
            dir.path().join("cache").display(),
            default_twilio("http://127.0.0.1:9")
        ),
    )
    .unwrap();
    let params = [
        ("MessageSid", "SM123"),
        ("MessageStatus", "delivered"),
        ("AccountSid", crossgate_tests::DEFAULT_ACCOUNT_SID),
    ];
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let signed = |token: &str| Callback {
        body: body.clone().into_bytes(),
        headers: vec![
            (
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            (
                "x-twilio-signature".into(),
                twilio_signature("https://gw.example.com/v1/webhooks/twilio", &params, token),
            ),
        ],
        query: None,
    };
    let plugin = plugin_dir().join("sms_twilio.wasm");
    let target = Target {
        plugin: &plugin,
        config: &config,
        connector: None,
    };
    let read = plugin_kit::webhook(&target, signed(DEFAULT_AUTH_TOKEN))
        .await
        .unwrap();
    assert!(
        read.contains("POST https://gw.example.com/v1/webhooks/twilio"),
        "{read}"
    );
    assert!(
        read.contains("Status") && read.contains("SM123") && read.contains("Delivered"),
        "{read}"
    );
    let forged = plugin_kit::webhook(&target, signed("not-the-token"))
        .await
        .unwrap_err();
    assert!(forged.contains("refused: Unauthorized"), "{forged}");
}

//! `crossgate check`: the default config passes; each invalid fixture in
//! tests/config/invalid/ prints exactly the errors in its `.err` file.

use crate::support::repo_root;
use crossgate::message::Channel;
use std::process::Command;

fn check(config: &str) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_crossgate"))
        .args(["check", "--config", config])
        .current_dir(repo_root())
        .env("RUST_LOG", "off")
        .env_remove("CROSSGATE_TEST_UNSET_SECRET")
        .output()
        .expect("run crossgate check");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_default_config_is_valid_and_its_plugins_load() {
    crate::support::plugin_dir();
    let (ok, stdout, stderr) = check("config/crossgate.toml");
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("ok (6 connectors loaded, 4 templates checked, 4 journeys)"),
        "{stdout}"
    );
}

#[test]
fn broken_templates_are_reported_with_file_line_and_column() {
    crate::support::plugin_dir();
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("templates");
    let write = |path: &str, text: &str| {
        let path = templates.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "welcome/template.toml",
        "category = \"transactional\"\ndefault_locale = \"en\"\nvariables = [\"name\"]\n[example]\nname = \"Ada\"\n",
    );
    write("welcome/en/sms.txt", "Hi {{ name }}!\nYour code: {% if %}");
    write("welcome/en/push.body", "Hi {{ first_name }}");
    write(
        "offer/template.toml",
        "category = \"promotions\"\ndefault_locale = \"en\"\n",
    );
    write("offer/en/sms.txt", "A deal");
    let config = std::fs::read_to_string(repo_root().join("config/crossgate.toml"))
        .unwrap()
        .replace(
            "dir = \"config/templates\"",
            &format!("dir = \"{}\"", templates.display()),
        );
    let path = dir.path().join("crossgate.toml");
    std::fs::write(&path, config).unwrap();
    let (ok, _, stderr) = check(path.to_str().unwrap());
    assert!(!ok, "broken templates pass: {stderr}");
    let root = templates.display();
    for expected in [
        format!("{root}/offer/template.toml:1:1: category \"promotions\" is not configured"),
        format!("{root}/welcome/en/push.body:1:7: \"first_name\" is not declared"),
        format!("{root}/welcome/en/sms.txt:2:"),
    ] {
        assert!(
            stderr.lines().any(|l| l.starts_with(&expected)),
            "no line starts with {expected:?}:\n{stderr}"
        );
    }
}

#[test]
fn the_embedded_default_is_the_committed_file() {
    let file = std::fs::read_to_string(repo_root().join("config/crossgate.toml")).unwrap();
    assert_eq!(crossgate::config::EMBEDDED_DEFAULT, file);
    // Relative `file:` secrets are read from the working directory, which
    // is the repository root for `make run` but gateway/ here.
    let root = repo_root().display().to_string();
    let here = file.replace("\"file:config/", &format!("\"file:{root}/config/"));
    let config = crossgate::config::parse("crossgate.toml", &here, &|_| None).unwrap();
    assert!(
        config.server.listen.ip().is_loopback(),
        "the default listens on loopback only"
    );
    assert_eq!(config.connectors.len(), 6);
    // EU SMS through Vonage first; every other region's through Twilio.
    let policy = config.policy();
    let sms_in = |region: &str| -> Vec<String> {
        policy
            .connectors_in(Channel::Sms, region)
            .routes
            .iter()
            .map(|c| c.name.clone())
            .collect()
    };
    assert_eq!(sms_in("EU"), ["vonage", "twilio"]);
    assert_eq!(sms_in("NA"), ["twilio"]);
    assert_eq!(sms_in("default"), ["twilio"]);
    let channels: Vec<_> = config
        .policy()
        .connectors
        .iter()
        .map(|c| c.channel)
        .collect();
    for channel in Channel::ALL {
        assert!(
            channels.contains(&channel),
            "no {channel} connector in the default"
        );
    }
    // The mission's regions: email leads in Europe and North America, SMS in
    // China, WhatsApp in Latin America and Asia.
    let first = |region: &str| config.routing.regions[region][0];
    assert_eq!(first("EU"), Channel::Email);
    assert_eq!(first("NA"), Channel::Email);
    assert_eq!(first("CN"), Channel::Sms);
    assert_eq!(first("LATAM"), Channel::Whatsapp);
    assert_eq!(first("APAC"), Channel::Whatsapp);
    assert!(config.categories.contains_key("marketing"));
}

#[test]
fn every_invalid_fixture_prints_its_expected_errors() {
    crate::support::plugin_dir();
    let dir = repo_root().join("tests/config/invalid");
    let mut fixtures: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 8, "fixtures missing in {}", dir.display());
    for fixture in fixtures {
        let relative = fixture
            .strip_prefix(repo_root())
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let expected = std::fs::read_to_string(fixture.with_extension("err"))
            .unwrap_or_else(|_| panic!("{relative} has no .err file"));
        let (ok, _, stderr) = check(&relative);
        assert!(!ok, "{relative} passed the check");
        assert_eq!(stderr, expected, "{relative}");
        assert!(
            stderr
                .lines()
                .all(|l| l.starts_with(&format!("{relative}:"))),
            "every error names the file: {stderr}"
        );
    }
}

/// A setting the plugin declares secret, written in the file: a warning at
/// its line while the gateway listens on loopback, refused once it is
/// reachable; read from `env:` it is neither.
#[test]
fn a_secret_written_in_the_file_is_named_where_it_is() {
    crate::support::plugin_dir();
    let dir = tempfile::tempdir().unwrap();
    let write = |server: &str, token: &str| {
        let text = format!(
            "{server}{}",
            crossgate_tests::twilio_connector(
                "twilio",
                "http://127.0.0.1:9",
                "AC22222222222222222222222222222222",
                token
            )
        );
        let path = dir.path().join("crossgate.toml");
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let plain = write("", "a-token-this-test-made-up");
    let (ok, stdout, stderr) = check(&plain);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("warnings:")
            && stdout
                .contains(":9:1: connectors[0].config.auth_token: a secret written in the file"),
        "{stdout}"
    );

    let from_env = write("", "env:PATH");
    let (ok, stdout, stderr) = check(&from_env);
    assert!(ok && !stdout.contains("warnings"), "{stdout}{stderr}");

    let reachable = write(
        "[server]\nlisten = \"0.0.0.0:8080\"\napi_keys = [\"a-key-of-this-test-only\"]\n",
        "a-token-this-test-made-up",
    );
    let (ok, _, stderr) = check(&reachable);
    assert!(!ok, "a reachable gateway took a secret written in its file");
    assert!(
        stderr.contains("connectors[0].config.auth_token: a secret written in the file")
            && stderr.contains("reachable from the network"),
        "{stderr}"
    );
}

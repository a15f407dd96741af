//! Checks recorded provider requests against the providers' published
//! OpenAPI documents in tests/fixtures (MIT; see the LICENSE files there):
//! Twilio's `twilio_api_v2010.json` and SendGrid's `sendgrid_mail_v3.json`.

use serde_json::{Map, Value, json};
use std::sync::OnceLock;

const PATH: &str = "/2010-04-01/Accounts/{AccountSid}/Messages.json";

fn load(name: &str) -> Value {
    let path = crate::support::repo_root()
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
}

fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| load("twilio_api_v2010.json"))
}

fn sendgrid_spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| load("sendgrid_mail_v3.json"))
}

/// Validate a Mail Send body against the schema SendGrid publishes for it.
pub fn assert_valid_sendgrid_mail_send(body: &Value) {
    let spec = sendgrid_spec();
    let schema = spec["components"]["requestBodies"]["PostMailSend"]["content"]["application/json"]
        ["schema"]
        .clone();
    validate(
        &schema,
        &spec["components"],
        body,
        "SendGrid Mail Send body",
    );
}

/// Validate a `Create Message` request: the path's AccountSid and the form
/// body, each against the schema the spec gives for it.
pub fn assert_valid_create_message(path: &str, form: &[(String, String)]) {
    let operation = &spec()["paths"][PATH]["post"];
    let components = spec()["components"].clone();

    let sid = path
        .strip_prefix("/2010-04-01/Accounts/")
        .and_then(|rest| rest.strip_suffix("/Messages.json"))
        .unwrap_or_else(|| panic!("not a Create Message path: {path}"));
    let sid_schema = operation["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "AccountSid")
        .expect("AccountSid parameter")["schema"]
        .clone();
    validate(&sid_schema, &components, &json!(sid), "AccountSid");

    let body_schema =
        operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"].clone();
    let properties = body_schema["properties"].as_object().expect("properties");
    let mut instance = Map::new();
    for (name, value) in form {
        let property = properties
            .get(name)
            .unwrap_or_else(|| panic!("field {name} is not in Twilio's CreateMessageRequest"));
        instance.insert(name.clone(), typed(property, value, &components));
    }
    validate(
        &body_schema,
        &components,
        &Value::Object(instance),
        "form body",
    );
}

/// Form values are strings on the wire; the schema types them.
fn typed(property: &Value, value: &str, components: &Value) -> Value {
    let property = match property["$ref"].as_str() {
        Some(reference) => {
            let name = reference.rsplit('/').next().unwrap();
            &components["schemas"][name]
        }
        None => property,
    };
    match property["type"].as_str() {
        Some("integer") => value
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or(json!(value)),
        Some("number") => value
            .parse::<f64>()
            .map(Value::from)
            .unwrap_or(json!(value)),
        Some("boolean") => value
            .parse::<bool>()
            .map(Value::from)
            .unwrap_or(json!(value)),
        Some("array") => json!([value]),
        _ => json!(value),
    }
}

fn validate(schema: &Value, components: &Value, instance: &Value, what: &str) {
    let mut root = schema.clone();
    // Let `#/components/...` references resolve inside this root document.
    root["components"] = components.clone();
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&root)
        .expect("the provider's schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "{what} violates Twilio's spec: {errors:?}\n{instance}"
    );
}

#[test]
fn the_validator_rejects_what_twilio_rejects() {
    let missing_to = std::panic::catch_unwind(|| {
        assert_valid_create_message(
            "/2010-04-01/Accounts/AC00000000000000000000000000000000/Messages.json",
            &[("Body".into(), "hi".into())],
        )
    });
    assert!(
        missing_to.is_err(),
        "a request without To must not validate"
    );
    let bad_sid = std::panic::catch_unwind(|| {
        assert_valid_create_message(
            "/2010-04-01/Accounts/XX1/Messages.json",
            &[("To".into(), "+31612345678".into())],
        )
    });
    assert!(bad_sid.is_err(), "a malformed AccountSid must not validate");
    assert_valid_create_message(
        "/2010-04-01/Accounts/AC00000000000000000000000000000000/Messages.json",
        &[
            ("To".into(), "+31612345678".into()),
            ("Body".into(), "hi".into()),
        ],
    );
}

#[test]
fn the_sendgrid_validator_rejects_what_sendgrid_rejects() {
    let valid = serde_json::json!({
        "personalizations": [{"to": [{"email": "anna@example.nl"}]}],
        "from": {"email": "orders@shop.example"},
        "subject": "Hi",
        "content": [{"type": "text/plain", "value": "Hello"}]
    });
    assert_valid_sendgrid_mail_send(&valid);
    let mut no_from = valid.clone();
    no_from.as_object_mut().unwrap().remove("from");
    assert!(std::panic::catch_unwind(|| assert_valid_sendgrid_mail_send(&no_from)).is_err());
    let mut bad_email = valid.clone();
    bad_email["from"]["email"] = json!("not an address");
    assert!(std::panic::catch_unwind(|| assert_valid_sendgrid_mail_send(&bad_email)).is_err());
}

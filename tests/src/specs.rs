//! The providers' published OpenAPI documents (tests/fixtures, MIT; see the
//! LICENSE files there), as the simulator checks requests against them:
//! Twilio's `twilio_api_v2010.json` and SendGrid's `sendgrid_mail_v3.json`.
//!
//! Validators are compiled once per process, on first use.

use jsonschema::Validator;
use serde_json::{Map, Value, json};
use std::sync::OnceLock;

const TWILIO_SPEC: &str = include_str!("../fixtures/twilio_api_v2010.json");
const SENDGRID_SPEC: &str = include_str!("../fixtures/sendgrid_mail_v3.json");
const CREATE_MESSAGE: &str = "/2010-04-01/Accounts/{AccountSid}/Messages.json";

struct TwilioCreateMessage {
    account_sid: Validator,
    body: Validator,
    /// Form field name to its schema, to type the wire's strings.
    properties: Map<String, Value>,
    components: Value,
}

fn parse(name: &str, text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
}

/// A validator for `schema`, with `#/components/...` references resolvable.
fn compile(schema: &Value, components: &Value) -> Validator {
    let mut root = schema.clone();
    root["components"] = components.clone();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&root)
        .expect("the provider's schema compiles")
}

fn twilio() -> &'static TwilioCreateMessage {
    static SPEC: OnceLock<TwilioCreateMessage> = OnceLock::new();
    SPEC.get_or_init(|| {
        let spec = parse("twilio_api_v2010.json", TWILIO_SPEC);
        let operation = &spec["paths"][CREATE_MESSAGE]["post"];
        let components = spec["components"].clone();
        let sid_schema = operation["parameters"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["name"] == "AccountSid"))
            .expect("AccountSid parameter")["schema"]
            .clone();
        let body_schema = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]
            ["schema"]
            .clone();
        TwilioCreateMessage {
            account_sid: compile(&sid_schema, &components),
            body: compile(&body_schema, &components),
            properties: body_schema["properties"]
                .as_object()
                .expect("properties")
                .clone(),
            components,
        }
    })
}

fn sendgrid() -> &'static Validator {
    static SPEC: OnceLock<Validator> = OnceLock::new();
    SPEC.get_or_init(|| {
        let spec = parse("sendgrid_mail_v3.json", SENDGRID_SPEC);
        let schema = &spec["components"]["requestBodies"]["PostMailSend"]["content"]
            ["application/json"]["schema"];
        compile(schema, &spec["components"])
    })
}

fn errors(validator: &Validator, instance: &Value) -> Result<(), Vec<String>> {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// A `Create Message` request: the path's AccountSid and the form body, each
/// against the schema Twilio publishes for it. Fields the spec does not
/// know are errors too.
pub fn check_twilio_create_message(
    account_sid: &str,
    form: &[(String, String)],
) -> Result<(), Vec<String>> {
    let spec = twilio();
    errors(&spec.account_sid, &json!(account_sid)).map_err(|e| {
        e.into_iter()
            .map(|e| format!("AccountSid: {e}"))
            .collect::<Vec<_>>()
    })?;
    let mut instance = Map::new();
    for (name, value) in form {
        let Some(property) = spec.properties.get(name) else {
            return Err(vec![format!(
                "{name} is not a field of CreateMessageRequest"
            )]);
        };
        instance.insert(name.clone(), typed(property, value, &spec.components));
    }
    errors(&spec.body, &Value::Object(instance))
}

/// A Mail Send body against the schema SendGrid publishes for it.
pub fn check_sendgrid_mail_send(body: &Value) -> Result<(), Vec<String>> {
    errors(sendgrid(), body)
}

/// Form values are strings on the wire; the schema types them.
fn typed(property: &Value, value: &str, components: &Value) -> Value {
    let property = match property["$ref"].as_str() {
        Some(reference) => {
            let name = reference.rsplit('/').next().unwrap_or("");
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

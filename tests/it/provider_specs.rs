//! Recorded provider requests against the providers' published OpenAPI
//! documents: the simulator refuses what violates them, and these helpers
//! let a test say so explicitly about a request it inspects.

use crossgate_tests::specs;
use serde_json::{Value, json};

/// Validate a Mail Send body against the schema SendGrid publishes for it.
pub fn assert_valid_sendgrid_mail_send(body: &Value) {
    if let Err(errors) = specs::check_sendgrid_mail_send(body) {
        panic!("SendGrid Mail Send body violates SendGrid's spec: {errors:?}\n{body}");
    }
}

/// Validate a `Create Message` request: the path's AccountSid and the form body.
pub fn assert_valid_create_message(path: &str, form: &[(String, String)]) {
    let sid = path
        .strip_prefix("/2010-04-01/Accounts/")
        .and_then(|rest| rest.strip_suffix("/Messages.json"))
        .unwrap_or_else(|| panic!("not a Create Message path: {path}"));
    if let Err(errors) = specs::check_twilio_create_message(sid, form) {
        panic!("Create Message violates Twilio's spec: {errors:?}\n{form:?}");
    }
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

#[tokio::test]
async fn the_simulator_refuses_requests_that_violate_the_specs() {
    use crossgate_tests::{
        DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, DEFAULT_SENDGRID_KEY, ProviderSim,
    };
    let sim = ProviderSim::start().await.unwrap();
    let client = reqwest::Client::new();
    let twilio = client
        .post(format!(
            "{}/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages.json",
            sim.url()
        ))
        .basic_auth(DEFAULT_ACCOUNT_SID, Some(DEFAULT_AUTH_TOKEN))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("To=%2B31612345678&From=%2B15005550006&Body=hi&Colour=blue")
        .send()
        .await
        .unwrap();
    assert_eq!(twilio.status().as_u16(), 400);
    let answer: Value = twilio.json().await.unwrap();
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("Colour is not a field"),
        "{answer}"
    );

    let sendgrid = client
        .post(format!("{}/v3/mail/send", sim.url()))
        .bearer_auth(DEFAULT_SENDGRID_KEY)
        .json(&json!({
            "personalizations": [{"to": [{"email": "anna@example.nl"}]}],
            "from": {"email": "orders@shop.example"},
            "subject": "Hi",
            "content": [{"type": "text/plain", "value": "Hello"}],
            "send_at": "tomorrow"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(sendgrid.status().as_u16(), 400);
    let answer: Value = sendgrid.json().await.unwrap();
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("send_at"),
        "{answer}"
    );
}

//! Email through the SendGrid connector, end to end.

use crate::provider_specs;
use crate::support::{FAST_DISPATCH, TestGateway, outcomes, sendgrid_connector};
use crossgate_tests::{Behaviour, DEFAULT_SENDGRID_KEY, ProviderSim};
use serde_json::{Value, json};

fn mail(to: &str) -> Value {
    json!({
        "channel": "email",
        "to": {"email": to},
        "content": {"subject": "Your order shipped", "text": "It is on its way.", "html": "<p>It is on its way.</p>"}
    })
}

#[tokio::test]
async fn email_is_delivered_retried_or_failed_as_sendgrid_answers() {
    let sim = ProviderSim::start().await.unwrap();
    sim.script(
        DEFAULT_SENDGRID_KEY,
        [
            Behaviour::Fail,
            Behaviour::Reject {
                code: 400,
                message: "Does not contain a valid address.".into(),
            },
        ],
    );
    let gw = TestGateway::start(&format!(
        "{FAST_DISPATCH}{}",
        sendgrid_connector("sendgrid", &sim.url())
    ))
    .await;

    // A 500 is retried; the 400 that follows is final, with SendGrid's message.
    let first = gw.send_ok(&mail("anna@example.nl")).await;
    let message = gw.settled(&first).await;
    assert_eq!(message["status"], "failed", "{message:#}");
    assert_eq!(
        outcomes(&message),
        ["retryable", "permanent"],
        "{message:#}"
    );
    assert_eq!(
        message["attempts"][1]["error"]["message"],
        "Does not contain a valid address."
    );

    // With the script used up, SendGrid accepts.
    let second = gw.send_ok(&mail("anna@example.nl")).await;
    let message = gw.settled(&second).await;
    assert_eq!(message["status"], "sent", "{message:#}");
    assert!(
        message["provider_message_id"]
            .as_str()
            .unwrap()
            .starts_with("sg")
    );

    for request in sim.requests() {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        provider_specs::assert_valid_sendgrid_mail_send(&body);
        assert_eq!(
            body["personalizations"][0]["to"][0]["email"],
            "anna@example.nl"
        );
        assert_eq!(body["subject"], "Your order shipped");
    }

    // A rate limit is retried after SendGrid's Retry-After, then the mail goes.
    sim.script(
        DEFAULT_SENDGRID_KEY,
        [Behaviour::RateLimit {
            retry_after_secs: 1,
        }],
    );
    let third = gw.send_ok(&mail("anna@example.nl")).await;
    let message = gw.settled(&third).await;
    assert_eq!(message["status"], "sent", "{message:#}");
    assert_eq!(outcomes(&message), ["retryable", "sent"], "{message:#}");

    let (status, answer) = gw.send(&mail("not-an-address")).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (422, Some("invalid_email"))
    );
}

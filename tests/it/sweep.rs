//! Malformed input over every route the OpenAPI document lists: whatever
//! arrives, the answer is a 4xx that says what is wrong, never a 5xx, and
//! nothing malformed is accepted.

use crate::support::{TestGateway, default_twilio, sendgrid_connector};
use crossgate_tests::ProviderSim;
use serde_json::Value;

/// Bodies no route takes.
fn malformed_bodies() -> Vec<String> {
    let deep = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    let deep_object = format!("{}1{}", "{\"a\":".repeat(3_000), "}".repeat(3_000));
    vec![
        String::new(),
        "{".into(),
        "[]".into(),
        "null".into(),
        "\"text\"".into(),
        "{\"a\": 1e999}".into(),
        "{\"customer_id\": 7, \"name\": [], \"channel\": {}, \"to\": 1}".into(),
        "{\"unknown\": true}".into(),
        "{\"text\": \"\\u0000\"}".into(),
        "\u{feff}{}".into(),
        "{\"a\":\"\u{fffd}\"}".into(),
        deep,
        deep_object,
    ]
}

#[tokio::test]
async fn malformed_input_on_every_route_is_a_4xx() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&format!(
        "[categories.transactional]\nconsent = \"opt-out\"\n{}{}",
        default_twilio(&sim.url()),
        sendgrid_connector("sendgrid", &sim.url())
    ))
    .await;
    let spec = gw.get_ok("/openapi.json").await;
    let paths = spec["paths"].as_object().expect("paths");
    let mut tried = 0;
    let mut accepted = Vec::new();
    for (template, operations) in paths {
        let path = template
            .replace("{id}", "x%00y")
            .replace("{connector}", "twilio")
            .replace("{token}", "a.b")
            .replace("{channel}", "sms")
            .replace("{address}", "%2B31%20abc")
            .replace("{name}", "..%2F..")
            .replace("{event_id}", "evt_%FF");
        for method in operations.as_object().expect("operations").keys() {
            let method: reqwest::Method = method.to_uppercase().parse().expect("method");
            let queries = [
                "",
                "?limit=-1&after=%00&from=yesterday&to=1e999&group_by=nope&format=xml&sample=99999999999999999999",
            ];
            for query in queries {
                for body in malformed_bodies() {
                    let response = gw
                        .client
                        .request(method.clone(), format!("{}{path}{query}", gw.url))
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap();
                    let status = response.status().as_u16();
                    let text = response.text().await.unwrap_or_default();
                    tried += 1;
                    assert!(
                        status < 500,
                        "{method} {path}{query} with {:.80?}: {status} {text}",
                        body
                    );
                    if (200..300).contains(&status) && method != reqwest::Method::GET {
                        accepted.push(format!(
                            "{method} {path}{query} {body:.40?}: {status} {text:.80}"
                        ));
                    }
                }
            }
        }
    }
    assert!(tried > 300, "only {tried} requests");
    // Nothing malformed changed anything.
    assert!(accepted.is_empty(), "accepted:\n{}", accepted.join("\n"));
    assert_eq!(gw.stored_messages(), 0);
    let customers: Value = gw.get_ok("/v1/broadcasts").await;
    assert_eq!(customers["broadcasts"], serde_json::json!([]));
}

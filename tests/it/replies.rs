//! Customers writing back: a WhatsApp or SMS reply that is not STOP/START is
//! the customer's `message.received` event (journeys start on it) and is
//! posted to the platform, so the conversation can go on.

use crate::support::{FAST_DISPATCH, TestGateway, answer, default_twilio, whatsapp_connector};
use crate::webhooks::{PUBLIC_URL, twilio_callback};
use axum::extract::State;
use axum::http::StatusCode;
use crossgate_tests::{DEFAULT_AUTH_TOKEN, ProviderSim};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const APP_SECRET: &str = "meta-app-secret";
const CALLBACK_SECRET: &str = "callback-secret-0123456789";

/// The platform: records every callback it is posted.
#[derive(Clone, Default)]
struct Platform {
    got: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Platform {
    async fn start(&self) -> String {
        async fn take(
            State(platform): State<Platform>,
            uri: axum::http::Uri,
            body: String,
        ) -> StatusCode {
            let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
            platform
                .got
                .lock()
                .unwrap()
                .push((uri.path().to_owned(), body));
            StatusCode::NO_CONTENT
        }
        let app = axum::Router::new()
            .fallback(axum::routing::post(take))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        origin
    }

    /// The replies posted so far, by path.
    fn replies(&self) -> Vec<(String, Value)> {
        let got = self.got.lock().unwrap();
        got.iter()
            .filter(|(_, body)| body["type"] == "message.received")
            .cloned()
            .collect()
    }

    async fn wait_for_replies(&self, count: usize) -> Vec<(String, Value)> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let replies = self.replies();
            if replies.len() >= count {
                return replies;
            }
            assert!(Instant::now() < deadline, "replies posted: {replies:?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

fn config(sim: &ProviderSim, platform: &str) -> String {
    format!(
        r#"{FAST_DISPATCH}
[server]
public_url = "{PUBLIC_URL}"

[callbacks]
secret = "{CALLBACK_SECRET}"
inbound_url = "{platform}/replies"
allowed_hosts = ["{platform}"]
backoff_base_ms = 50

[journey_runner]
tick_ms = 25

[categories.support]
consent = "opt-out"

[journeys.concierge]
trigger = "message.received"
condition = "event.channel == 'whatsapp'"
entry = "1m"
[[journeys.concierge.steps]]
id = "acknowledge"
send = {{ category = "support", text = "Thanks! Someone from the shop will answer you shortly.", channels = ["whatsapp"] }}
{}
app_secret = "{APP_SECRET}"
{}"#,
        whatsapp_connector("whatsapp", &sim.url()),
        default_twilio(&sim.url()),
    )
}

/// A Meta webhook with one customer message, signed with the app secret.
async fn whatsapp_message(gw: &TestGateway, message: Value) -> (u16, Value) {
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": message["from"]}],
            "messages": [message],
        }}]}],
    })
    .to_string();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(APP_SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let response = gw
        .client
        .post(format!("{}/v1/webhooks/whatsapp", gw.url))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", format!("sha256={hex}"))
        .body(body)
        .send()
        .await
        .unwrap();
    answer(response).await
}

#[tokio::test]
async fn a_reply_on_whatsapp_reaches_the_platform_callback() {
    let sim = ProviderSim::start().await.unwrap();
    let platform = Platform::default();
    let origin = platform.start().await;
    let gw = TestGateway::start(&config(&sim, &origin)).await;
    let (status, _) = gw
        .put_customer("ana", &json!({"addresses": {"whatsapp": "+5511987654321"}}))
        .await;
    assert_eq!(status, 201);
    let id = gw
        .send_ok(&json!({
            "customer_id": "ana", "category": "support", "channels": ["whatsapp"],
            "content": {"text": "Your order has shipped"},
            "callback_url": format!("{origin}/orders"),
        }))
        .await;
    let sent = gw.settled(&id).await;
    let wamid = sent["provider_message_id"].as_str().unwrap().to_owned();

    let reply = json!({
        "from": "5511987654321", "id": "wamid.REPLY1", "timestamp": "1700000000",
        "type": "text", "text": {"body": "Can it come on Friday?\nI am out on Thursday."},
        "context": {"from": "15550001111", "id": wamid},
    });
    let (status, applied) = whatsapp_message(&gw, reply.clone()).await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["replies"], 1);

    // The reply answers our message, so it goes where that message's
    // statuses go, with the customer and our message id.
    let replies = platform.wait_for_replies(1).await;
    let (path, body) = &replies[0];
    assert_eq!(path, "/orders");
    assert_eq!(body["channel"], "whatsapp");
    assert_eq!(body["from"], "+5511987654321");
    assert_eq!(
        body["text"],
        "Can it come on Friday?\nI am out on Thursday."
    );
    assert_eq!(body["in_reply_to"], id.as_str());
    assert_eq!(body["customer_ids"], json!(["ana"]));
    assert_eq!(body["provider_message_id"], "wamid.REPLY1");

    // Meta repeating its callback is the same reply: not recorded again.
    let (status, applied) = whatsapp_message(&gw, reply).await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["replies"], 0);

    // It is the customer's event: the concierge journey answered on WhatsApp.
    let deadline = Instant::now() + Duration::from_secs(15);
    let acknowledged = loop {
        let bodies: Vec<String> = sim
            .requests()
            .iter()
            .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .filter_map(|b| b["text"]["body"].as_str().map(str::to_owned))
            .collect();
        if bodies.iter().any(|b| b.starts_with("Thanks!")) {
            break bodies;
        }
        assert!(Instant::now() < deadline, "no acknowledgement: {bodies:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(
        acknowledged
            .iter()
            .filter(|b| b.starts_with("Thanks!"))
            .count(),
        1,
        "{acknowledged:?}"
    );
    let runs = gw.get_ok("/v1/customers/ana/journeys").await;
    assert_eq!(runs["runs"][0]["journey"], "concierge", "{runs}");

    // A stranger's message answering nothing goes to `callbacks.inbound_url`.
    let (status, applied) = whatsapp_message(
        &gw,
        json!({"from": "5521998765432", "id": "wamid.REPLY2", "timestamp": "1700000001",
               "type": "button", "button": {"text": "Tell me more", "payload": "more"}}),
    )
    .await;
    assert_eq!((status, &applied["replies"]), (200, &json!(1)), "{applied}");
    let replies = platform.wait_for_replies(2).await;
    let (path, body) = &replies[1];
    assert_eq!(path, "/replies");
    assert_eq!(body["from"], "+5521998765432");
    assert_eq!(body["text"], "Tell me more");
    assert_eq!(body["customer_ids"], json!([]));
    assert_eq!(body["in_reply_to"], Value::Null);
    assert_eq!(platform.replies().len(), 2, "the repeated reply was posted");
    gw.stop().await;
}

#[tokio::test]
async fn an_sms_reply_is_posted_and_stop_is_still_an_opt_out() {
    let sim = ProviderSim::start().await.unwrap();
    let platform = Platform::default();
    let origin = platform.start().await;
    let gw = TestGateway::start(&config(&sim, &origin)).await;
    gw.put_customer("bo", &json!({"addresses": {"phone": "+31612345678"}}))
        .await;

    let (status, applied) = twilio_callback(
        &gw,
        &[
            ("MessageSid", "SM0000000000000000000000000000a1"),
            ("From", "+31612345678"),
            ("Body", "Is the shop open on Sunday?"),
        ],
        DEFAULT_AUTH_TOKEN,
    )
    .await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["replies"], 1);
    let replies = platform.wait_for_replies(1).await;
    assert_eq!(replies[0].0, "/replies");
    assert_eq!(replies[0].1["channel"], "sms");
    assert_eq!(replies[0].1["customer_ids"], json!(["bo"]));

    let (status, applied) = twilio_callback(
        &gw,
        &[
            ("MessageSid", "SM0000000000000000000000000000a2"),
            ("From", "+31612345678"),
            ("Body", "STOP"),
        ],
        DEFAULT_AUTH_TOKEN,
    )
    .await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["replies"], 0);
    assert_eq!(applied["suppressions"], 1);
    // The concierge journey is for WhatsApp: nothing was sent back by SMS.
    gw.quiesce().await;
    assert!(sim.requests().is_empty(), "{:?}", sim.requests().len());
    assert_eq!(platform.replies().len(), 1);

    // A short code is no phone number a profile can hold; its text still arrives.
    let (status, applied) = twilio_callback(
        &gw,
        &[
            ("MessageSid", "SM0000000000000000000000000000a3"),
            ("From", "12345"),
            ("Body", "Your code is 4711"),
        ],
        DEFAULT_AUTH_TOKEN,
    )
    .await;
    assert_eq!((status, &applied["replies"]), (200, &json!(1)), "{applied}");
    let replies = platform.wait_for_replies(2).await;
    assert_eq!(replies[1].1["from"], "12345");
    assert_eq!(replies[1].1["customer_ids"], json!([]));
    gw.stop().await;
}

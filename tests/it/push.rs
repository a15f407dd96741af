//! Push through FCM and Web Push, end to end: the simulator checks the JWT
//! exchange, the access token, the VAPID signature, and decrypts each push.

use crate::support::{
    FAST_DISPATCH, TestGateway, fcm_connector, outcomes, sendgrid_connector, webpush_connector,
};
use crossgate_tests::{
    Behaviour, DEFAULT_FCM_PROJECT, DEFAULT_VAPID_PRIVATE_KEY, ProviderSim, vapid_public_key,
};
use serde_json::{Value, json};

async fn gateway(sim: &ProviderSim) -> TestGateway {
    let toml = format!(
        "{FAST_DISPATCH}[categories.transactional]\nconsent = \"opt-out\"\n{}{}{}",
        fcm_connector("fcm", &sim.url()),
        webpush_connector("webpush", &sim.url()),
        sendgrid_connector("sendgrid", &sim.url()),
    );
    TestGateway::start(&toml).await
}

fn push(customer: &str, text: &str) -> Value {
    json!({
        "customer_id": customer,
        "category": "transactional",
        "channels": ["push", "email"],
        "content": {"text": text, "subject": "Example Shop", "push": {"metadata": {"data:order_id": "1042"}}}
    })
}

fn fcm_sends(sim: &ProviderSim) -> Vec<Value> {
    sim.requests()
        .iter()
        .filter(|r| r.path.ends_with("messages:send"))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

#[tokio::test]
async fn fcm_delivers_several_messages_on_one_token_exchange() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim).await;
    let profile = json!({"addresses": {"push": ["fcm-device-1"]}});
    assert_eq!(gw.put_customer("c-fcm", &profile).await.0, 201);

    // Sent at once: a cold gateway must still make exactly one exchange.
    let bodies: Vec<Value> = (0..5)
        .map(|i| push("c-fcm", &format!("update {i}")))
        .collect();
    let sends = bodies.iter().map(|body| gw.send(body));
    let ids: Vec<String> = futures::future::join_all(sends)
        .await
        .into_iter()
        .map(|(status, answer)| {
            assert_eq!(status, 202, "{answer}");
            answer["id"].as_str().unwrap().to_owned()
        })
        .collect();
    for id in &ids {
        let message = gw.settled(id).await;
        assert_eq!(message["status"], "sent", "{message}");
        assert_eq!(message["delivered_by"], "fcm");
        assert!(
            message["provider_message_id"]
                .as_str()
                .unwrap()
                .starts_with("projects/crossgate-sim/messages/")
        );
    }
    assert_eq!(
        sim.fcm_token_exchanges(),
        1,
        "one JWT-bearer exchange for all five"
    );
    let sends = fcm_sends(&sim);
    assert_eq!(sends.len(), 5);
    let first = sends
        .iter()
        .find(|s| s["message"]["notification"]["body"] == "update 0")
        .unwrap();
    assert_eq!(first["message"]["token"], "fcm-device-1");
    assert_eq!(first["message"]["notification"]["title"], "Example Shop");
    assert_eq!(
        first["message"]["data"]["order_id"], "1042",
        "content.push.metadata"
    );
    assert!(
        ids.contains(
            &first["message"]["data"]["crossgate_message_id"]
                .as_str()
                .unwrap()
                .to_owned()
        )
    );
    gw.stop().await;
}

#[tokio::test]
async fn fcm_outage_is_retried_and_rejection_is_permanent() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim).await;
    let profile = json!({"addresses": {"push": ["fcm-device-2"]}});
    gw.put_customer("c-fcm2", &profile).await;

    sim.script(DEFAULT_FCM_PROJECT, [Behaviour::Fail]);
    let only_push = json!({"customer_id": "c-fcm2", "category": "transactional", "channels": ["push"], "content": {"text": "retry me"}});
    let id = gw.send_ok(&only_push).await;
    let message = gw.settled(&id).await;
    assert_eq!(message["status"], "sent", "{message}");
    assert_eq!(outcomes(&message), ["retryable", "sent"]);

    sim.script(
        DEFAULT_FCM_PROJECT,
        [Behaviour::Reject {
            code: 400,
            message: "Invalid value at 'message.notification'".into(),
        }],
    );
    let id = gw.send_ok(&only_push).await;
    let message = gw.settled(&id).await;
    assert_eq!(message["status"], "failed", "{message}");
    let attempts = message["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "a permanent failure is not retried");
    assert_eq!(attempts[0]["error"]["code"], "INVALID_ARGUMENT");
    gw.stop().await;
}

#[tokio::test]
async fn an_unregistered_fcm_token_is_dropped_from_the_profile_and_email_takes_over() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim).await;
    let profile =
        json!({"addresses": {"push": ["fcm-dead", "fcm-other"], "email": "anna@example.nl"}});
    gw.put_customer("c-dead", &profile).await;
    sim.fcm_unregister("fcm-dead");

    let id = gw.send_ok(&push("c-dead", "hello")).await;
    let message = gw.settled(&id).await;
    assert_eq!(message["status"], "sent", "{message}");
    assert_eq!(message["delivered_by"], "sendgrid", "falls back to email");
    assert_eq!(message["attempts"][0]["error"]["code"], "UNREGISTERED");

    let stored = gw.customer("c-dead").await;
    assert_eq!(
        stored["addresses"]["push"],
        json!(["fcm-other"]),
        "{stored}"
    );

    // The next message goes to the remaining token, never to the dead one.
    let id = gw.send_ok(&push("c-dead", "again")).await;
    let message = gw.settled(&id).await;
    assert_eq!(message["delivered_by"], "fcm", "{message}");
    let tokens: Vec<_> = fcm_sends(&sim)
        .iter()
        .map(|s| s["message"]["token"].clone())
        .collect();
    assert_eq!(tokens, [json!("fcm-dead"), json!("fcm-other")]);
    gw.stop().await;
}

fn subscription_id(subscription: &Value) -> String {
    subscription["endpoint"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn web_push_decrypts_to_the_exact_payload() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim).await;
    let subscription = sim.web_push_subscribe(Some(&vapid_public_key(DEFAULT_VAPID_PRIVATE_KEY)));
    let profile = json!({"addresses": {"push": ["fcm-token", subscription]}});
    assert_eq!(
        gw.put_customer("c-web", &profile).await.0,
        201,
        "a token and a subscription"
    );

    let request = json!({
        "customer_id": "c-web",
        "category": "transactional",
        "channels": ["push"],
        "content": {"text": "Your order shipped 📦", "subject": "Order #1042"}
    });
    // FCM takes the token first; make it refuse so the subscription is tried next.
    sim.fcm_unregister("fcm-token");
    let (status, answer) = gw.send(&request).await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["id"].as_str().unwrap();
    let message = gw.settled(id).await;
    assert_eq!(message["status"], "sent", "{message}");
    assert_eq!(message["delivered_by"], "webpush");
    let tried: Vec<_> = message["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["connector"].clone())
        .collect();
    assert_eq!(tried, [json!("fcm"), json!("webpush")]);

    let pushes = sim.web_pushes();
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0].subscription_id, subscription_id(&subscription));
    assert_eq!(pushes[0].ttl, 600);
    assert_eq!(pushes[0].urgency.as_deref(), Some("normal"));
    let expected =
        json!({"id": id, "title": "Order #1042", "body": "Your order shipped 📦", "data": {}});
    assert_eq!(pushes[0].payload, expected.to_string().into_bytes());
    gw.stop().await;
}

#[tokio::test]
async fn web_push_retries_a_busy_push_service_and_fails_on_rejection() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim).await;
    let subscription = sim.web_push_subscribe(None);
    let id = subscription_id(&subscription);
    gw.put_customer("c-web2", &json!({"addresses": {"push": [subscription]}}))
        .await;
    let only_push = json!({"customer_id": "c-web2", "category": "transactional", "channels": ["push"], "content": {"text": "hi"}});

    sim.script_web_push(
        &id,
        [Behaviour::RateLimit {
            retry_after_secs: 1,
        }],
    );
    let message = gw.settled(&gw.send_ok(&only_push).await).await;
    assert_eq!(message["status"], "sent", "{message}");
    assert_eq!(message["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(message["attempts"][0]["error"]["code"], "http_429");

    sim.script_web_push(
        &id,
        [Behaviour::Reject {
            code: 400,
            message: "bad payload".into(),
        }],
    );
    let message = gw.settled(&gw.send_ok(&only_push).await).await;
    assert_eq!(message["status"], "failed", "{message}");
    assert_eq!(message["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(message["attempts"][0]["error"]["code"], "http_400");
    assert_eq!(sim.web_pushes().len(), 1);
    gw.stop().await;
}

#[tokio::test]
async fn a_gone_subscription_is_dropped_and_not_routed_to_again() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = gateway(&sim).await;
    let subscription = sim.web_push_subscribe(None);
    let profile =
        json!({"addresses": {"push": [subscription.clone()], "email": "anna@example.nl"}});
    gw.put_customer("c-gone", &profile).await;
    sim.web_push_unsubscribe(&subscription_id(&subscription));

    let message = gw
        .settled(&gw.send_ok(&push("c-gone", "hello")).await)
        .await;
    assert_eq!(message["delivered_by"], "sendgrid", "{message}");
    assert_eq!(message["attempts"][0]["error"]["code"], "subscription_gone");
    let stored = gw.customer("c-gone").await;
    assert!(stored["addresses"].get("push").is_none(), "{stored}");

    let (status, answer) = gw.send(&push("c-gone", "again")).await;
    assert_eq!(status, 202);
    assert_eq!(answer["plan"]["channels"][0]["channel"], "push");
    assert_eq!(
        answer["plan"]["channels"][0]["decision"], "no_address",
        "{answer}"
    );
    let pushes_attempted = sim
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/webpush/push/"))
        .count();
    gw.settled(answer["id"].as_str().unwrap()).await;
    assert_eq!(pushes_attempted, 1);
    gw.stop().await;
}

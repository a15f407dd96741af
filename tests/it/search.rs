//! `GET /v1/messages`: a customer's messages, newest first, a page at a
//! time; filters; and the bounds every search keeps.

use crate::support::{FAST_DISPATCH, TestGateway, default_twilio, sms};
use crossgate_tests::ProviderSim;
use serde_json::json;

#[tokio::test]
async fn a_customers_messages_are_found_newest_first_a_page_at_a_time() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&format!("{FAST_DISPATCH}{}", default_twilio(&sim.url()))).await;
    let profile = json!({"addresses": {"phone": "+31612345678"}});
    assert_eq!(gw.put_customer("ada", &profile).await.0, 201);
    let mut sent = Vec::new();
    for text in ["one", "two", "three"] {
        let body =
            json!({"customer_id": "ada", "category": "transactional", "content": {"text": text}});
        sent.push(gw.send_ok(&body).await);
    }
    let stranger = gw.send_ok(&sms("+31687654321", "not ada's")).await;
    for id in sent.iter().chain([&stranger]) {
        gw.settled(id).await;
    }

    let page = gw.get_ok("/v1/messages?customer_id=ada&limit=2").await;
    let ids: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [sent[2].as_str(), sent[1].as_str()], "{page}");
    assert_eq!(page["messages"][0]["status"], "sent");
    assert_eq!(page["messages"][0]["channel"], "sms");
    assert_eq!(page["messages"][0]["delivered_by"], "twilio");
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = gw
        .get_ok(&format!(
            "/v1/messages?customer_id=ada&limit=2&after={cursor}"
        ))
        .await;
    assert_eq!(rest["messages"].as_array().unwrap().len(), 1);
    assert_eq!(rest["messages"][0]["id"], sent[0].as_str());
    assert!(rest["next_cursor"].is_null());

    let by_address = gw.get_ok("/v1/messages?address=%2B31687654321").await;
    assert_eq!(by_address["messages"][0]["id"], stranger.as_str());
    let everyone = gw.get_ok("/v1/messages?status=sent&channel=sms").await;
    assert_eq!(everyone["messages"].as_array().unwrap().len(), 4);
    let none = gw.get_ok("/v1/messages?status=read").await;
    assert_eq!(none["messages"], json!([]));
}

#[tokio::test]
async fn a_search_is_bounded_and_its_filters_checked() {
    let sim = ProviderSim::start().await.unwrap();
    let gw = TestGateway::start(&default_twilio(&sim.url())).await;
    for (query, field) in [
        ("from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z", "from"),
        ("from=2026-03-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        ("from=yesterday", "from"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("channel=fax", "channel"),
        ("status=lost", "status"),
        ("after=not-a-cursor", "after"),
        ("customer_id=.hidden", "customer_id"),
    ] {
        let (status, body) = gw.get(&format!("/v1/messages?{query}")).await;
        assert_eq!(status, 422, "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
    let (status, body) = gw.get("/v1/messages?colour=blue").await;
    assert_eq!(status, 400, "unknown parameters are refused: {body}");
    assert_eq!(body["error"]["code"], "invalid_query");
    // Narrowed to a customer, a range may reach back as far as retention keeps.
    let (status, body) = gw
        .get("/v1/messages?customer_id=ada&from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z")
        .await;
    assert_eq!(status, 200, "{body}");
}

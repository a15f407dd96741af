//! Table-driven tests of the planner: one policy, many customers.

use super::*;
use crate::customer::{Addresses, Consent};
use crate::customer::{PushAddress, PushFormat, SuppressionReason};
use crate::routing::policy::{
    CategoryConfig, ConnectorRoute, FrequencyCap, QuietHours, RoutingConfig,
};
use std::collections::BTreeMap;

fn policy(strategy: Strategy) -> Policy {
    let regions = [
        ("NL", "EU"),
        ("DE", "EU"),
        ("US", "NA"),
        ("BR", "LATAM"),
        ("CN", "CN"),
    ]
    .into_iter()
    .map(|(c, r)| (c.to_owned(), r.to_owned()))
    .collect();
    let mut orders = BTreeMap::new();
    orders.insert(
        "EU".to_owned(),
        vec![
            Channel::Email,
            Channel::Push,
            Channel::Sms,
            Channel::Whatsapp,
        ],
    );
    orders.insert(
        "NA".to_owned(),
        vec![Channel::Email, Channel::Sms, Channel::Push],
    );
    orders.insert(
        "CN".to_owned(),
        vec![Channel::Sms, Channel::Push, Channel::Email],
    );
    orders.insert(
        "LATAM".to_owned(),
        vec![Channel::Whatsapp, Channel::Sms, Channel::Email],
    );
    let mut categories = BTreeMap::new();
    categories.insert(
        "marketing".to_owned(),
        CategoryConfig {
            consent: ConsentMode::OptIn,
            quiet_hours: Some(QuietHours::try_from("21:00-08:00".to_owned()).unwrap()),
            frequency_cap: Some(FrequencyCap {
                max: 3,
                per: 7 * 86_400_000,
            }),
            ..CategoryConfig::transactional()
        },
    );
    categories.insert("transactional".to_owned(), CategoryConfig::transactional());
    let connector = |name: &str, channel, costs: &[(&str, f64)]| ConnectorRoute {
        name: name.to_owned(),
        channel,
        cost: costs.iter().map(|(r, c)| (r.to_string(), *c)).collect(),
        push_format: PushFormat::Token,
        regions: None,
        senders: Default::default(),
        expect_report_within: None,
    };
    Policy {
        regions,
        routing: RoutingConfig {
            default: vec![Channel::Email, Channel::Push, Channel::Sms],
            strategy,
            regions: orders,
            connectors: Default::default(),
            escalate_after: Default::default(),
        },
        categories,
        connectors: vec![
            connector("sendgrid", Channel::Email, &[("default", 0.001)]),
            connector("fcm", Channel::Push, &[("default", 0.0)]),
            connector(
                "twilio",
                Channel::Sms,
                &[("default", 0.0079), ("EU", 0.072)],
            ),
            connector("twilio-backup", Channel::Sms, &[("default", 0.009)]),
            connector("whatsapp", Channel::Whatsapp, &[("default", 0.005)]),
        ],
        in_app_ttl: 86_400_000,
        control: Default::default(),
    }
}

fn customer(
    country: Option<&str>,
    email: bool,
    phone: Option<&str>,
    whatsapp: Option<&str>,
    push: bool,
) -> Profile {
    Profile {
        addresses: Addresses {
            email: email.then(|| "c@example.com".to_owned()),
            phone: phone.map(str::to_owned),
            whatsapp: whatsapp.map(str::to_owned),
            push: if push {
                vec![PushAddress::Token("push-token".to_owned())]
            } else {
                Vec::new()
            },
            feed: None,
        },
        country: country.map(str::to_owned),
        ..Profile::default()
    }
}

fn consent(
    mut profile: Profile,
    channel: Channel,
    category: &str,
    status: ConsentStatus,
) -> Profile {
    profile.consent.entry(channel).or_default().insert(
        category.to_owned(),
        Consent {
            status,
            at: "2026-01-01T00:00:00Z".parse().unwrap(),
            source: Some("test".to_owned()),
        },
    );
    profile
}

fn noon() -> Timestamp {
    "2026-06-10T12:00:00Z".parse().unwrap()
}

fn transactional() -> Request<'static> {
    Request {
        category: "transactional",
        channels: None,
        sms: None,
        unhealthy: &[],
    }
}

fn first_channel(plan: &Plan) -> Option<Channel> {
    plan.deliveries.first().map(|d| d.channel)
}

fn reason(plan: &Plan, channel: Channel) -> Option<Reason> {
    plan.channels
        .iter()
        .find(|c| c.channel == channel)
        .map(|c| c.decision)
}

#[test]
fn the_first_channel_follows_region_consent_and_addresses() {
    struct Case {
        name: &'static str,
        profile: Profile,
        request: Request<'static>,
        strategy: Strategy,
        first: Option<Channel>,
        region: &'static str,
    }
    let everything = |country| {
        customer(
            country,
            true,
            Some("+31612345678"),
            Some("+31612345678"),
            true,
        )
    };
    let cases = [
        Case {
            name: "a Dutch customer gets email",
            profile: everything(Some("NL")),
            request: transactional(),
            strategy: Strategy::Ordered,
            first: Some(Channel::Email),
            region: "EU",
        },
        Case {
            name: "a Brazilian customer with a WhatsApp number gets WhatsApp",
            profile: customer(
                Some("BR"),
                true,
                Some("+5511987654321"),
                Some("+5511987654321"),
                false,
            ),
            request: transactional(),
            strategy: Strategy::Ordered,
            first: Some(Channel::Whatsapp),
            region: "LATAM",
        },
        Case {
            name: "a Chinese customer gets SMS",
            profile: customer(Some("CN"), true, Some("+8613812345678"), None, true),
            request: transactional(),
            strategy: Strategy::Ordered,
            first: Some(Channel::Sms),
            region: "CN",
        },
        Case {
            name: "the region comes from the phone number when the profile has none",
            profile: customer(
                None,
                true,
                Some("+5511987654321"),
                Some("+5511987654321"),
                false,
            ),
            request: transactional(),
            strategy: Strategy::Ordered,
            first: Some(Channel::Whatsapp),
            region: "LATAM",
        },
        Case {
            name: "cheapest picks push over SMS",
            profile: customer(Some("US"), false, Some("+14155550100"), None, true),
            request: transactional(),
            strategy: Strategy::Cheapest,
            first: Some(Channel::Push),
            region: "NA",
        },
        Case {
            name: "the request's channels come first",
            profile: everything(Some("NL")),
            request: Request {
                category: "transactional",
                channels: Some(&[Channel::Sms, Channel::Email]),
                sms: None,
                unhealthy: &[],
            },
            strategy: Strategy::Ordered,
            first: Some(Channel::Sms),
            region: "EU",
        },
        Case {
            name: "without any region data the default order applies",
            profile: customer(None, true, None, None, true),
            request: transactional(),
            strategy: Strategy::Ordered,
            first: Some(Channel::Email),
            region: "default",
        },
    ];
    for case in cases {
        let plan = plan(
            case.request,
            &case.profile,
            &[],
            &policy(case.strategy),
            noon(),
            0,
        )
        .unwrap();
        assert_eq!(first_channel(&plan), case.first, "{}: {plan:#?}", case.name);
        assert_eq!(plan.region, case.region, "{}", case.name);
        assert!(plan.suppressed.is_none(), "{}", case.name);
    }
}

#[test]
fn the_customers_preference_leads_the_regions_order() {
    let mut profile = customer(
        Some("NL"),
        true,
        Some("+31612345678"),
        Some("+31612345678"),
        true,
    );
    profile.preferred_channels = vec![Channel::Whatsapp];
    let plan = plan(
        transactional(),
        &profile,
        &[],
        &policy(Strategy::Ordered),
        noon(),
        0,
    )
    .unwrap();
    assert_eq!(plan.order_source, "customer_preference");
    let order: Vec<Channel> = plan.channels.iter().map(|c| c.channel).collect();
    assert_eq!(
        order,
        [
            Channel::Whatsapp,
            Channel::Email,
            Channel::Push,
            Channel::Sms
        ]
    );
}

#[test]
fn an_sms_opt_out_is_never_overridden() {
    let profile = consent(
        customer(Some("NL"), true, Some("+31612345678"), None, false),
        Channel::Sms,
        "transactional",
        ConsentStatus::OptedOut,
    );
    for channels in [None, Some(&[Channel::Sms][..])] {
        let request = Request {
            category: "transactional",
            channels,
            sms: None,
            unhealthy: &[],
        };
        let plan = plan(
            request,
            &profile,
            &[],
            &policy(Strategy::Ordered),
            noon(),
            0,
        )
        .unwrap();
        assert!(
            plan.deliveries.iter().all(|d| d.channel != Channel::Sms),
            "{plan:#?}"
        );
        assert_eq!(reason(&plan, Channel::Sms), Some(Reason::OptedOut));
    }
}

#[test]
fn marketing_needs_an_opt_in_where_transactional_does_not() {
    let profile = consent(
        customer(Some("US"), true, Some("+14155550100"), None, false),
        Channel::Email,
        "marketing",
        ConsentStatus::OptedIn,
    );
    let marketing = Request {
        category: "marketing",
        channels: None,
        sms: None,
        unhealthy: &[],
    };
    let plan_m = plan(
        marketing,
        &profile,
        &[],
        &policy(Strategy::Ordered),
        noon(),
        0,
    )
    .unwrap();
    assert_eq!(reason(&plan_m, Channel::Sms), Some(Reason::NoConsent));
    assert_eq!(reason(&plan_m, Channel::Email), Some(Reason::Chosen));
    let plan_t = plan(
        transactional(),
        &profile,
        &[],
        &policy(Strategy::Ordered),
        noon(),
        0,
    )
    .unwrap();
    assert_eq!(reason(&plan_t, Channel::Sms), Some(Reason::Chosen));
}

#[test]
fn skipped_channels_say_why() {
    let profile = customer(Some("NL"), false, Some("+31612345678"), None, false);
    let plan = plan(
        transactional(),
        &profile,
        &[],
        &policy(Strategy::Ordered),
        noon(),
        0,
    )
    .unwrap();
    assert_eq!(reason(&plan, Channel::Email), Some(Reason::NoAddress));
    assert_eq!(reason(&plan, Channel::Sms), Some(Reason::Chosen));
    // Both SMS connectors, in failover order.
    let connectors: Vec<&str> = plan
        .deliveries
        .iter()
        .map(|d| d.connector.as_str())
        .collect();
    assert_eq!(connectors, ["twilio", "twilio-backup"]);
    let mut no_whatsapp = policy(Strategy::Ordered);
    no_whatsapp
        .connectors
        .retain(|c| c.channel != Channel::Whatsapp);
    let profile = customer(Some("BR"), false, None, Some("+5511987654321"), false);
    let plan = super::plan(transactional(), &profile, &[], &no_whatsapp, noon(), 0).unwrap();
    assert_eq!(reason(&plan, Channel::Whatsapp), Some(Reason::NoConnector));
    // The one channel with an address says why the message cannot go.
    let suppressed = plan.suppressed.as_ref().unwrap();
    assert_eq!(suppressed.reason, "no_connector");
    assert_eq!(
        suppressed.detail,
        "whatsapp: no connector serves this channel"
    );
}

#[test]
fn quiet_hours_defer_to_the_windows_end_in_the_customers_zone_across_dst() {
    let mut profile = consent(
        customer(Some("NL"), true, None, None, false),
        Channel::Email,
        "marketing",
        ConsentStatus::OptedIn,
    );
    profile.timezone = Some("Europe/Amsterdam".to_owned());
    let marketing = Request {
        category: "marketing",
        channels: None,
        sms: None,
        unhealthy: &[],
    };
    // 23:00 in Amsterdam the night clocks go forward (CET -> CEST at 02:00).
    let late: Timestamp = "2026-03-28T22:00:00Z".parse().unwrap();
    let plan = plan(
        marketing,
        &profile,
        &[],
        &policy(Strategy::Ordered),
        late,
        0,
    )
    .unwrap();
    // 08:00 CEST is 06:00 UTC, not 07:00.
    assert_eq!(
        plan.deferred_until,
        Some("2026-03-29T06:00:00Z".parse().unwrap())
    );
    // Just after midnight the same window ends the same morning.
    let after_midnight: Timestamp = "2026-06-10T23:30:00Z".parse().unwrap();
    let plan2 = super::plan(
        marketing,
        &profile,
        &[],
        &policy(Strategy::Ordered),
        after_midnight,
        0,
    )
    .unwrap();
    assert_eq!(
        plan2.deferred_until,
        Some("2026-06-11T06:00:00Z".parse().unwrap())
    );
    // Outside the window nothing waits; transactional messages never do.
    let plan3 = super::plan(
        marketing,
        &profile,
        &[],
        &policy(Strategy::Ordered),
        noon(),
        0,
    )
    .unwrap();
    assert_eq!(plan3.deferred_until, None);
    let plan4 = super::plan(
        transactional(),
        &profile,
        &[],
        &policy(Strategy::Ordered),
        late,
        0,
    )
    .unwrap();
    assert_eq!(plan4.deferred_until, None);
}

#[test]
fn a_reached_frequency_cap_suppresses_with_its_reason() {
    let profile = consent(
        customer(Some("NL"), true, None, None, false),
        Channel::Email,
        "marketing",
        ConsentStatus::OptedIn,
    );
    let marketing = Request {
        category: "marketing",
        channels: None,
        sms: None,
        unhealthy: &[],
    };
    let under = plan(
        marketing,
        &profile,
        &[],
        &policy(Strategy::Ordered),
        noon(),
        2,
    )
    .unwrap();
    assert!(under.suppressed.is_none());
    let at_cap = plan(
        marketing,
        &profile,
        &[],
        &policy(Strategy::Ordered),
        noon(),
        3,
    )
    .unwrap();
    let suppression = at_cap.suppressed.expect("suppressed");
    assert_eq!(suppression.reason, "frequency_cap");
    assert!(
        suppression.detail.contains("3 per 7d"),
        "{}",
        suppression.detail
    );
}

#[test]
fn an_unknown_category_is_an_error() {
    let profile = customer(Some("NL"), true, None, None, false);
    let request = Request {
        category: "gossip",
        channels: None,
        sms: None,
        unhealthy: &[],
    };
    assert_eq!(
        plan(
            request,
            &profile,
            &[],
            &policy(Strategy::Ordered),
            noon(),
            0
        ),
        Err(UnknownCategory("gossip".into()))
    );
}

fn listed(channel: Channel, address: &str, reason: SuppressionReason) -> Listed {
    Listed {
        channel,
        address: address.to_owned(),
        reason,
        source: "test".to_owned(),
        note: None,
        created_at: 0,
    }
}

#[test]
fn suppressed_addresses_are_passed_over_and_said_why() {
    let profile = customer(Some("NL"), true, Some("+31612345678"), None, false);
    let bounced = [listed(
        Channel::Email,
        "c@example.com",
        SuppressionReason::Bounce,
    )];
    let plan = plan(
        transactional(),
        &profile,
        &bounced,
        &policy(Strategy::Ordered),
        noon(),
        0,
    )
    .unwrap();
    assert_eq!(plan.channels[0].decision, Reason::SuppressedAddress);
    assert_eq!(plan.deliveries[0].channel, Channel::Sms, "falls to SMS");

    // A category that ignores deliverability suppressions still tries the
    // bounced address; it never ignores a STOP.
    let mut lenient = policy(Strategy::Ordered);
    lenient
        .categories
        .get_mut("transactional")
        .unwrap()
        .respect_suppressions = false;
    let plan = super::plan(transactional(), &profile, &bounced, &lenient, noon(), 0).unwrap();
    assert_eq!(plan.channels[0].decision, Reason::Chosen);
    let stopped = [
        listed(Channel::Email, "c@example.com", SuppressionReason::OptOut),
        listed(Channel::Sms, "+31612345678", SuppressionReason::OptOut),
    ];
    let plan = super::plan(transactional(), &profile, &stopped, &lenient, noon(), 0).unwrap();
    assert!(plan.deliveries.is_empty());
    let suppression = plan.suppressed.unwrap();
    assert_eq!(suppression.reason, "suppressed_address", "{suppression:?}");
}

#[test]
fn a_dead_push_token_gives_way_to_the_next() {
    let mut profile = customer(Some("NL"), false, None, None, false);
    profile.addresses.push = vec![
        PushAddress::Token("dead".to_owned()),
        PushAddress::Token("alive".to_owned()),
    ];
    let dead = [listed(
        Channel::Push,
        "dead",
        SuppressionReason::DeadAddress,
    )];
    let plan = plan(
        transactional(),
        &profile,
        &dead,
        &policy(Strategy::Ordered),
        noon(),
        0,
    )
    .unwrap();
    assert_eq!(plan.deliveries[0].address, "alive");
}

#[test]
fn an_sms_costs_its_price_per_segment() {
    // The same customer and connectors; only the SMS text's length changes.
    let profile = customer(
        Some("US"),
        false,
        Some("+14155550100"),
        Some("+14155550100"),
        false,
    );
    let one = crate::sms::segments("Your code is 1234");
    let three = crate::sms::segments(&"x".repeat(400));
    assert_eq!((one.segments, three.segments), (1, 3));
    let sms_cost = |sms| {
        let request = Request {
            category: "transactional",
            channels: Some(&[Channel::Sms, Channel::Whatsapp]),
            sms: Some(sms),
            unhealthy: &[],
        };
        let plan = plan(
            request,
            &profile,
            &[],
            &policy(Strategy::Cheapest),
            noon(),
            0,
        )
        .unwrap();
        let sms = plan
            .channels
            .iter()
            .find(|c| c.channel == Channel::Sms)
            .unwrap()
            .clone();
        (
            plan.channels[0].channel,
            sms.cost.unwrap(),
            sms.sms.unwrap().segments,
        )
    };
    // 0.0079 for one segment: WhatsApp (0.005) is cheaper either way.
    let (first, cost, segments) = sms_cost(one);
    assert_eq!((first, segments), (Channel::Whatsapp, 1));
    assert!((cost - 0.0079).abs() < 1e-9, "{cost}");
    let (_, cost, segments) = sms_cost(three);
    assert_eq!(segments, 3);
    assert!((cost - 3.0 * 0.0079).abs() < 1e-9, "{cost}");
    // And the plan says so where the platform reads it.
    let request = Request {
        category: "transactional",
        channels: Some(&[Channel::Sms]),
        sms: Some(three),
        unhealthy: &[],
    };
    let plan = plan(
        request,
        &profile,
        &[],
        &policy(Strategy::Ordered),
        noon(),
        0,
    )
    .unwrap();
    let json = serde_json::to_value(&plan.channels[0]).unwrap();
    assert_eq!(json["encoding"], "GSM-7");
    assert_eq!(json["segments"], 3);
}

/// A connector may serve some regions only, and a region may order a
/// channel's connectors: an EU customer's SMS goes through Vonage first,
/// a US customer's never does, and the plan says which and why.
#[test]
fn connectors_are_chosen_and_ordered_by_region() {
    let mut policy = policy(Strategy::Ordered);
    policy.connectors.push(ConnectorRoute {
        name: "vonage".into(),
        channel: Channel::Sms,
        cost: [("default".to_owned(), 0.001), ("EU".to_owned(), 0.05)].into(),
        push_format: PushFormat::Token,
        regions: Some(vec!["EU".into()]),
        senders: [("NL".to_owned(), vec!["+3197010520001".to_owned()])].into(),
        expect_report_within: Some(600_000),
    });
    policy.routing.connectors.insert(
        "EU".into(),
        [(Channel::Sms, vec!["vonage".to_owned()])].into(),
    );
    let sms = |policy: &Policy, country: &str, phone: &str| {
        let request = Request {
            channels: Some(&[Channel::Sms]),
            ..transactional()
        };
        let profile = customer(Some(country), false, Some(phone), None, false);
        plan(request, &profile, &[], policy, noon(), 0).unwrap()
    };
    let eu = sms(&policy, "NL", "+31612345678");
    let decision = &eu.channels[0];
    assert_eq!(decision.connectors, ["vonage", "twilio", "twilio-backup"]);
    assert_eq!(decision.connector_order, Some("region"));
    assert!(decision.not_in_region.is_empty());
    assert_eq!(eu.deliveries[0].connector, "vonage");
    assert_eq!(
        decision.cost,
        Some(0.009),
        "the cheapest serving the EU: twilio-backup"
    );

    let us = sms(&policy, "US", "+14155550123");
    let decision = &us.channels[0];
    assert_eq!(decision.connectors, ["twilio", "twilio-backup"]);
    assert_eq!(decision.connector_order, Some("configured"));
    assert_eq!(decision.not_in_region, ["vonage"]);
    assert!(us.deliveries.iter().all(|d| d.connector != "vonage"));
    assert_eq!(
        decision.cost,
        Some(0.0079),
        "vonage's price is not the US's"
    );

    // A channel whose connectors all serve elsewhere says so.
    policy
        .connectors
        .retain(|c| c.channel != Channel::Sms || c.name == "vonage");
    let us = sms(&policy, "US", "+14155550123");
    assert_eq!(reason(&us, Channel::Sms), Some(Reason::NoConnectorInRegion));
    assert_eq!(us.suppressed.unwrap().reason, "no_connector_in_region");
}

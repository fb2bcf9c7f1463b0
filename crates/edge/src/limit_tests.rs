use super::*;

fn limits(adjust: impl FnOnce(&mut LimitsConfig)) -> Limits {
    let mut config = LimitsConfig::default();
    adjust(&mut config);
    Limits::new(&config, Duration::from_secs(1)).expect("valid limits")
}

fn client(ip: &str, key: Option<&str>) -> Client {
    Client {
        ip: ip.parse().expect("an address"),
        key: key.map(str::to_string),
    }
}

fn forwarded(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("x-forwarded-for", value.parse().expect("a header value"));
    headers
}

fn peer(ip: &str) -> SocketAddr {
    SocketAddr::new(ip.parse().expect("an address"), 40000)
}

#[test]
fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
    let l = limits(|c| c.trusted_proxies = vec!["10.0.0.0/8".into(), "192.168.1.1".into()]);
    let spoofed = forwarded("1.2.3.4");
    assert_eq!(l.client_ip(peer("8.8.8.8"), &spoofed), peer("8.8.8.8").ip());
    assert_eq!(
        l.client_ip(peer("10.1.2.3"), &spoofed),
        peer("1.2.3.4").ip()
    );
    // Each proxy appends the address it saw: the rightmost untrusted one is the client,
    // whatever the client itself wrote further left.
    let chain = forwarded("6.6.6.6, 5.5.5.5, 192.168.1.1");
    assert_eq!(l.client_ip(peer("10.0.0.1"), &chain), peer("5.5.5.5").ip());
    // Only proxies in the chain: the leftmost is as close to the client as we know.
    let proxies = forwarded("10.9.9.9, 192.168.1.1");
    assert_eq!(
        l.client_ip(peer("10.0.0.1"), &proxies),
        peer("10.9.9.9").ip()
    );
    // A header that does not parse, or none, leaves the peer.
    assert_eq!(
        l.client_ip(peer("10.0.0.1"), &forwarded("nonsense")),
        peer("10.0.0.1").ip()
    );
    assert_eq!(
        l.client_ip(peer("10.0.0.1"), &HeaderMap::new()),
        peer("10.0.0.1").ip()
    );
}

#[test]
fn an_ipv4_peer_seen_through_an_ipv6_socket_is_the_same_client() {
    let l = limits(|c| c.trusted_proxies = vec!["127.0.0.1".into()]);
    let mapped = peer("::ffff:127.0.0.1");
    assert_eq!(
        l.client_ip(mapped, &forwarded("9.9.9.9")),
        peer("9.9.9.9").ip()
    );
}

#[test]
fn an_ip_over_its_rate_is_throttled_while_another_is_served() {
    let l = limits(|c| {
        c.ip_events_per_sec = 10;
        c.ip_burst = 20;
    });
    let a = client("1.1.1.1", None);
    l.take(&a, 20).expect("the burst passes");
    let refused = l.take(&a, 1).expect_err("the bucket is empty");
    let Refused::Throttled {
        scope, retry_after, ..
    } = refused.clone()
    else {
        panic!("not throttled: {refused:?}");
    };
    assert_eq!(scope, Scope::Ip);
    assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_millis(100));
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.retry_after(), Some(1));
    l.take(&client("2.2.2.2", None), 20)
        .expect("another address has its own bucket");
}

#[test]
fn a_key_over_its_rate_is_throttled_while_another_key_is_served() {
    let l = limits(|c| c.key_events_per_sec = 5);
    let web = client("1.1.1.1", Some("web"));
    l.take(&web, 5)
        .expect("one second's worth is the default burst");
    let refused = l.take(&web, 1).expect_err("over the rate");
    assert!(matches!(
        refused,
        Refused::Throttled {
            scope: Scope::Key,
            ..
        }
    ));
    l.take(&client("1.1.1.1", Some("app")), 5)
        .expect("another key, same address");
    l.take(&client("1.1.1.1", None), 100)
        .expect("no key, no key limit");
}

#[test]
fn a_batch_larger_than_the_bucket_is_413_not_a_retry_forever() {
    let l = limits(|c| {
        c.ip_events_per_sec = 10;
        c.ip_burst = 50;
    });
    let refused = l
        .take(&client("1.1.1.1", None), 51)
        .expect_err("never fits");
    assert_eq!(
        refused,
        Refused::BatchOverBurst {
            scope: Scope::Ip,
            events: 51,
            burst: 50
        }
    );
    assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(refused.retry_after(), None);
}

#[test]
fn no_rates_configured_means_no_throttling() {
    let l = limits(|_| {});
    for _ in 0..1000 {
        l.take(&client("1.1.1.1", Some("web")), 10_000)
            .expect("unlimited");
    }
}

#[test]
fn requests_past_the_in_flight_bound_are_shed_until_one_finishes() {
    let l = limits(|c| c.max_requests_in_flight = 2);
    let first = l.admit().expect("room");
    let _second = l.admit().expect("room");
    let refused = l.admit().expect_err("full");
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.retry_after(), Some(1));
    drop(first);
    l.admit().expect("a place was freed");
}

#[test]
fn bytes_past_the_pending_bound_are_shed_until_the_log_has_them() {
    let l = limits(|c| c.max_pending_bytes = 1000);
    let held = l.hold(600).expect("room");
    assert!(matches!(
        l.hold(600),
        Err(Refused::Shed {
            bound: Bound::Bytes,
            limit: 1000,
            ..
        })
    ));
    l.hold(400).expect("what is left fits");
    drop(held);
    l.hold(600).expect("freed");
}

#[test]
fn retry_after_rounds_up_to_whole_seconds() {
    assert_eq!(whole_seconds(Duration::ZERO), 1);
    assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
    assert_eq!(whole_seconds(Duration::from_secs(2)), 2);
    assert_eq!(whole_seconds(Duration::from_millis(2001)), 3);
}

#[test]
fn settings_that_cannot_work_are_refused() {
    let bad = |adjust: fn(&mut LimitsConfig)| {
        let mut config = LimitsConfig::default();
        adjust(&mut config);
        Limits::new(&config, Duration::from_secs(1))
            .err()
            .map(|e| e.to_string())
    };
    assert_eq!(
        bad(|c| c.trusted_proxies = vec!["10.0.0.0/33".into()]).as_deref(),
        Some("limits.trusted_proxies: \"10.0.0.0/33\" is neither an IP address nor a CIDR range")
    );
    assert_eq!(
        bad(|c| c.max_requests_in_flight = 0).as_deref(),
        Some("limits.max_requests_in_flight must be at least 1")
    );
    assert!(bad(|c| c.trusted_proxies = vec!["::1".into(), "fd00::/8".into()]).is_none());
}

//! The PowerDNS provider against a real pdns-server.

use std::net::IpAddr;

use berth_core::config::Secret;
use berth_integrations::dns::{DnsError, DnsProvider, PowerDns};
use url::Url;

use crate::support::services::PowerDnsServer;

fn provider(pdns: &PowerDnsServer, key: &str) -> PowerDns {
    PowerDns::new(Url::parse(&pdns.api_url).expect("url"), Secret::new(key), "localhost", "hosting.test")
}

#[tokio::test]
async fn records_are_created_replaced_and_removed_idempotently() {
    let pdns = PowerDnsServer::start().await;
    let dns = provider(&pdns, &pdns.api_key);
    let v4: IpAddr = "192.0.2.10".parse().expect("ip");
    let v4b: IpAddr = "192.0.2.11".parse().expect("ip");

    // The zone does not exist yet: the first upsert creates it.
    dns.upsert_address("shop.hosting.test", v4).await.expect("create");
    dns.upsert_address("shop.hosting.test", v4).await.expect("same again is a no-op");
    assert_eq!(dns.addresses("shop.hosting.test").await.expect("read"), vec![v4]);
    dns.upsert_address("shop.hosting.test", v4b).await.expect("replace");
    assert_eq!(dns.addresses("shop.hosting.test").await.expect("read"), vec![v4b], "replaced, never duplicated");
    assert!(dns.addresses("other.hosting.test").await.expect("read").is_empty());

    dns.remove_address("shop.hosting.test").await.expect("remove");
    dns.remove_address("shop.hosting.test").await.expect("removing twice is fine");
    assert!(dns.addresses("shop.hosting.test").await.expect("read").is_empty());
}

#[tokio::test]
async fn failures_are_reported_not_swallowed() {
    let pdns = PowerDnsServer::start().await;
    let wrong_key = provider(&pdns, "not-the-key");
    let err = wrong_key.upsert_address("a.hosting.test", "192.0.2.1".parse().expect("ip")).await.expect_err("refused");
    assert!(matches!(err, DnsError::Refused { status: 401, .. }), "{err}");

    let dns = provider(&pdns, &pdns.api_key);
    let err = dns.upsert_address("a.elsewhere.test", "192.0.2.1".parse().expect("ip")).await.expect_err("outside");
    assert!(matches!(err, DnsError::OutsideZone(..)));

    let down =
        PowerDns::new(Url::parse("http://127.0.0.1:1").expect("url"), Secret::new("k"), "localhost", "hosting.test");
    let err = down.upsert_address("a.hosting.test", "192.0.2.1".parse().expect("ip")).await.expect_err("down");
    assert!(matches!(err, DnsError::Unreachable(_)));
}

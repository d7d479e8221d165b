//! Per-customer networks: a customer's sites reach each other, never another customer's.

use std::time::Duration;

use crate::support::TestApp;

#[tokio::test]
async fn sites_reach_their_own_customers_sites_only() {
    let app = TestApp::spawn_runtime().await;
    let admin = app.admin().await;
    let a = app.customer(&admin, "a@isolation.test", "business").await;
    let b = app.customer(&admin, "b@isolation.test", "business").await;
    let a1 = app.running_site(&admin, &a, "a-one", "a1.isolation.test").await;
    let a2 = app.running_site(&admin, &a, "a-two", "a2.isolation.test").await;
    let b1 = app.running_site(&admin, &b, "b-one", "b1.isolation.test").await;
    let names = &app.scope().names;
    let from = names.container(a1["id"].as_str().expect("id").parse().expect("uuid"));
    let url = |site: &serde_json::Value| format!("http://{}/", site["address"].as_str().expect("address"));

    // (busybox wget's own -T timeout crashes in the static build; the test bounds each try.)
    let within = Duration::from_secs(5);
    // A's other site, by address and by its site name (a network alias).
    let got = app.exec_within(within, &from, &["/bin/busybox", "wget", "-q", "-O", "-", &url(&a2)]).await;
    let (code, out) = got.expect("A's request to its own site hung");
    assert_eq!(code, 0, "A cannot reach its own other site: {out}");
    assert!(out.contains("<h1>a-two</h1>"), "{out}");
    let got = app.exec_within(within, &from, &["/bin/busybox", "wget", "-q", "-O", "-", "http://a-two:8080/"]).await;
    assert_eq!(got.map(|g| g.0), Some(0), "A cannot reach its other site by name");

    // B's site: no TCP connection at all (the attempt fails or never completes).
    let b_addr = b1["address"].as_str().expect("address");
    let (ip, port) = b_addr.rsplit_once(':').expect("ip:port");
    let got = app.exec_within(within, &from, &["/bin/busybox", "nc", ip, port]).await;
    assert!(got.as_ref().is_none_or(|(code, _)| *code != 0), "A opened a TCP connection to B's site: {got:?}");
    let got = app.exec_within(within, &from, &["/bin/busybox", "wget", "-q", "-O", "-", &url(&b1)]).await;
    assert!(got.as_ref().is_none_or(|(code, _)| *code != 0), "A fetched B's page: {got:?}");
    app.finish().await;
}

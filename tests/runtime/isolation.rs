//! Per-customer networks: a customer's sites reach each other, never another customer's.

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

    // A's other site, by address and by its site name (a network alias).
    let (code, out) = app.exec(&from, &["/bin/busybox", "wget", "-q", "-T", "3", "-O", "-", &url(&a2)]).await;
    assert_eq!(code, 0, "A cannot reach its own other site: {out}");
    assert!(out.contains("<h1>a-two</h1>"), "{out}");
    let (code, out) = app.exec(&from, &["/bin/busybox", "wget", "-q", "-T", "3", "-O", "-", "http://a-two:8080/"]).await;
    assert_eq!(code, 0, "A cannot reach its other site by name: {out}");

    // B's site: no TCP connection at all.
    let b_addr = b1["address"].as_str().expect("address");
    let (ip, port) = b_addr.rsplit_once(':').expect("ip:port");
    let (code, out) = app.exec(&from, &["/bin/busybox", "nc", "-z", "-w", "3", ip, port]).await;
    assert_ne!(code, 0, "A opened a TCP connection to B's site: {out}");
    let (code, out) = app.exec(&from, &["/bin/busybox", "wget", "-q", "-T", "3", "-O", "-", &url(&b1)]).await;
    assert_ne!(code, 0, "A fetched B's page: {out}");
    app.finish().await;
}

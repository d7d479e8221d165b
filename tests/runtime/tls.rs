//! HTTPS on the ingress with the certificates Berth stores, and ACME HTTP-01 challenges
//! answered through it. Certificates are written exactly as the onboarding step writes them
//! (`self_signed` + `CertStore::save`), challenges as the ACME issuer publishes them.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use berth_integrations::tls::{self, CertStore, ChallengeStore, DirChallengeStore};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::TestApp;

const HOST: &str = "shop.tls.test";
/// A second domain of the same site, never given a certificate.
const BARE: &str = "www.shop.tls.test";

/// A client that reaches `host` at this test's TLS port (SNI and Host = `host`) and trusts only
/// `root` (the self-signed certificate itself), or nothing at all when `root` is `None`.
fn https_client(tls: SocketAddr, host: &str, root: Option<&str>) -> reqwest::Client {
    let builder = reqwest::Client::builder()
        .resolve(host, tls)
        .timeout(Duration::from_secs(5))
        .tls_built_in_root_certs(false)
        .redirect(reqwest::redirect::Policy::none());
    let builder = match root {
        Some(pem) => builder.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).expect("PEM")),
        // Accepts any certificate, so the only way for a request to fail is the server itself.
        None => builder.danger_accept_invalid_certs(true),
    };
    builder.build().expect("client")
}

fn url(tls: SocketAddr, host: &str) -> String {
    format!("https://{host}:{}/", tls.port())
}

/// Polls `GET https://host/` until it answers 200, failing with the last error after 30 s.
async fn wait_https(client: &reqwest::Client, tls: SocketAddr, host: &str) -> reqwest::Response {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let last = match client.get(url(tls, host)).send().await {
            Ok(res) if res.status() == StatusCode::OK => return res,
            Ok(res) => format!("status {}", res.status()),
            Err(e) => format!("{e:?}"),
        };
        if Instant::now() > deadline {
            panic!("{host} was not served over HTTPS within 30 s: {last}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn hosts_with_a_stored_certificate_are_served_over_https() {
    let app = TestApp::spawn_runtime_tls().await;
    let tls = app.config.runtime.ingress_tls_listen.expect("TLS address");
    let admin = app.admin().await;
    let c = app.customer(&admin, "tls@example.com", "business").await;
    let res = admin.post("/api/v1/sites", &json!({"customer_id": c, "name": "shop", "domains": [HOST, BARE]})).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    app.wait_running(&admin, &res.str("id")).await;
    app.wait_ingress(HOST, 200).await;

    // No certificate yet: nginx listens on the TLS port but refuses the handshake, even to a
    // client that would accept any certificate.
    tokio::net::TcpStream::connect(tls).await.expect("nginx listens on the TLS port");
    let any_cert = https_client(tls, HOST, None);
    let err = any_cert.get(url(tls, HOST)).send().await.expect_err("no certificate, no HTTPS");
    assert!(err.is_connect(), "the handshake fails: {err:?}");

    // Onboarding stores a certificate; the next reconcile pass serves it.
    let certs = CertStore::new(app.config.tls_dir());
    let first = tls::self_signed(&[HOST.to_owned()]).expect("certificate");
    certs.save(HOST, &first).await.expect("stored");
    let trusting_first = https_client(tls, HOST, Some(&first.chain_pem));
    let res = wait_https(&trusting_first, tls, HOST).await;
    let headers = res.headers().clone();
    let page = res.text().await.expect("body");
    assert!(page.contains("<h1>shop</h1>"), "the site's own page: {page}");
    assert_eq!(
        headers.get("strict-transport-security").and_then(|v| v.to_str().ok()),
        Some("max-age=31536000"),
        "{headers:?}"
    );
    assert_eq!(headers.get("x-frame-options").and_then(|v| v.to_str().ok()), Some("SAMEORIGIN"), "{headers:?}");
    assert_eq!(headers.get("x-content-type-options").and_then(|v| v.to_str().ok()), Some("nosniff"));

    // Plain HTTP still serves the site, without HSTS.
    let (status, http) = app.through_ingress(HOST).await;
    assert_eq!(status, 200, "{http}");
    assert!(http.contains("<h1>shop</h1>"), "{http}");
    assert!(!http.to_ascii_lowercase().contains("strict-transport-security"), "HSTS only over TLS: {http}");

    // The site's other domain has no certificate: HTTP only.
    app.wait_ingress(BARE, 200).await;
    let bare = https_client(tls, BARE, None);
    let err = bare.get(url(tls, BARE)).send().await.expect_err("a host without a certificate");
    assert!(err.is_connect(), "the handshake fails: {err:?}");

    // A half-written certificate (no issuer marker yet, as after a crash mid-save) is never used.
    let (chain, key) = certs.paths(BARE);
    std::fs::create_dir_all(chain.parent().expect("host dir")).expect("host dir");
    let half = tls::self_signed(&[BARE.to_owned()]).expect("certificate");
    std::fs::write(&chain, &half.chain_pem).expect("chain");
    std::fs::write(&key, &half.key_pem).expect("key");

    // A renewed certificate replaces the first one without a restart. The render that installs
    // it also looked at the half-written one above.
    let second = tls::self_signed(&[HOST.to_owned()]).expect("certificate");
    certs.save(HOST, &second).await.expect("stored");
    let trusting_second = https_client(tls, HOST, Some(&second.chain_pem));
    wait_https(&trusting_second, tls, HOST).await;
    // A fresh client: a pooled connection from before the reload would prove nothing. Old nginx
    // workers may still accept for a moment after a graceful reload, so poll until they are gone.
    let trusting_first = https_client(tls, HOST, Some(&first.chain_pem));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        match trusting_first.get(url(tls, HOST)).send().await {
            Err(err) => {
                assert!(err.is_connect(), "{err:?}");
                break;
            }
            Ok(res) => {
                assert!(std::time::Instant::now() < deadline, "the old certificate is still served: {res:?}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    let err = bare.get(url(tls, BARE)).send().await.expect_err("half-written certificate used");
    assert!(err.is_connect(), "the handshake fails: {err:?}");
    let sites = std::fs::read_to_string(app.scope_ingress_sites()).expect("sites.conf");
    assert!(!sites.contains(&format!("server_name {BARE};")), "{sites}");

    app.finish().await;
}

#[tokio::test]
async fn acme_challenges_are_answered_through_the_ingress_and_nothing_else() {
    // No TLS address: challenges are served whatever the HTTPS setting (certificates are
    // ordered before HTTPS is switched on).
    let app = TestApp::spawn_runtime().await;
    let admin = app.admin().await;
    let c = app.customer(&admin, "acme@example.com", "business").await;
    app.running_site(&admin, &c, "acme", "acme.tls.test").await;
    app.wait_ingress("acme.tls.test", 200).await;

    // Published as the ACME issuer does; a readable file next to the directory stands for
    // everything else in the data directory (certificates and keys included).
    let challenges = DirChallengeStore::new(app.config.acme_challenge_dir());
    challenges.put("tok-EN_123", "tok-EN_123.thumbprint").await.expect("published");
    std::fs::write(app.config.server.data_dir.join("canary"), "CANARY-SECRET").expect("canary");

    let path = "/.well-known/acme-challenge/tok-EN_123";
    for host in ["acme.tls.test", "not-routed-yet.tls.test"] {
        let (status, res) = app.through_ingress_path(host, path).await;
        assert_eq!(status, 200, "{host}: {res}");
        assert!(res.ends_with("\r\n\r\ntok-EN_123.thumbprint"), "{host}: {res}");
        assert!(res.to_ascii_lowercase().contains("content-type: text/plain"), "{host}: {res}");
    }

    for escape in [
        "/.well-known/acme-challenge/../canary",
        "/.well-known/acme-challenge/../../canary",
        "/.well-known/acme-challenge/..%2fcanary",
        "/.well-known/acme-challenge/%2e%2e/canary",
        "/.well-known/acme-challenge/%2e%2e%2fcanary",
        "/.well-known/acme-challenge..%2fcanary",
        "/.well-known/acme-challenge../canary",
        "/.well-known/acme-challenge/",
        "/.well-known/acme-challenge/.",
    ] {
        for host in ["acme.tls.test", "not-routed-yet.tls.test"] {
            let (status, res) = app.through_ingress_path(host, escape).await;
            assert_ne!(status, 0, "{host}{escape}: no answer");
            assert!(!res.contains("CANARY-SECRET"), "{host}{escape} escaped the directory: {res}");
            assert!(!res.contains("tok-EN_123"), "{host}{escape} listed the directory: {res}");
        }
    }

    // A spent token is gone at once.
    challenges.remove("tok-EN_123").await.expect("removed");
    let (status, res) = app.through_ingress_path("acme.tls.test", path).await;
    assert_eq!(status, 404, "{res}");
    app.finish().await;
}

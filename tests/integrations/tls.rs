//! Certificates from a real ACME CA (pebble) over HTTP-01, with names resolved through a real
//! PowerDNS, and the self-signed fallback.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use berth_core::config::Secret;
use berth_integrations::dns::{DnsProvider, PowerDns};
use berth_integrations::tls::{AcmeIssuer, DirChallengeStore, Issuer, TlsError};
use url::Url;

use crate::support::services::{free_port, Pebble, PowerDnsServer};

/// Serves the challenge directory the way the ingress does.
async fn challenge_responder(port: u16, dir: PathBuf) -> tokio::task::JoinHandle<()> {
    async fn token(State(dir): State<PathBuf>, Path(token): Path<String>) -> Result<String, StatusCode> {
        if !token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(StatusCode::NOT_FOUND);
        }
        tokio::fs::read_to_string(dir.join(token)).await.map_err(|_| StatusCode::NOT_FOUND)
    }
    let app =
        axum::Router::new().route("/.well-known/acme-challenge/{token}", axum::routing::get(token)).with_state(dir);
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await.expect("bind responder");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}

fn openssl(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("openssl").args(args).output().expect("openssl is installed");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test]
async fn acme_http01_issues_a_certificate_that_verifies() {
    let pdns = PowerDnsServer::start().await;
    let dns =
        PowerDns::new(Url::parse(&pdns.api_url).expect("url"), Secret::new(&pdns.api_key), "localhost", "hosting.test");
    dns.upsert_address("shop.hosting.test", "127.0.0.1".parse().expect("ip")).await.expect("record");

    let http_port = free_port();
    let pebble = Pebble::start(pdns.dns_port, http_port).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = DirChallengeStore::new(dir.path().join("challenges"));
    let responder = challenge_responder(http_port, store.dir().to_path_buf()).await;

    let issuer = AcmeIssuer::new(&pebble.directory_url, Some(pebble.ca_root.clone()), Some("ops@hosting.test".into()));
    let cert = issuer.issue(&["shop.hosting.test".into()], &store).await.expect("issued");
    assert_eq!(cert.issuer, Issuer::Acme);
    responder.abort();

    // The chain verifies against pebble's issuing root and names the host.
    let chain = dir.path().join("chain.pem");
    std::fs::write(&chain, &cert.chain_pem).expect("write chain");
    let root = dir.path().join("root.pem");
    std::fs::write(&root, pebble.issuing_root().await).expect("write root");
    let (ok, out) = openssl(&[
        "verify",
        "-CAfile",
        &root.display().to_string(),
        "-untrusted",
        &chain.display().to_string(),
        &chain.display().to_string(),
    ]);
    assert!(ok, "{out}");
    let (ok, out) = openssl(&["x509", "-noout", "-ext", "subjectAltName", "-in", &chain.display().to_string()]);
    assert!(ok && out.contains("DNS:shop.hosting.test"), "{out}");
    // The private key belongs to the certificate.
    let key = dir.path().join("key.pem");
    std::fs::write(&key, &cert.key_pem).expect("write key");
    let (_, cert_pub) = openssl(&["x509", "-noout", "-pubkey", "-in", &chain.display().to_string()]);
    let (_, key_pub) = openssl(&["pkey", "-pubout", "-in", &key.display().to_string()]);
    assert_eq!(cert_pub, key_pub);
    // Spent challenges are cleaned up.
    assert_eq!(std::fs::read_dir(store.dir()).expect("dir").count(), 0);
}

#[tokio::test]
async fn a_host_that_does_not_resolve_to_us_gets_an_error_not_a_certificate() {
    let pdns = PowerDnsServer::start().await;
    let http_port = free_port();
    let pebble = Pebble::start(pdns.dns_port, http_port).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = DirChallengeStore::new(dir.path());
    let issuer = AcmeIssuer::new(&pebble.directory_url, Some(pebble.ca_root.clone()), None);
    let err = issuer.issue(&["nowhere.hosting.test".into()], &store).await.expect_err("no DNS record");
    assert!(matches!(err, TlsError::Refused(_) | TlsError::Acme(_)), "{err}");
}

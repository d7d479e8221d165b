//! The listener (`server/src/http/serve.rs`): slow and silent clients are closed after their
//! timeout, the connection cap holds, and everyone else is still served meanwhile.

use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Client, TestApp};

/// Reads until the server closes the connection (EOF or reset); fails after `within`. Returns
/// what the server sent before closing.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> String {
    let mut seen = Vec::new();
    let result = tokio::time::timeout(within, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(result.is_ok(), "the server kept the connection open for more than {within:?}");
    String::from_utf8_lossy(&seen).into_owned()
}

/// A client that sends the start of a request head one byte at a time and never finishes it.
fn trickle(mut stream: TcpStream) -> tokio::task::JoinHandle<TcpStream> {
    tokio::spawn(async move {
        let head = b"GET /healthz HTTP/1.1\r\nHost: panel\r\nX-Slow: ".iter().chain(std::iter::repeat(&b'a'));
        for byte in head.take(200) {
            if stream.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        stream
    })
}

async fn healthz_ok(base: &str, within: Duration) {
    let http = reqwest::Client::builder().timeout(within).build().expect("client");
    let res = http.get(format!("{base}/healthz")).send().await.expect("/healthz answers while slow clients wait");
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn silent_and_trickling_clients_are_closed_and_others_are_served() {
    let app =
        TestApp::spawn_with(&[("BERTH_HTTP_HEADER_TIMEOUT_SECONDS", "2"), ("BERTH_HTTP_IDLE_TIMEOUT_SECONDS", "120")])
            .await;
    let mut silent = Vec::new();
    for _ in 0..150 {
        silent.push(TcpStream::connect(app.addr).await.expect("connect"));
    }
    let mut trickling = Vec::new();
    for _ in 0..30 {
        trickling.push(trickle(TcpStream::connect(app.addr).await.expect("connect")));
    }
    // Everyone else is served meanwhile, at once.
    for _ in 0..5 {
        healthz_ok(&app.base, Duration::from_secs(5)).await;
    }
    // The silent ones are closed after the timeout (they hold nothing for ever).
    for stream in &mut silent {
        closed_by_server(stream, Duration::from_secs(15)).await;
    }
    // The ones that trickle their head never finish it within the header timeout: closed too,
    // however steadily they send.
    for task in trickling {
        let mut stream = task.await.expect("trickle task");
        let answer = closed_by_server(&mut stream, Duration::from_secs(15)).await;
        assert!(!answer.contains("200 OK"), "a head that never ended was answered: {answer}");
    }
    healthz_ok(&app.base, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn the_connection_cap_holds_and_a_freed_slot_is_reused() {
    // Long timeouts: only the cap is at work here.
    let app = TestApp::spawn_with(&[
        ("BERTH_HTTP_MAX_CONNECTIONS", "8"),
        ("BERTH_HTTP_HEADER_TIMEOUT_SECONDS", "120"),
        ("BERTH_HTTP_IDLE_TIMEOUT_SECONDS", "120"),
    ])
    .await;
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(TcpStream::connect(app.addr).await.expect("connect"));
    }
    // The ninth connection waits in the backlog: no answer while all slots are held.
    let base = app.base.clone();
    let waiting = tokio::spawn(async move {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("client");
        http.get(format!("{base}/healthz")).send().await.map(|r| r.status())
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!waiting.is_finished(), "a ninth connection was served beyond BERTH_HTTP_MAX_CONNECTIONS=8");
    // One client leaves: its slot goes to the one waiting.
    drop(held.pop());
    let status = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("served once a slot is free")
        .expect("task")
        .expect("answered");
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let app =
        TestApp::spawn_with(&[("BERTH_HTTP_HEADER_TIMEOUT_SECONDS", "120"), ("BERTH_HTTP_IDLE_TIMEOUT_SECONDS", "1")])
            .await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: panel\r\n\r\n").await.expect("write");
    let mut buf = vec![0u8; 4096];
    let n =
        tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await.expect("answered").expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
    // Kept alive, then closed once idle (well before the 120 s header timeout).
    closed_by_server(&mut stream, Duration::from_secs(15)).await;
}

/// A reverse proxy keeps pooled connections open between requests: idle time is bounded by the
/// idle timeout, not by the (shorter) head timeout, which only runs once a head has begun.
#[tokio::test]
async fn keep_alive_outlasts_the_head_timeout() {
    let app =
        TestApp::spawn_with(&[("BERTH_HTTP_HEADER_TIMEOUT_SECONDS", "1"), ("BERTH_HTTP_IDLE_TIMEOUT_SECONDS", "120")])
            .await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    let mut buf = vec![0u8; 4096];
    for round in 0..2 {
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: panel\r\n\r\n").await.expect("write");
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("answered")
            .expect("read");
        let answer = String::from_utf8_lossy(&buf[..n]);
        assert!(answer.starts_with("HTTP/1.1 200"), "round {round}: {answer}");
        // Idle for three head timeouts; the connection is still there for the next request.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    // A head that begins and does not end is still cut after the head timeout.
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: pa").await.expect("write");
    let answer = closed_by_server(&mut stream, Duration::from_secs(15)).await;
    assert!(answer.is_empty(), "{answer}");
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_a_408_problem() {
    let app = TestApp::spawn_with(&[("BERTH_HTTP_BODY_TIMEOUT_SECONDS", "1")]).await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream
        .write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: panel\r\nContent-Type: application/json\r\n\
              Content-Length: 200\r\n\r\n{\"email\":",
        )
        .await
        .expect("write head");
    // Trickle the rest, steadily but far too slowly: the deadline is for the whole body.
    let mut answer = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut buf = [0u8; 4096];
    while tokio::time::Instant::now() < deadline && !String::from_utf8_lossy(&answer).contains("\r\n\r\n{") {
        let _ = stream.write_all(b" ").await;
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("content-type: application/problem+json"), "{answer}");
    assert!(answer.contains("urn:berth:problem:request-timeout"), "{answer}");
    // A body that does arrive in time is read as usual.
    let mut c = Client::new(&app.base);
    c.login(crate::support::ADMIN_EMAIL, crate::support::ADMIN_PASSWORD).await;
}

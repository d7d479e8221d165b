//! The reference service: the least code that serves the measured routes correctly, axum +
//! tokio-postgres on the same PostgreSQL as Berth. What Berth is compared with.
//!
//! - `GET /healthz`: a JSON body, nothing else.
//! - `GET /api/v1/sites/{id}`: the bearer token looked up by its SHA-256 in Berth's own
//!   `api_tokens` (joined to its enabled user), then the site read scoped by the user's customer;
//!   401 / 404 as Berth answers.
//! - `POST /api/v1/webhooks/signup`: the `Berth-Signature` checked (HMAC-SHA256 over `t.body`,
//!   5-minute tolerance, constant-time), the JSON parsed (unknown fields refused), then one
//!   INSERT + NOTIFY in one statement (one durable commit); a replayed event id answers 200.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio_postgres::{Client, NoTls, Statement};
use uuid::Uuid;

/// Connections to PostgreSQL; tokio-postgres pipelines concurrent queries on one connection, so
/// requests take them round-robin.
const CONNECTIONS: usize = 8;

struct Conn {
    client: Client,
    token: Statement,
    site: Statement,
    signup: Statement,
}

struct Ref {
    conns: Vec<Conn>,
    next: AtomicUsize,
    secret: String,
}

impl Ref {
    fn conn(&self) -> &Conn {
        &self.conns[self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len()]
    }
}

pub async fn run(database_url: &str, listen: &str, secret: String) -> anyhow::Result<()> {
    let mut conns = Vec::with_capacity(CONNECTIONS);
    for i in 0..CONNECTIONS {
        let (client, connection) = tokio_postgres::connect(database_url, NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("reference: connection failed: {e}");
            }
        });
        if i == 0 {
            client
                .batch_execute(
                    "CREATE TABLE IF NOT EXISTS bench_reference_signups (
                        event_id text PRIMARY KEY,
                        email text NOT NULL,
                        company_name text NOT NULL,
                        plan text NOT NULL,
                        host text NOT NULL,
                        received_at timestamptz NOT NULL DEFAULT now())",
                )
                .await?;
        }
        let token = client
            .prepare(
                "SELECT u.id, u.customer_id, u.role FROM api_tokens t JOIN users u ON u.id = t.user_id
                 WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND NOT u.disabled",
            )
            .await?;
        let site = client
            .prepare(
                "SELECT s.id, s.customer_id, s.name, s.image, s.desired_state, s.status, s.created_at,
                        s.updated_at,
                        ARRAY(SELECT d.domain FROM site_domains d WHERE d.site_id = s.id ORDER BY d.position)
                 FROM sites s WHERE s.id = $1 AND ($2::uuid IS NULL OR s.customer_id = $2)",
            )
            .await?;
        let signup = client
            .prepare(
                "WITH ins AS (INSERT INTO bench_reference_signups (event_id, email, company_name, plan, host)
                              VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING RETURNING event_id)
                 SELECT pg_notify('bench_reference_signup', event_id) FROM ins",
            )
            .await?;
        conns.push(Conn { client, token, site, signup });
    }
    let state = Arc::new(Ref { conns, next: AtomicUsize::new(0), secret });
    let app = Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/api/v1/sites/{id}", get(site))
        .route("/api/v1/webhooks/signup", post(signup))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

fn problem(status: StatusCode, detail: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        Json(json!({"status": status.as_u16(), "detail": detail})),
    )
        .into_response()
}

fn internal(e: tokio_postgres::Error) -> Response {
    eprintln!("reference: {e}");
    problem(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

async fn site(State(state): State<Arc<Ref>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let Some(token) =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
    else {
        return problem(StatusCode::UNAUTHORIZED, "send a bearer token");
    };
    let conn = state.conn();
    let hash = hex::encode(Sha256::digest(token.trim().as_bytes()));
    let user = match conn.client.query_opt(&conn.token, &[&hash]).await {
        Ok(Some(row)) => row,
        Ok(None) => return problem(StatusCode::UNAUTHORIZED, "invalid token"),
        Err(e) => return internal(e),
    };
    let role: String = user.get(2);
    let customer: Option<Uuid> = if role == "admin" { None } else { user.get(1) };
    if role != "admin" && customer.is_none() {
        return problem(StatusCode::NOT_FOUND, "site not found");
    }
    let Ok(id) = Uuid::parse_str(&id) else {
        return problem(StatusCode::NOT_FOUND, "site not found");
    };
    match conn.client.query_opt(&conn.site, &[&id, &customer]).await {
        Ok(Some(row)) => {
            let created: chrono::DateTime<chrono::Utc> = row.get(6);
            let updated: chrono::DateTime<chrono::Utc> = row.get(7);
            Json(json!({
                "id": row.get::<_, Uuid>(0),
                "customer_id": row.get::<_, Uuid>(1),
                "name": row.get::<_, String>(2),
                "image": row.get::<_, String>(3),
                "desired_state": row.get::<_, String>(4),
                "status": row.get::<_, String>(5),
                "created_at": created,
                "updated_at": updated,
                "domains": row.get::<_, Vec<String>>(8),
            }))
            .into_response()
        }
        Ok(None) => problem(StatusCode::NOT_FOUND, "site not found"),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignupBody {
    id: String,
    email: String,
    company_name: String,
    plan: String,
    subdomain: Option<String>,
    domain: Option<String>,
    #[allow(dead_code)]
    template: Option<String>,
}

fn signature_ok(secret: &str, header: Option<&str>, body: &[u8], now: i64) -> bool {
    let Some(header) = header else { return false };
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => sigs.extend(hex::decode(v).ok()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    if (now - t).abs() > 300 {
        return false;
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return false };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected = mac.finalize().into_bytes();
    sigs.iter().any(|s| s.len() == expected.len() && bool::from(subtle::ConstantTimeEq::ct_eq(&s[..], &expected[..])))
}

async fn signup(State(state): State<Arc<Ref>>, headers: HeaderMap, body: Bytes) -> Response {
    if headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) != Some("application/json") {
        return problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "send JSON");
    }
    let sig = headers.get("Berth-Signature").and_then(|v| v.to_str().ok());
    if !signature_ok(&state.secret, sig, &body, chrono::Utc::now().timestamp()) {
        return problem(StatusCode::UNAUTHORIZED, "bad signature");
    }
    let Ok(req) = serde_json::from_slice::<SignupBody>(&body) else {
        return problem(StatusCode::BAD_REQUEST, "bad JSON");
    };
    let host = match (&req.subdomain, &req.domain) {
        (Some(s), None) => format!("{s}.bench.test"),
        (None, Some(d)) => d.clone(),
        _ => return problem(StatusCode::UNPROCESSABLE_ENTITY, "send subdomain or domain"),
    };
    let conn = state.conn();
    match conn.client.query_opt(&conn.signup, &[&req.id, &req.email, &req.company_name, &req.plan, &host]).await {
        Ok(Some(_)) => (StatusCode::ACCEPTED, Json(json!({"id": req.id, "host": host}))).into_response(),
        Ok(None) => (StatusCode::OK, Json(json!({"id": req.id, "replay": true}))).into_response(),
        Err(e) => internal(e),
    }
}

//! Liveness, readiness and metrics, outside /api/v1 where probes and Prometheus expect them.

use axum::extract::{ConnectInfo, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz)).routes(routes!(metrics))
}

/// The process is up and serving.
#[utoipa::path(get, operation_id = "health_healthz", path = "/healthz", tag = "health", responses((status = 200, description = "Up")))]
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready to serve: the database (and Redis and the Docker engine, when configured) answer. A 503 names the failing part.
#[utoipa::path(get, operation_id = "health_readyz", path = "/readyz", tag = "health",
    responses((status = 200, description = "Ready"), (status = 503, description = "A dependency is down")))]
async fn readyz(State(state): State<AppState>) -> Response {
    let mut checks = serde_json::Map::new();
    let mut failing = Vec::new();
    match state.db.ping().await {
        Ok(()) => {
            checks.insert("database".into(), "ok".into());
        }
        Err(e) => {
            tracing::warn!(error = %e, "Readiness: database unreachable");
            checks.insert("database".into(), "unreachable".into());
            failing.push("database");
        }
    }
    if let Some(redis) = &state.redis {
        let mut conn = redis.clone();
        let pong: Result<String, _> = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await
        .unwrap_or_else(|_| Err(redis::RedisError::from((redis::ErrorKind::IoError, "timed out"))));
        match pong {
            Ok(_) => {
                checks.insert("redis".into(), "ok".into());
            }
            Err(e) => {
                tracing::warn!(error = %e, "Readiness: Redis unreachable");
                checks.insert("redis".into(), "unreachable".into());
                failing.push("redis");
            }
        }
    }
    if let Some(runtime) = &state.ops.runtime {
        match runtime.engine.ping().await {
            Ok(()) => {
                checks.insert("docker".into(), "ok".into());
            }
            Err(e) => {
                tracing::warn!(error = %e, "Readiness: Docker unreachable");
                checks.insert("docker".into(), "unreachable".into());
                failing.push("docker");
            }
        }
    }
    if failing.is_empty() {
        return Json(json!({"status": "ready", "checks": checks})).into_response();
    }
    let body = json!({
        "type": "urn:berth:problem:not-ready",
        "title": "Not ready",
        "status": 503,
        "detail": format!("not ready: {} unreachable", failing.join(" and ")),
        "checks": checks,
    });
    (StatusCode::SERVICE_UNAVAILABLE, [(header::CONTENT_TYPE, "application/problem+json")], body.to_string())
        .into_response()
}

/// Prometheus text exposition of Berth's own metrics and every running site's (the process's one
/// registry: HTTP, queue, reconciler, ingress, sites). With `BERTH_METRICS_TOKEN` set it demands
/// `Authorization: Bearer <token>`; without, it answers loopback clients only.
#[utoipa::path(get, operation_id = "health_metrics", path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format"), (status = 401, description = "Missing or wrong token", body = crate::http::error::Problem), (status = 403, description = "Not a loopback client and no token configured", body = crate::http::error::Problem)))]
async fn metrics(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: axum::http::HeaderMap,
) -> Response {
    let token = state.config.metrics.token.as_ref().map(|t| t.expose());
    if let Some(refused) = crate::http::metrics::refusal(token, &headers, peer.ip()) {
        return refused;
    }
    let text = state.metrics.render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

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
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match metrics_access(state.config.metrics.token.as_ref().map(|t| t.expose()), bearer, peer.ip()) {
        Access::Allowed => {}
        Access::BadToken => {
            return crate::http::error::problem_response(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Unauthorized",
                "send Authorization: Bearer <BERTH_METRICS_TOKEN>".into(),
                vec![],
                None,
            )
        }
        Access::NotLoopback => {
            return crate::http::error::problem_response(
                StatusCode::FORBIDDEN,
                "forbidden",
                "Forbidden",
                "metrics are served to loopback clients only until BERTH_METRICS_TOKEN is set".into(),
                vec![],
                None,
            )
        }
    }
    let text = state.metrics.render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

#[derive(Debug, PartialEq, Eq)]
enum Access {
    Allowed,
    BadToken,
    NotLoopback,
}

/// Who may read `/metrics`: with a token configured, whoever sends it (compared in constant
/// time); without one, loopback clients only. The peer address is the socket's, never a header.
fn metrics_access(token: Option<&str>, bearer: Option<&str>, peer: std::net::IpAddr) -> Access {
    match (token, bearer) {
        (Some(token), Some(sent)) if berth_core::crypto::secure_eq(token.as_bytes(), sent.as_bytes()) => {
            Access::Allowed
        }
        (Some(_), _) => Access::BadToken,
        (None, _) if peer.is_loopback() => Access::Allowed,
        (None, _) => Access::NotLoopback,
    }
}

#[cfg(test)]
mod tests {
    use super::{metrics_access, Access};

    #[test]
    fn metrics_need_the_token_or_a_loopback_peer() {
        let lo = "127.0.0.1".parse().expect("ip");
        let far = "10.213.0.5".parse().expect("ip");
        let token = Some("0123456789abcdef0123");
        assert_eq!(metrics_access(None, None, lo), Access::Allowed);
        assert_eq!(metrics_access(None, None, far), Access::NotLoopback);
        assert_eq!(metrics_access(token, None, lo), Access::BadToken);
        assert_eq!(metrics_access(token, Some("wrong"), far), Access::BadToken);
        assert_eq!(metrics_access(token, Some("0123456789abcdef0123"), far), Access::Allowed);
    }
}

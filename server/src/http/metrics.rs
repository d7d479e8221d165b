//! Prometheus metrics for Berth itself: HTTP request count and latency by route and status,
//! registered in the process's one registry; [`Metrics::render`] exposes the whole registry
//! (HTTP, queue, reconciler and ingress metrics alike).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

/// Behind one `Arc`: the HTTP metrics layer gets its own copy on every request, and one
/// reference count is all that copy costs (the whole application state, which it was given
/// before, took a dozen, each an atomic shared by every core).
#[derive(Clone)]
pub struct Metrics(Arc<HttpMetrics>);

struct HttpMetrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
}

impl Metrics {
    /// Creates the HTTP metrics in `registry` (the process's one registry). A second app in one
    /// process (tests) reuses what is already there rather than failing.
    pub fn new(registry: &Registry) -> Self {
        let registry = registry.clone();
        let http_requests = IntCounterVec::new(
            Opts::new("berth_http_requests_total", "HTTP requests served, by method, route and status"),
            &["method", "route", "status"],
        )
        .expect("static metric definition is valid");
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "berth_http_request_duration_seconds",
                "HTTP request latency, by method, route and status",
            )
            .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            &["method", "route", "status"],
        )
        .expect("static metric definition is valid");
        for c in
            [Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>, Box::new(http_duration.clone())]
        {
            if let Err(e) = registry.register(c) {
                tracing::debug!(error = %e, "HTTP metric already registered");
            }
        }
        Self(Arc::new(HttpMetrics { registry, http_requests, http_duration }))
    }

    pub fn render(&self) -> String {
        render(&self.0.registry)
    }
}

/// The Prometheus text exposition of everything in `registry`.
pub fn render(registry: &Registry) -> String {
    let mut buf = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&registry.gather(), &mut buf) {
        tracing::error!(error = %e, "Could not encode metrics");
    }
    String::from_utf8(buf).unwrap_or_default()
}

/// The `/metrics` endpoint alone, for `berth worker` (`BERTH_WORKER_METRICS_LISTEN`), guarded
/// like the server's (`token` is `BERTH_METRICS_TOKEN`).
pub fn router(registry: Registry, token: Option<String>) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(
            move |axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
                  headers: axum::http::HeaderMap| {
                let answer = match refusal(token.as_deref(), &headers, peer.ip()) {
                    Some(refused) => refused,
                    None => {
                        let text = render(&registry);
                        ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
                    }
                };
                async move { answer }
            },
        ),
    )
}

#[derive(Debug, PartialEq, Eq)]
enum Access {
    Allowed,
    BadToken,
    NotLoopback,
}

/// Who may read `/metrics`: with a token configured, whoever sends it (compared in constant
/// time); without one, loopback clients only. The peer address is the socket's, never a header.
fn access(token: Option<&str>, bearer: Option<&str>, peer: std::net::IpAddr) -> Access {
    match (token, bearer) {
        (Some(token), Some(sent)) if berth_core::crypto::secure_eq(token.as_bytes(), sent.as_bytes()) => {
            Access::Allowed
        }
        (Some(_), _) => Access::BadToken,
        (None, _) if peer.is_loopback() => Access::Allowed,
        (None, _) => Access::NotLoopback,
    }
}

/// The problem+json answer that refuses a `/metrics` request, or `None` when it may be served.
pub fn refusal(token: Option<&str>, headers: &axum::http::HeaderMap, peer: std::net::IpAddr) -> Option<Response> {
    use axum::http::StatusCode;
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let (status, slug, title, detail) = match access(token, bearer, peer) {
        Access::Allowed => return None,
        Access::BadToken => (
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            "send Authorization: Bearer <BERTH_METRICS_TOKEN>",
        ),
        Access::NotLoopback => (
            StatusCode::FORBIDDEN,
            "forbidden",
            "Forbidden",
            "metrics are served to loopback clients only until BERTH_METRICS_TOKEN is set",
        ),
    };
    Some(crate::http::error::problem_response(status, slug, title, detail.into(), vec![], None))
}

/// Middleware: labels by the route template (`/api/v1/sites/{id}`), never the raw path, so
/// ids do not explode the label set. Nothing is allocated per request: the template is the
/// router's shared string, the method and status their static names.
pub async fn track(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    let started = Instant::now();
    let res = next.run(req).await;
    let status = res.status();
    let labels = [method.as_str(), route.as_ref().map_or("unmatched", MatchedPath::as_str), status.as_str()];
    metrics.0.http_requests.with_label_values(&labels).inc();
    metrics.0.http_duration.with_label_values(&labels).observe(started.elapsed().as_secs_f64());
    res
}

#[cfg(test)]
mod tests {
    use super::{access, Access};

    #[test]
    fn metrics_need_the_token_or_a_loopback_peer() {
        let lo = "127.0.0.1".parse().expect("ip");
        let far = "10.213.0.5".parse().expect("ip");
        let token = Some("0123456789abcdef0123");
        assert_eq!(access(None, None, lo), Access::Allowed);
        assert_eq!(access(None, None, far), Access::NotLoopback);
        assert_eq!(access(token, None, lo), Access::BadToken);
        assert_eq!(access(token, Some("wrong"), far), Access::BadToken);
        assert_eq!(access(token, Some("0123456789abcdef0123"), far), Access::Allowed);
    }
}

//! The HTTP application: API, UI and probes behind one stack of middleware.

use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::middleware;
use axum::Router;
use tower_http::trace::{DefaultOnResponse, OnResponse, TraceLayer};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};
use tracing::Level;

use crate::auth::SESSION_COOKIE;
use crate::http::error::ApiError;
use crate::http::{metrics, request_id, security_headers, sessions};
use crate::state::AppState;
use berth_core::auth::session_store::Store;

/// Request bodies above this are refused with 413 before they are read into memory.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The span name of a probe request (see [`is_probe`]).
const PROBE_SPAN: &str = "probe";

/// The liveness probe's path.
const LIVENESS: &str = "/healthz";

/// Liveness, readiness and metrics: polled by machines, not people.
pub(crate) fn is_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

pub fn build(state: AppState, sessions: Store) -> Router {
    let (api, _doc) = crate::api::router();
    let web = berth_web::router(berth_web::WebState {
        db: state.db.clone(),
        config: state.config.clone(),
        keys: state.keys.clone(),
        limiter: state.limiter.clone(),
        ops: state.ops.clone(),
        cache: state.cache.clone(),
    });
    let session_layer = SessionManagerLayer::new(sessions)
        .with_name(SESSION_COOKIE)
        .with_secure(state.config.server.cookie_secure())
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(time::Duration::minutes(state.config.server.session_ttl_minutes)));

    let routes = api
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.metrics.clone(), metrics::track))
        .with_state(state)
        .merge(web);
    // The middleware below wraps the router once, as one service (outermost first). Through
    // `Router::layer` each layer wrapped every route in a boxed service that clones what it
    // wraps on each request, so every request made a deep copy of the whole stack, an
    // allocation per level, and dropped it again: a third of a probe's instructions.
    let stack = tower::ServiceBuilder::new()
        .map_request(request_id::assign::<axum::body::Body>)
        .layer(request_id::propagate())
        .map_response(security_headers::apply)
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let id = request_id::as_str(req.headers()).unwrap_or_default();
                    let (method, path) = (req.method(), req.uri().path());
                    if path == LIVENESS {
                        // Liveness cannot fail and its handler logs nothing, so at INFO its span
                        // would annotate no line at all: it is opened at DEBUG, where it is
                        // there as before, and costs nothing at the default level.
                        tracing::debug_span!(PROBE_SPAN, request_id = %id, method = %method, path = %path)
                    } else if is_probe(path) {
                        tracing::info_span!(PROBE_SPAN, request_id = %id, method = %method, path = %path)
                    } else {
                        tracing::info_span!("request", request_id = %id, method = %method, path = %path)
                    }
                })
                .on_response(|res: &axum::http::Response<_>, latency: std::time::Duration, span: &tracing::Span| {
                    // Probes are polled every few seconds by orchestrators and Prometheus: their
                    // "finished" line is DEBUG, so the log holds the requests people made (and
                    // a probe costs no log write). Their failures are still logged (on_failure,
                    // and the handlers' own warnings, with the request id). A disabled span is
                    // a liveness probe's (or the level is above INFO, where DEBUG is off too).
                    let probe = span.is_disabled() || span.metadata().is_some_and(|m| m.name() == PROBE_SPAN);
                    let level = if probe { Level::DEBUG } else { Level::INFO };
                    DefaultOnResponse::new().level(level).on_response(res, latency, span)
                }),
        )
        .layer(sessions::WhereUsed(session_layer))
        .service(routes);
    Router::new().fallback_service(stack)
}

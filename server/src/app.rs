//! The HTTP application: API, UI and probes behind one stack of middleware.

use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::middleware;
use axum::Router;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};
use tracing::Level;

use crate::auth::SESSION_COOKIE;
use crate::http::error::ApiError;
use crate::http::{metrics, request_id, security_headers};
use crate::state::AppState;
use berth_core::auth::session_store::Store;

/// Request bodies above this are refused with 413 before they are read into memory.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub fn build(state: AppState, sessions: Store) -> Router {
    let (api, _doc) = crate::api::router();
    let web = berth_web::router(berth_web::WebState {
        db: state.db.clone(),
        config: state.config.clone(),
        keys: state.keys.clone(),
        limiter: state.limiter.clone(),
        ops: state.ops.clone(),
    });
    let session_layer = SessionManagerLayer::new(sessions)
        .with_name(SESSION_COOKIE)
        .with_secure(state.config.server.cookie_secure())
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(time::Duration::minutes(state.config.server.session_ttl_minutes)));

    api.method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
        .merge(web)
        .layer(session_layer)
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let id = request_id::of(req.headers()).unwrap_or_default();
                    tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(middleware::from_fn(security_headers::apply))
        .layer(middleware::from_fn(request_id::assign))
}

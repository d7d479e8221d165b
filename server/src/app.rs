//! The HTTP application: API, UI and probes behind one stack of middleware.

use std::sync::Arc;
use std::time::Duration;

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
use crate::http::{metrics, request_id};
use crate::state::AppState;
use berth_core::auth::session_store::Store;
use berth_runtime::{Runtime, RuntimeError};
use uuid::Uuid;

/// Request bodies above this are refused with 413 before they are read into memory.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub fn build(state: AppState, sessions: Store) -> Router {
    let (api, _doc) = crate::api::router();
    let web = berth_web::router(berth_web::WebState {
        db: state.db.clone(),
        config: state.config.clone(),
        keys: state.keys.clone(),
        limiter: state.limiter.clone(),
        wake_reconciler: state.runtime.clone().map(|rt| {
            let wake: Arc<dyn Fn() + Send + Sync> = Arc::new(move || rt.nudge.notify_one());
            wake
        }),
        site_runtime: state.runtime.clone().map(|rt| {
            let ops: Arc<dyn berth_web::SiteRuntime> = Arc::new(PageRuntime(rt));
            ops
        }),
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
        .layer(middleware::from_fn(request_id::assign))
}

/// A page waits this long for Docker before it says so; the rest of the page must not hang on
/// an engine that does not answer.
const PAGE_RUNTIME_TIMEOUT: Duration = Duration::from_secs(10);

/// The site pages' view of the container runtime: the same calls as the API's logs and restart.
struct PageRuntime(Arc<Runtime>);

/// The sentence a page shows for a runtime failure; the details are logged here, once.
fn page_message(site: Uuid, e: RuntimeError) -> String {
    match e {
        RuntimeError::NotFound(_) => "The site has no container yet.".into(),
        RuntimeError::Unavailable(_) => {
            tracing::error!(site.id = %site, error = %e, "Docker unreachable from a site page");
            "The container engine is unreachable; try again shortly.".into()
        }
        other => {
            tracing::error!(site.id = %site, error = %other, "Container engine call from a site page failed");
            "The container engine refused the request; the error is in Berth's log.".into()
        }
    }
}

async fn within<T>(site: Uuid, work: impl std::future::Future<Output = Result<T, RuntimeError>>) -> Result<T, String> {
    match tokio::time::timeout(PAGE_RUNTIME_TIMEOUT, work).await {
        Ok(result) => result.map_err(|e| page_message(site, e)),
        Err(_) => {
            tracing::warn!(site.id = %site, "The container engine did not answer a site page in time");
            Err("The container engine did not answer in time; try again shortly.".into())
        }
    }
}

impl berth_web::SiteRuntime for PageRuntime {
    fn logs(&self, site: Uuid, tail: u32) -> berth_web::BoxFuture<Result<String, String>> {
        let rt = self.0.clone();
        Box::pin(async move {
            let lines = within(site, crate::api::site_logs::last_lines(&rt, site, tail)).await?;
            Ok(lines
                .into_iter()
                .map(|l| l.line.trim_end_matches(['\r', '\n']).to_owned())
                .collect::<Vec<_>>()
                .join("\n"))
        })
    }

    fn restart(&self, site: Uuid) -> berth_web::BoxFuture<Result<(), String>> {
        let rt = self.0.clone();
        Box::pin(async move { within(site, rt.engine.restart(&rt.container_name(site))).await })
    }
}

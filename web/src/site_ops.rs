//! Start, stop and restart of a site, and its logs, for the admin console and the portal alike.
//!
//! Every action is the same site operation the REST API calls (`berth_ops`): start and stop
//! record the desired state and wake the reconciler, restart acts on the running container and
//! is audited, logs are read from the container. The operations scope every read and change to
//! the caller, so a customer's request for another customer's site answers the not-found page.

use axum::extract::{Path, State};
use axum::routing::post;
use axum::Router;
use berth_core::store::sites::Site;
use berth_core::types::DesiredState;
use leptos::prelude::*;
use uuid::Uuid;

use crate::admin::parse_id;
use crate::auth::{NoFields, PageCtx};
use crate::components::flash::Flash;
use crate::components::site::{operations_panel, Logs};
use crate::error::{operation_failed, PageError, PageResult};
use crate::forms::PostForm;
use crate::WebState;

/// How many lines of output the site pages show.
pub const LOG_TAIL: u32 = 100;

pub fn routes() -> Router<WebState> {
    let mut router = Router::new();
    for area in ["/admin", "/portal"] {
        router = router
            .route(&format!("{area}/sites/{{id}}/start"), post(start))
            .route(&format!("{area}/sites/{{id}}/stop"), post(stop))
            .route(&format!("{area}/sites/{{id}}/restart"), post(restart));
    }
    router
}

/// The operations panel of a site page, with the logs read through the runtime (when there is
/// one and the site has a container).
pub async fn operations(state: &WebState, ctx: &PageCtx, site: &Site) -> Result<impl IntoView, PageError> {
    let logs = if !state.ops.has_runtime() {
        Logs::NoRuntime
    } else if site.model.container_id.is_none() {
        Logs::NoContainer
    } else {
        match state.ops.logs_of(site, LOG_TAIL).await {
            Ok(lines) => {
                Logs::Lines(lines.iter().map(|l| l.line.trim_end_matches(['\r', '\n'])).collect::<Vec<_>>().join("\n"))
            }
            Err(berth_ops::Error::NoContainer) => Logs::NoContainer,
            Err(e) => Logs::Failed(operation_failed(e)?),
        }
    };
    Ok(operations_panel(site, ctx.area.home(), &ctx.csrf, logs))
}

fn site_href(ctx: &PageCtx, id: Uuid) -> String {
    ctx.area.path(&format!("/sites/{id}"))
}

async fn set_desired(state: WebState, id: String, ctx: PageCtx, desired: DesiredState) -> PageResult {
    let id = parse_id(&id)?;
    let result = match desired {
        DesiredState::Running => state.ops.start_site(&ctx.caller, id).await,
        DesiredState::Stopped => state.ops.stop_site(&ctx.caller, id).await,
    };
    let flash = match result {
        Ok(site) => {
            let verb = if desired == DesiredState::Running { "start" } else { "stop" };
            let note = if state.ops.has_runtime() {
                "The status below follows the container."
            } else {
                "No container runtime is configured, so no container changes."
            };
            Flash::success(format!("Site {} is set to {verb}. {note}", site.model.name))
        }
        Err(e) => Flash::error(format!("Not changed: {}", operation_failed(e)?)),
    };
    ctx.redirect(&site_href(&ctx, id), flash).await
}

async fn start(
    State(state): State<WebState>,
    Path(id): Path<String>,
    PostForm { ctx, .. }: PostForm<NoFields>,
) -> PageResult {
    set_desired(state, id, ctx, DesiredState::Running).await
}

async fn stop(
    State(state): State<WebState>,
    Path(id): Path<String>,
    PostForm { ctx, .. }: PostForm<NoFields>,
) -> PageResult {
    set_desired(state, id, ctx, DesiredState::Stopped).await
}

async fn restart(
    State(state): State<WebState>,
    Path(id): Path<String>,
    PostForm { ctx, .. }: PostForm<NoFields>,
) -> PageResult {
    let id = parse_id(&id)?;
    let flash = match state.ops.restart_site(&ctx.caller, id).await {
        Ok(site) => Flash::success(format!("Site {} restarted.", site.model.name)),
        Err(e) => Flash::error(format!("Not restarted: {}", operation_failed(e)?)),
    };
    ctx.redirect(&site_href(&ctx, id), flash).await
}

//! Start, stop and restart of a site, and its logs, for the admin console and the portal alike.
//!
//! Start and stop record the desired state (`store::sites::set_desired`, as the API does) and
//! wake the reconciler, which converges the container. Restart acts on the running container
//! through [`SiteRuntime`](crate::SiteRuntime), as the API's restart does. The store scopes every
//! read and change to the caller, so a customer's request for another customer's site answers
//! the not-found page.

use axum::extract::{Path, State};
use axum::routing::post;
use axum::Router;
use berth_core::store::{self, sites::Site};
use berth_core::types::{DesiredState, SiteStatus};
use leptos::prelude::*;
use sea_orm::ActiveEnum;
use uuid::Uuid;

use crate::admin::parse_id;
use crate::auth::{NoFields, PageCtx};
use crate::components::flash::Flash;
use crate::components::site::{operations_panel, Logs};
use crate::error::PageResult;
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
pub async fn operations(state: &WebState, ctx: &PageCtx, site: &Site) -> impl IntoView {
    let logs = match (&state.site_runtime, &site.model.container_id) {
        (None, _) => Logs::NoRuntime,
        (Some(_), None) => Logs::NoContainer,
        (Some(rt), Some(_)) => match rt.logs(site.model.id, LOG_TAIL).await {
            Ok(lines) => Logs::Lines(lines),
            Err(message) => Logs::Failed(message),
        },
    };
    operations_panel(site, ctx.area.home(), &ctx.csrf, logs)
}

fn site_href(ctx: &PageCtx, id: Uuid) -> String {
    ctx.area.path(&format!("/sites/{id}"))
}

fn wake(state: &WebState) {
    if let Some(wake) = &state.wake_reconciler {
        wake();
    }
}

async fn set_desired(state: WebState, id: String, ctx: PageCtx, desired: DesiredState) -> PageResult {
    let id = parse_id(&id)?;
    let flash = match store::sites::set_desired(&state.db, &state.keys, &ctx.caller, id, desired).await {
        Ok(site) => {
            wake(&state);
            let verb = if desired == DesiredState::Running { "start" } else { "stop" };
            let note = if state.site_runtime.is_some() {
                "The status below follows the container."
            } else {
                "No container runtime is configured, so no container changes."
            };
            Flash::success(format!("Site {} is set to {verb}. {note}", site.model.name))
        }
        // Being deleted, for instance: say why on the site's page.
        Err(berth_core::Error::Conflict(message)) => Flash::error(format!("Not changed: {message}.")),
        Err(e) => return Err(e.into()),
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
    // Scoped read first: another tenant's site is not found before anything reaches Docker.
    let site = store::sites::get(&state.db, &state.keys, &ctx.caller, id).await?;
    let flash = match &state.site_runtime {
        None => Flash::error("No container runtime is configured, so there is no container to restart."),
        Some(_) if site.model.status != SiteStatus::Running || site.model.container_id.is_none() => {
            Flash::error(format!("The site is {}; only a running site can be restarted.", site.model.status.to_value()))
        }
        Some(rt) => match rt.restart(id).await {
            Ok(()) => {
                store::sites::record_action(&state.db, &ctx.caller, &site.model, "site.restart").await?;
                wake(&state);
                Flash::success(format!("Site {} restarted.", site.model.name))
            }
            Err(message) => Flash::error(format!("Not restarted: {message}")),
        },
    };
    ctx.redirect(&site_href(&ctx, id), flash).await
}

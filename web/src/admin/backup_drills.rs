//! Restore drills: the recent drills with what each found (site, the backup restored, result,
//! files, duration, error), and "Run a drill now" (a random sample, like the weekly job). Data
//! and the request are `berth_ops::Ops` (ops/src/drill.rs), as for the API.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use berth_core::access;
use berth_core::entities::{backup_drills, backups, sites};
use berth_core::store::backup_drills::Filter;
use berth_core::store::page::Page;
use berth_core::types::DrillStatus;
use leptos::prelude::*;
use sea_orm::{ActiveEnum, ColumnTrait, QueryFilter};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::PageCtx;
use crate::components::badge::{badge, Tone};
use crate::components::empty::empty_state;
use crate::components::flash::Flash;
use crate::components::form::csrf_input;
use crate::components::table::{pager, table, Column, Link};
use crate::components::{clip, duration_opt, when};
use crate::error::{operation_failed, PageResult};
use crate::forms::PostForm;
use crate::layout::page;
use crate::WebState;

const LIST: &str = "/admin/backups/drills";

pub fn routes() -> Router<WebState> {
    Router::new().route(LIST, get(list)).route("/admin/backups/drills/run", post(run))
}

fn status_badge(status: DrillStatus) -> impl IntoView {
    let tone = match status {
        DrillStatus::Running => Tone::Busy,
        DrillStatus::Passed => Tone::Good,
        DrillStatus::Failed => Tone::Bad,
    };
    badge(status.to_value(), tone)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    after: Option<String>,
}

async fn list(State(state): State<WebState>, ctx: PageCtx, Query(q): Query<ListQuery>) -> PageResult {
    let after = q.after.as_deref().and_then(|a| a.parse().ok());
    let paged = state.ops.list_drills(&ctx.caller, Filter::default(), Page { cursor: after, limit: Some(25) }).await;
    let paged = match paged {
        Ok(p) => p,
        Err(berth_ops::Error::Store(e)) => return Err(e.into()),
        Err(e) => return Err(crate::error::page_error(e)),
    };
    let site_ids: Vec<Uuid> = paged.items.iter().map(|d| d.site_id).collect();
    let backup_ids: Vec<Uuid> = paged.items.iter().map(|d| d.backup_id).collect();
    let site_names: HashMap<Uuid, String> = access::sites(&ctx.caller)
        .filter(sites::Column::Id.is_in(site_ids))
        .all(&state.db)
        .await
        .map_err(berth_core::Error::from)?
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect();
    let backup_times: HashMap<Uuid, chrono::DateTime<chrono::Utc>> = access::backups(&ctx.caller)
        .filter(backups::Column::Id.is_in(backup_ids))
        .all(&state.db)
        .await
        .map_err(berth_core::Error::from)?
        .into_iter()
        .map(|b| (b.id, b.created_at))
        .collect();
    let now = chrono::Utc::now();
    let link = Link::new(LIST);
    let results = if paged.items.is_empty() {
        empty_state("No drill has run yet.", None).into_any()
    } else {
        let rows = paged.items.iter().map(|d| row(d, &site_names, &backup_times, &now)).collect();
        let columns = [
            Column::plain("Site"),
            Column::plain("Backup of"),
            Column::plain("Result"),
            Column::plain("Files"),
            Column::plain("Started"),
            Column::plain("Duration"),
            Column::plain("Error"),
        ];
        view! {
            {table("Restore drills", &columns, None, rows)}
            {pager(&link, paged.next_cursor, after.is_none())}
        }
        .into_any()
    };
    let body = view! {
        <p class="muted">
            "Each drill restores a site's newest verified backup into a scratch volume, starts the site's container on it with no network, and compares every file with the backup's manifest. Drills run weekly on a random sample of sites; newest first."
        </p>
        <form method="post" action="/admin/backups/drills/run" class="inline">
            {csrf_input(&ctx.csrf)}
            <button type="submit" class="button">"Run a drill now"</button>
        </form>
        {results}
    };
    Ok(page(ctx.chrome(), "Restore drills", body).into_response())
}

fn row(
    d: &backup_drills::Model,
    site_names: &HashMap<Uuid, String>,
    backup_times: &HashMap<Uuid, chrono::DateTime<chrono::Utc>>,
    now: &chrono::DateTime<chrono::Utc>,
) -> AnyView {
    let site = match site_names.get(&d.site_id) {
        Some(name) => view! { <a href=format!("/admin/sites/{}", d.site_id)>{name.clone()}</a> }.into_any(),
        None => view! { <span class="muted">{format!("deleted site {}", d.site_id)}</span> }.into_any(),
    };
    let backup = backup_times.get(&d.backup_id).map(when).unwrap_or_else(|| "—".to_owned());
    let files = match (d.files, d.mismatches) {
        (Some(f), Some(m)) if m > 0 => format!("{f} ({m} differ)"),
        (Some(f), _) => f.to_string(),
        _ => "—".to_owned(),
    };
    let error = d.error.as_deref().map(|e| view! { <span class="error-text" title=e.to_owned()>{clip(e, 200)}</span> });
    let row_class = if d.status == DrillStatus::Failed { "row--failed" } else { "" };
    view! {
        <tr class=row_class>
            <td>{site}</td>
            <td class="nowrap">{backup}</td>
            <td>{status_badge(d.status)}</td>
            <td class="nowrap">{files}</td>
            <td class="nowrap">{when(&d.started_at)}</td>
            <td class="nowrap">{duration_opt(Some(&d.started_at), d.finished_at.as_ref(), now)}</td>
            <td>{error}</td>
        </tr>
    }
    .into_any()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RunForm {}

async fn run(State(state): State<WebState>, PostForm { ctx, form: RunForm {} }: PostForm<RunForm>) -> PageResult {
    let flash = match state.ops.request_drill(&ctx.caller, None).await {
        Ok(Some(_)) => Flash::success("A restore drill is queued; its results appear here as each site finishes."),
        Ok(None) => Flash::success("A restore drill is already queued or running; its results appear here."),
        Err(e) => Flash::error(format!("No drill started: {}", operation_failed(e)?)),
    };
    ctx.redirect(LIST, flash).await
}

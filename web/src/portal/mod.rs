//! The customer portal: every page under `/portal`. The store scopes every query to the
//! signed-in user's customer, so another customer's site id is simply not found.

use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use berth_core::store::{self, page::Page};
use leptos::prelude::*;
use serde::Deserialize;

use crate::admin::parse_id;
use crate::auth::PageCtx;
use crate::components::empty::empty_state;
use crate::components::site::{site_facts, site_table, sort_sites, SITE_COLUMNS};
use crate::components::table::{Link, Sort};
use crate::error::PageResult;
use crate::layout::{page, page_refreshing};
use crate::WebState;

pub fn routes() -> Router<WebState> {
    Router::new().route("/portal", get(my_sites)).route("/portal/sites/{id}", get(site_detail))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SortQuery {
    sort: Option<String>,
    dir: Option<String>,
}

async fn my_sites(State(state): State<WebState>, ctx: PageCtx, Query(q): Query<SortQuery>) -> PageResult {
    // A plan allows a few dozen sites at most: one page holds them all, so sorting is exact.
    let mut sites =
        store::sites::list(&state.db, &ctx.caller, Default::default(), Page { cursor: None, limit: Some(200) })
            .await?
            .items;
    let sort = Sort::from_query(q.sort.as_deref(), q.dir.as_deref(), &SITE_COLUMNS, "name");
    sort_sites(&mut sites, &sort);
    let body = if sites.is_empty() {
        empty_state("You have no sites yet. Your hosting provider sets them up for you.", None).into_any()
    } else {
        site_table(&sites, &sort, &Link::new("/portal"), |s| format!("/portal/sites/{}", s.model.id)).into_any()
    };
    Ok(page(ctx.chrome(), "My sites", body).into_response())
}

async fn site_detail(
    State(state): State<WebState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    Query(usage_query): Query<crate::site_usage::UsageQuery>,
) -> PageResult {
    let id = parse_id(&id)?;
    let site = store::sites::get(&state.db, &state.keys, &ctx.caller, id).await?;
    let operations = crate::site_ops::operations(&state, &ctx, &site).await?;
    let usage = crate::site_usage::usage(&state, &ctx, &site, &usage_query).await?;
    let backups = crate::site_backups::section(&state, &ctx, &site).await?;
    let refresh = backups.refresh();
    let body = view! {
        <p><a href="/portal">"← My sites"</a></p>
        <section class="panel" aria-labelledby="s-settings">
            <h2 id="s-settings">"Settings"</h2>
            {site_facts(&site, None)}
        </section>
        {usage}
        {backups.view}
        {operations}
    };
    // While a backup or restore runs the page reloads itself, so its progress shows.
    Ok(page_refreshing(ctx.chrome(), &format!("Site {}", site.model.name), body, refresh).into_response())
}

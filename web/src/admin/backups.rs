//! The backup overview (`/admin/backups`): every site's last good backup and its age (sites
//! with none, or none within a day, stand out), the recent failures with their errors, and the
//! storage each customer's backups added per target; links to the schedules and retention (the
//! Plans page) and to the restore drills. Read by `store::backup_overview`, admin-only there too.

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use berth_core::store::backup_overview::{self, Failure, SiteLastGood, Storage};
use chrono::{DateTime, Duration, Utc};
use leptos::prelude::*;

use crate::auth::PageCtx;
use crate::components::badge::{self, badge, Tone};
use crate::components::empty::empty_state;
use crate::components::table::{table, Column};
use crate::components::{clip, duration, when};
use crate::error::PageResult;
use crate::layout::page;
use crate::site_backups::{kind_label, size};
use crate::WebState;

/// How many failures the page lists.
const FAILURES: u64 = 25;

pub fn routes() -> Router<WebState> {
    Router::new().route("/admin/backups", get(overview))
}

/// A site needs attention when its newest good backup is older than this (or it has none).
fn stale_after() -> Duration {
    Duration::days(1)
}

fn is_stale(site: &SiteLastGood, now: &DateTime<Utc>) -> bool {
    site.last_good.as_ref().is_none_or(|g| *now - g.at > stale_after())
}

fn sites_table(sites: &[SiteLastGood], now: &DateTime<Utc>) -> impl IntoView {
    let rows: Vec<AnyView> = sites
        .iter()
        .map(|s| {
            let stale = is_stale(s, now);
            let (last, age, kind, bytes) = match &s.last_good {
                Some(g) => {
                    (when(&g.at), format!("{} ago", duration(&g.at, now)), kind_label(g.kind), size(g.size_bytes))
                }
                None => ("never".to_owned(), "—".to_owned(), "—", "—".to_owned()),
            };
            let state = match (&s.last_good, stale) {
                (None, _) => badge("no backup".into(), Tone::Bad),
                (Some(_), true) => badge("over a day old".into(), Tone::Warning),
                (Some(_), false) => badge("fresh".into(), Tone::Good),
            };
            let row_class = if stale { "row--failed" } else { "" };
            view! {
                <tr class=row_class>
                    <td><a href=format!("/admin/sites/{}#backups", s.site_id)>{s.site_name.clone()}</a></td>
                    <td><a href=format!("/admin/customers/{}", s.customer_id)>{s.company_name.clone()}</a></td>
                    <td>{badge::site_status(s.site_status)}</td>
                    <td class="nowrap">{last}</td>
                    <td class="nowrap">{age}</td>
                    <td>{state}</td>
                    <td>{kind}</td>
                    <td class="nowrap">{bytes}</td>
                </tr>
            }
            .into_any()
        })
        .collect();
    let columns = [
        Column::plain("Site"),
        Column::plain("Customer"),
        Column::plain("Site status"),
        Column::plain("Last good backup"),
        Column::plain("Age"),
        Column::plain("Backup state"),
        Column::plain("Kind"),
        Column::plain("Size"),
    ];
    table("Last good backup per site", &columns, None, rows)
}

fn failures_table(failures: &[Failure]) -> impl IntoView {
    let rows: Vec<AnyView> = failures
        .iter()
        .map(|f| {
            let b = &f.backup;
            let site = match &f.site_name {
                Some(name) => view! { <a href=format!("/admin/sites/{}#backups", b.site_id)>{name.clone()}</a> }.into_any(),
                None => view! { <span class="muted">"deleted site"</span> }.into_any(),
            };
            let error = b.error.clone().unwrap_or_else(|| "no error recorded".to_owned());
            view! {
                <tr>
                    <td class="nowrap">{when(&b.created_at)}</td>
                    <td>{site}</td>
                    <td><a href=format!("/admin/customers/{}", b.customer_id)>{f.company_name.clone().unwrap_or_default()}</a></td>
                    <td>{kind_label(b.kind)}</td>
                    <td><pre class="error-text">{clip(&error, 400)}</pre></td>
                </tr>
            }
            .into_any()
        })
        .collect();
    let columns = [
        Column::plain("Time"),
        Column::plain("Site"),
        Column::plain("Customer"),
        Column::plain("Kind"),
        Column::plain("Error"),
    ];
    table("Recent failed backups", &columns, None, rows)
}

fn storage_table(storage: &[Storage]) -> impl IntoView {
    let rows: Vec<AnyView> = storage
        .iter()
        .map(|s| {
            view! {
                <tr>
                    <td><a href=format!("/admin/customers/{}", s.customer_id)>{s.company_name.clone()}</a></td>
                    <td><code>{s.target.clone()}</code></td>
                    <td>{s.backups}</td>
                    <td class="nowrap">{size(Some(s.added_bytes))}</td>
                </tr>
            }
            .into_any()
        })
        .collect();
    let columns =
        [Column::plain("Customer"), Column::plain("Target"), Column::plain("Good backups"), Column::plain("Stored")];
    table("Storage per customer and target", &columns, None, rows)
}

async fn overview(State(state): State<WebState>, ctx: PageCtx) -> PageResult {
    let found = backup_overview::overview(&state.db, &ctx.caller, FAILURES).await?;
    let now = Utc::now();
    let stale = found.sites.iter().filter(|s| is_stale(s, &now)).count();
    let summary = match (found.sites.len(), stale) {
        (0, _) => "No sites yet.".to_owned(),
        (1, 0) => "The site has a verified backup from the last day.".to_owned(),
        (1, _) => "The site has no verified backup from the last day.".to_owned(),
        (n, 0) => format!("All {n} sites have a verified backup from the last day."),
        (n, k) => format!("{k} of {n} sites have no verified backup from the last day; they are listed first."),
    };
    let sites = if found.sites.is_empty() {
        empty_state("No sites yet.", None).into_any()
    } else {
        sites_table(&found.sites, &now).into_any()
    };
    let failures = if found.failures.is_empty() {
        view! { <p class="muted">"No backup has failed."</p> }.into_any()
    } else {
        failures_table(&found.failures).into_any()
    };
    let storage = if found.storage.is_empty() {
        view! { <p class="muted">"Nothing stored yet."</p> }.into_any()
    } else {
        view! {
            {storage_table(&found.storage)}
            <p class="hint">"Stored: what each good backup added to the customer's repository after de-duplication and compression; what pruning freed is not subtracted."</p>
        }
        .into_any()
    };
    let body = view! {
        <nav class="actions subnav" aria-label="Backups">
            <a class="button button--quiet" href="/admin/plans">"Schedules and retention (plans)"</a>
            <a class="button button--quiet" href="/admin/backups/drills">"Restore drills"</a>
        </nav>
        <section aria-labelledby="b-sites">
            <h2 id="b-sites">"Last good backup per site"</h2>
            <p role="status">{summary}</p>
            {sites}
        </section>
        <section aria-labelledby="b-failures">
            <h2 id="b-failures">"Recent failures"</h2>
            {failures}
        </section>
        <section aria-labelledby="b-storage">
            <h2 id="b-storage">"Storage"</h2>
            {storage}
        </section>
    };
    Ok(page(ctx.chrome(), "Backups", body).into_response())
}

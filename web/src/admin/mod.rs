//! The admin console: every page under `/admin`. [`PageCtx`] has already refused anyone but an
//! administrator; the store checks again on its own (`Caller::require_admin`).

pub(crate) mod alerts;
mod audit;
mod backup_drills;
mod backups;
mod customers;
pub(crate) mod flows;
mod host;
mod jobs;
mod plans;
mod security;
pub(crate) mod sites;

use std::collections::HashMap;

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use berth_core::store::{self, page::Page};
use berth_core::types::{CustomerStatus, SiteStatus};
use leptos::prelude::*;
use sea_orm::{ActiveEnum, Iterable};
use uuid::Uuid;

use crate::auth::PageCtx;
use crate::components::badge;
use crate::error::{PageError, PageResult};
use crate::layout::page;
use crate::WebState;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin", get(dashboard))
        .merge(alerts::routes())
        .merge(customers::routes())
        .merge(sites::routes())
        .merge(audit::routes())
        .merge(backup_drills::routes())
        .merge(backups::routes())
        .merge(flows::routes())
        .merge(jobs::routes())
        .merge(plans::routes())
        .merge(security::routes())
}

/// Company names for the customers in `ids`: from the drop-down's list when it has them,
/// otherwise read one by one (a host with more than 200 customers).
pub(crate) async fn customer_names(
    state: &WebState,
    ctx: &PageCtx,
    known: &[berth_core::entities::customers::Model],
    ids: impl Iterator<Item = Uuid>,
) -> Result<HashMap<Uuid, String>, berth_core::Error> {
    let mut names: HashMap<Uuid, String> = known.iter().map(|c| (c.id, c.company_name.clone())).collect();
    for id in ids {
        if !names.contains_key(&id) {
            let c = store::customers::get(&state.db, &ctx.caller, id).await?;
            names.insert(c.id, c.company_name);
        }
    }
    Ok(names)
}

/// Ids in paths are UUIDs; anything else is simply not found.
pub(crate) fn parse_id(text: &str) -> Result<Uuid, PageError> {
    text.parse().map_err(|_| PageError::NotFound)
}

/// A counted list ("3 running") for the dashboard, every status shown even at zero.
fn counts_list(items: Vec<(AnyView, u64)>) -> impl IntoView {
    let rows =
        items.into_iter().map(|(label, n)| view! { <li><span>{label}</span><strong>{n}</strong></li> }).collect_view();
    view! { <ul class="counts">{rows}</ul> }
}

async fn dashboard(State(state): State<WebState>, ctx: PageCtx) -> PageResult {
    let customers = store::customers::count_by_status(&state.db, &ctx.caller).await?;
    let sites = store::sites::count_by_status(&state.db, &ctx.caller).await?;
    let plans = store::plans::list(&state.db).await?;
    let mix = store::customers::count_by_plan(&state.db, &ctx.caller).await?;
    let recent = store::audit::list(
        &state.db,
        &ctx.caller,
        // Sign-ins and sign-outs would crowd out every change; the audit log has them all.
        store::audit::Filter { exclude_auth: true, ..Default::default() },
        Page { cursor: None, limit: Some(10) },
    )
    .await?;

    let count = |found: Option<u64>| found.unwrap_or(0);
    let customer_counts = CustomerStatus::iter()
        .map(|s| {
            let n = count(customers.iter().find(|(k, _)| *k == s).map(|(_, n)| *n));
            (badge::customer_status(s).into_any(), n)
        })
        .collect();
    let site_counts = SiteStatus::iter()
        .map(|s| (badge::site_status(s).into_any(), count(sites.iter().find(|(k, _)| *k == s).map(|(_, n)| *n))))
        .collect();
    let plan_counts = plans
        .iter()
        .map(|p| {
            let n = count(mix.iter().find(|(k, _)| *k == p.id).map(|(_, n)| *n));
            (view! { <span>{p.name.clone()}</span> }.into_any(), n)
        })
        .collect();
    let total_customers: u64 = customers.iter().map(|(_, n)| n).sum();
    let total_sites: u64 = sites.iter().map(|(_, n)| n).sum();
    let entries = audit::entries_table(&recent.items);
    let runs = store::flows::list(&state.db, &ctx.caller, Default::default(), Page { cursor: None, limit: Some(5) })
        .await?
        .items;
    let names = customer_names(&state, &ctx, &[], runs.iter().filter_map(|r| r.customer_id)).await?;
    let runs = if runs.is_empty() {
        view! { <p class="muted">"No flow has run yet."</p> }.into_any()
    } else {
        flows::runs_table(&runs, &names).into_any()
    };

    let monitoring = monitoring_panels(&state, &ctx).await?;
    let body = view! {
        {monitoring}
        <div class="cards">
            <section class="panel" aria-labelledby="d-customers">
                <h2 id="d-customers"><a href="/admin/customers">"Customers"</a> <span class="total">{total_customers}</span></h2>
                {counts_list(customer_counts)}
            </section>
            <section class="panel" aria-labelledby="d-sites">
                <h2 id="d-sites"><a href="/admin/sites">"Sites"</a> <span class="total">{total_sites}</span></h2>
                {counts_list(site_counts)}
            </section>
            <section class="panel" aria-labelledby="d-plans">
                <h2 id="d-plans">"Plan mix"</h2>
                {counts_list(plan_counts)}
            </section>
        </div>
        <section aria-labelledby="d-flows">
            <h2 id="d-flows">"Recent flow runs"</h2>
            {runs}
            <p><a href="/admin/flows">"Every flow run →"</a></p>
        </section>
        <section aria-labelledby="d-audit">
            <h2 id="d-audit">"Recent activity"</h2>
            {entries}
            <p><a href="/admin/audit">"The whole audit log →"</a></p>
        </section>
    };
    Ok(page(ctx.chrome(), "Dashboard", body).into_response())
}

/// A figure as "used of total (share)", with a meter; "not available" when unreadable.
fn usage_row(label: &str, figure: Option<(String, f64)>) -> impl IntoView {
    let label = label.to_owned();
    let value = match figure {
        Some((text, share)) => {
            let share = share.clamp(0.0, 100.0);
            view! {
                <span>{text}</span>
                <meter min="0" max="100" low="80" high="90" optimum="0" value=format!("{share:.0}")>{format!("{share:.0} %")}</meter>
            }
            .into_any()
        }
        None => view! { <span class="muted">"not available"</span> }.into_any(),
    };
    view! { <li><span>{label}</span><span class="usage">{value}</span></li> }
}

/// Firing alerts, sites down, the host's CPU, memory and disk, and the busiest sites.
async fn monitoring_panels(state: &WebState, ctx: &PageCtx) -> Result<impl IntoView, PageError> {
    use store::dashboard::TopBy;
    // Both from the Redis cache when it is configured: the aggregates for a minute, the firing
    // alerts for 30 seconds, each dropped as soon as an alert changes.
    let store::dashboard::Summary { firing, down, top_cpu: by_cpu, top_memory: by_memory } =
        store::dashboard::summary(&state.db, &state.cache, &ctx.caller).await?;
    let top_firing = store::alert_states::list(
        &state.db,
        &state.cache,
        &ctx.caller,
        Some("firing"),
        Page { cursor: None, limit: Some(5) },
    )
    .await?
    .items;
    let sites = store::alerts::site_names(&state.db, &ctx.caller, top_firing.iter().map(|a| a.site_id)).await?;
    let customers = customer_names(
        state,
        ctx,
        &[],
        top_firing.iter().map(|a| a.customer_id).collect::<std::collections::BTreeSet<_>>().into_iter(),
    )
    .await?;
    let host = host::Host::read(&state.config.server.data_dir);
    let load = host.load.map(|(l, cpus)| (format!("load {l:.2} on {cpus} CPUs"), l * 100.0 / cpus as f64));
    let share = |(used, total): (u64, u64)| {
        let pct = if total > 0 { used as f64 * 100.0 / total as f64 } else { 0.0 };
        (format!("{} of {}", host::bytes(used), host::bytes(total)), pct)
    };
    let firing_view = if top_firing.is_empty() {
        view! { <p class="muted">"Nothing is firing."</p> }.into_any()
    } else {
        crate::monitoring::alerts_table(crate::layout::Area::Admin, "Firing alerts", &top_firing, &sites, &customers)
            .into_any()
    };
    let top = |title: &'static str, id: &'static str, items: Vec<store::dashboard::TopSite>, by: TopBy| {
        let rows = items
            .into_iter()
            .map(|t| {
                let figure = match by {
                    TopBy::Cpu => t.cpu_percent.map_or_else(|| "—".to_owned(), |c| format!("{c:.1} %")),
                    TopBy::Memory if t.memory_limit_bytes > 0 => format!(
                        "{} ({:.0} % of the limit)",
                        host::bytes(u64::try_from(t.memory_bytes).unwrap_or(0)),
                        t.memory_bytes as f64 * 100.0 / t.memory_limit_bytes as f64
                    ),
                    TopBy::Memory => host::bytes(u64::try_from(t.memory_bytes).unwrap_or(0)),
                };
                view! { <li><a href=format!("/admin/sites/{}", t.site_id)>{t.name}</a><strong>{figure}</strong></li> }
            })
            .collect_view();
        view! {
            <section class="panel" aria-labelledby=id>
                <h2 id=id>{title}</h2>
                <ul class="counts">{rows}</ul>
            </section>
        }
    };
    let no_samples = by_cpu.is_empty();
    Ok(view! {
        <div class="cards cards--monitoring" id="monitoring">
            <section class="panel" aria-labelledby="d-alerts">
                <h2 id="d-alerts"><a href="/admin/alerts">"Alerts"</a></h2>
                <ul class="counts">
                    <li><span>"Firing"</span><strong id="d-firing">{firing}</strong></li>
                    <li><span>"Sites down"</span><strong id="d-down">{down}</strong></li>
                </ul>
            </section>
            <section class="panel" aria-labelledby="d-host">
                <h2 id="d-host">"This host"</h2>
                <ul class="counts">
                    {usage_row("CPU", load)}
                    {usage_row("Memory", host.memory.map(share))}
                    {usage_row("Disk (data)", host.disk.map(share))}
                </ul>
            </section>
            {(!no_samples).then(|| top("Top sites by CPU", "d-top-cpu", by_cpu, TopBy::Cpu))}
            {(!no_samples).then(|| top("Top sites by memory", "d-top-memory", by_memory, TopBy::Memory))}
        </div>
        <section aria-labelledby="d-firing-list" class="dashboard-firing">
            <h2 id="d-firing-list">"Firing alerts"</h2>
            {firing_view}
        </section>
    })
}

/// The select options of a status filter: "any" first.
pub(crate) fn status_options<T: ActiveEnum<Value = String> + Iterable>() -> Vec<(String, String)> {
    std::iter::once((String::new(), "Any status".to_owned()))
        .chain(T::iter().map(|s| (s.to_value(), s.to_value())))
        .collect()
}

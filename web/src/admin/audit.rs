//! The audit log, filtered by actor, target, customer and date.

use axum::extract::{Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use berth_core::entities::audit_log;
use berth_core::store::{self, page::Page};
use chrono::{NaiveDate, TimeZone, Utc};
use leptos::prelude::*;
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::PageCtx;
use crate::components::empty::empty_state;
use crate::components::form::Field;
use crate::components::table::{pager, table, Column, Link};
use crate::components::when;
use crate::error::PageResult;
use crate::layout::page;
use crate::WebState;

pub fn routes() -> Router<WebState> {
    Router::new().route("/admin/audit", get(list))
}

/// Where an entry's target can be looked at, when it still has a page.
fn target_href(e: &audit_log::Model) -> Option<String> {
    let id = e.target_id.as_deref()?;
    match e.target_type.as_str() {
        "customer" => Some(format!("/admin/customers/{id}")),
        "site" => Some(format!("/admin/sites/{id}")),
        _ => None,
    }
}

/// The audit table, shared by this page, the dashboard and a customer's page.
pub fn entries_table(entries: &[audit_log::Model]) -> AnyView {
    if entries.is_empty() {
        return empty_state("Nothing recorded yet.", None).into_any();
    }
    let rows = entries
        .iter()
        .map(|e| {
            let target_text = match &e.target_id {
                // UUIDv7s share their leading (time) digits; the tail tells entries apart.
                Some(id) => {
                    let tail: String = id.chars().skip(id.chars().count().saturating_sub(6)).collect();
                    format!("{} …{tail}", e.target_type)
                }
                None => e.target_type.clone(),
            };
            let target = match target_href(e) {
                Some(href) => view! { <a href=href title=e.target_id.clone()>{target_text}</a> }.into_any(),
                None => view! { <span title=e.target_id.clone()>{target_text}</span> }.into_any(),
            };
            let details = match &e.details {
                serde_json::Value::Object(map) if map.is_empty() => String::new(),
                other => other.to_string(),
            };
            view! {
                <tr>
                    <td class="nowrap">{when(&e.at)}</td>
                    <td>{e.actor.clone()}</td>
                    <td><code>{e.action.clone()}</code></td>
                    <td class="nowrap">{target}</td>
                    <td class="details">{(!details.is_empty()).then(|| view! { <code title=details.clone()>{details.clone()}</code> })}</td>
                    <td>{e.ip.clone().unwrap_or_default()}</td>
                </tr>
            }
            .into_any()
        })
        .collect();
    let columns = [
        Column::plain("When"),
        Column::plain("Actor"),
        Column::plain("Action"),
        Column::plain("Target"),
        Column::plain("Details"),
        Column::plain("IP"),
    ];
    table("Audit entries", &columns, None, rows).into_any()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AuditQuery {
    actor: Option<String>,
    target_type: Option<String>,
    target_id: Option<String>,
    customer: Option<String>,
    since: Option<String>,
    until: Option<String>,
    after: Option<String>,
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

fn parse_day(v: &Option<String>) -> Option<NaiveDate> {
    non_empty(v).and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
}

async fn list(State(state): State<WebState>, ctx: PageCtx, Query(q): Query<AuditQuery>) -> PageResult {
    let since = parse_day(&q.since);
    let until = parse_day(&q.until);
    let customer: Option<Uuid> = non_empty(&q.customer).and_then(|c| c.parse().ok());
    let after = non_empty(&q.after).and_then(|a| a.parse().ok());
    let filter = store::audit::Filter {
        actor: non_empty(&q.actor),
        target_type: non_empty(&q.target_type),
        target_id: non_empty(&q.target_id),
        customer_id: customer,
        action: None,
        since: since.and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| Utc.from_utc_datetime(&t)),
        // "Until" a day includes that whole day.
        until: until.and_then(|d| d.succ_opt()).and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| Utc.from_utc_datetime(&t)),
        exclude_auth: false,
    };
    let paged = store::audit::list(&state.db, &ctx.caller, filter, Page { cursor: after, limit: Some(50) }).await?;
    let link = Link::new("/admin/audit")
        .param("actor", non_empty(&q.actor))
        .param("target_type", non_empty(&q.target_type))
        .param("target_id", non_empty(&q.target_id))
        .param("customer", customer)
        .param("since", since)
        .param("until", until);
    let target_types = ["", "customer", "site", "user", "api_token"]
        .iter()
        .map(|t| (t.to_string(), if t.is_empty() { "Any target".to_owned() } else { t.to_string() }))
        .collect();
    let customer_note = customer.map(|c| {
        view! {
            <p class="muted">"Showing entries about one customer. " <a href="/admin/audit">"Show all"</a></p>
            <input type="hidden" name="customer" value=c.to_string() />
        }
    });
    let body = view! {
        <form method="get" action="/admin/audit" class="filters panel" role="search">
            {customer_note}
            {Field::new("actor", "Actor").value(non_empty(&q.actor).unwrap_or_default()).render()}
            {Field::new("target_type", "Target").select(target_types).value(non_empty(&q.target_type).unwrap_or_default()).render()}
            {Field::new("target_id", "Target id").value(non_empty(&q.target_id).unwrap_or_default()).render()}
            {Field::new("since", "From").kind("date").value(since.map(|d| d.to_string()).unwrap_or_default()).render()}
            {Field::new("until", "Until").kind("date").value(until.map(|d| d.to_string()).unwrap_or_default()).render()}
            <button type="submit" class="button button--secondary">"Filter"</button>
        </form>
        <p class="muted">"Newest first. Dates are UTC."</p>
        {entries_table(&paged.items)}
        {pager(&link, paged.next_cursor, after.is_none())}
    };
    Ok(page(ctx.chrome(), "Audit log", body).into_response())
}

//! Background jobs: the queue and its history, with filters and pages, and a retry for dead
//! jobs. Data and retry are `store::jobs`, as for the API.

use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use berth_core::entities::jobs::{self, JobState};
use berth_core::store::{self, page::Page};
use leptos::prelude::*;
use sea_orm::ActiveEnum;
use serde::Deserialize;
use uuid::Uuid;

use super::{parse_id, status_options};
use crate::auth::PageCtx;
use crate::components::empty::empty_state;
use crate::components::flash::Flash;
use crate::components::form::{csrf_input, Field};
use crate::components::table::{pager, table, Column, Link};
use crate::components::{badge, clip, when};
use crate::error::PageResult;
use crate::forms::PostForm;
use crate::layout::page;
use crate::WebState;

const LIST: &str = "/admin/jobs";

pub fn routes() -> Router<WebState> {
    Router::new().route(LIST, get(list)).route("/admin/jobs/{id}/retry", post(retry))
}

/// A table of jobs. With `back` (the list as it was filtered, where a retry returns to), dead
/// jobs get a Retry button; a flow run's page passes `None`, as the run has its own retry.
pub(crate) fn jobs_table(ctx: &PageCtx, items: &[jobs::Model], back: Option<&str>) -> impl IntoView {
    if items.is_empty() {
        return empty_state("No jobs.", None).into_any();
    }
    let rows: Vec<AnyView> = items
        .iter()
        .map(|j| {
            let flow = j.flow_run_id.map(|f| {
                view! { <br /><a class="muted" href=super::flows::detail_href(f)>"its flow run"</a> }
            });
            let error = j
                .last_error
                .as_deref()
                .map(|e| view! { <span class="error-text" title=e.to_owned()>{clip(e, 160)}</span> });
            let retry = back.filter(|_| j.state == JobState::Dead).map(|back| {
                view! {
                    <form method="post" action=format!("/admin/jobs/{}/retry", j.id) class="inline">
                        {csrf_input(&ctx.csrf)}
                        <input type="hidden" name="back" value=back.to_owned() />
                        <button type="submit" class="button button--small">"Retry"</button>
                    </form>
                }
            });
            let row_class = if j.state == JobState::Dead { "row--failed" } else { "" };
            view! {
                <tr class=row_class>
                    <td><code>{j.kind.clone()}</code>{flow}</td>
                    <td>{j.queue.clone()}</td>
                    <td>{badge::job_state(j.state)}</td>
                    <td class="nowrap">{format!("{} / {}", j.attempts, j.max_attempts)}</td>
                    <td class="nowrap">{when(&j.run_at)}</td>
                    <td>{error}</td>
                    {back.map(|_| view! { <td>{retry}</td> })}
                </tr>
            }
            .into_any()
        })
        .collect();
    let mut columns = vec![
        Column::plain("Kind"),
        Column::plain("Queue"),
        Column::plain("State"),
        Column::plain("Attempts"),
        Column::plain("Run at"),
        Column::plain("Last error"),
    ];
    if back.is_some() {
        columns.push(Column::plain("Action"));
    }
    table("Jobs", &columns, None, rows).into_any()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    kind: Option<String>,
    state: Option<String>,
    queue: Option<String>,
    customer: Option<String>,
    after: Option<String>,
}

fn text(value: &Option<String>) -> Option<String> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
}

async fn list(State(state): State<WebState>, ctx: PageCtx, Query(q): Query<ListQuery>) -> PageResult {
    let (kind, queue) = (text(&q.kind), text(&q.queue));
    let job_state = q.state.as_deref().and_then(|s| JobState::try_from_value(&s.to_owned()).ok());
    let customer_id: Option<Uuid> = q.customer.as_deref().and_then(|c| c.parse().ok());
    let after = q.after.as_deref().and_then(|a| a.parse().ok());
    let filter = store::jobs::Filter {
        kind: kind.clone(),
        state: job_state,
        queue: queue.clone(),
        customer_id,
        flow_run_id: None,
    };
    let paged = store::jobs::list(&state.db, &ctx.caller, filter, Page { cursor: after, limit: Some(25) }).await?;
    let customers = super::sites::customer_choices(&state, &ctx).await?;
    let link = Link::new(LIST)
        .param("kind", kind.clone())
        .param("state", job_state.map(|s| s.to_value()))
        .param("queue", queue.clone())
        .param("customer", customer_id);
    let here = match after {
        Some(a) => link.with("after", &a.to_string()),
        None => link.href(),
    };
    let filtered = kind.is_some() || queue.is_some() || job_state.is_some() || customer_id.is_some();
    let results = if paged.items.is_empty() {
        let message = if filtered { "No job matches these filters." } else { "No jobs yet." };
        empty_state(message, None).into_any()
    } else {
        view! {
            <p class="muted">"Newest first. Dead jobs ran out of attempts; Retry puts one back in its queue."</p>
            {jobs_table(&ctx, &paged.items, Some(&here))}
            {pager(&link, paged.next_cursor, after.is_none())}
        }
        .into_any()
    };
    let body = view! {
        <div class="toolbar">
            <form method="get" action=LIST class="filters" role="search">
                {Field::new("kind", "Kind").value(kind.unwrap_or_default()).hint("e.g. flow.run").render()}
                {Field::new("state", "State").select(status_options::<JobState>()).value(job_state.map(|s| s.to_value()).unwrap_or_default()).render()}
                {Field::new("queue", "Queue").value(queue.unwrap_or_default()).render()}
                {Field::new("customer", "Customer").select(super::sites::customer_options(&customers, Some("Any customer"))).value(customer_id.map(|c| c.to_string()).unwrap_or_default()).render()}
                <button type="submit" class="button button--secondary">"Filter"</button>
            </form>
        </div>
        {results}
    };
    Ok(page(ctx.chrome(), "Jobs", body).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RetryForm {
    back: String,
}

/// Where to go after a retry: the filtered list it was pressed on, but only a path of the job
/// list itself, so the field cannot send anyone elsewhere.
fn back_to(back: &str) -> &str {
    let is_list = back == LIST || back.starts_with("/admin/jobs?");
    if is_list && !back.contains(['\r', '\n']) {
        back
    } else {
        LIST
    }
}

async fn retry(
    State(state): State<WebState>,
    Path(id): Path<String>,
    PostForm { ctx, form }: PostForm<RetryForm>,
) -> PageResult {
    let id = parse_id(&id)?;
    let flash = match store::jobs::retry(&state.db, &ctx.caller, id).await {
        Ok(job) => Flash::success(format!("Job {} is queued again.", job.kind)),
        Err(berth_core::Error::Conflict(message)) => Flash::error(format!("Not retried: {message}.")),
        Err(e) => return Err(e.into()),
    };
    ctx.redirect(back_to(&form.back), flash).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn retries_return_only_to_the_job_list() {
        assert_eq!(super::back_to("/admin/jobs?state=dead&after=x"), "/admin/jobs?state=dead&after=x");
        assert_eq!(super::back_to("https://evil.example/admin/jobs"), "/admin/jobs");
        assert_eq!(super::back_to("//evil.example"), "/admin/jobs");
        assert_eq!(super::back_to("/admin/jobsx"), "/admin/jobs");
        assert_eq!(super::back_to(""), "/admin/jobs");
    }
}

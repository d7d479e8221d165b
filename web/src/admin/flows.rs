//! Flow runs, the console's replacement for n8n's execution list: every run with filters and
//! pages, each run's steps as a timeline (attempts, timings, errors), its input, the jobs that
//! drove it, and a retry for a failed run. Data and retry are `store::flows`, as for the API.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use berth_core::entities::flow_runs::{self, FlowState};
use berth_core::entities::flow_steps::{self, StepState};
use berth_core::store::{self, page::Page};
use chrono::Utc;
use leptos::prelude::*;
use sea_orm::ActiveEnum;
use serde::Deserialize;
use uuid::Uuid;

use super::{customer_names, parse_id, status_options};
use crate::auth::{NoFields, PageCtx};
use crate::components::empty::empty_state;
use crate::components::flash::Flash;
use crate::components::form::{csrf_input, Field};
use crate::components::table::{pager, table, Column, Link};
use crate::components::{badge, duration_opt, when, when_opt};
use crate::error::PageResult;
use crate::forms::PostForm;
use crate::layout::page;
use crate::WebState;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/flows", get(list))
        .route("/admin/flows/{id}", get(detail))
        .route("/admin/flows/{id}/retry", post(retry))
}

pub(crate) fn detail_href(id: Uuid) -> String {
    format!("/admin/flows/{id}")
}

/// A run's duration: to its end, or so far while it runs.
fn run_duration(run: &flow_runs::Model) -> String {
    let end = match run.state {
        FlowState::Running => None,
        _ => Some(run.finished_at.unwrap_or(run.updated_at)),
    };
    duration_opt(Some(&run.created_at), end.as_ref(), &Utc::now())
}

/// The table of runs used by the list, the dashboard and a customer's page. Failed runs are
/// marked by their row as well as by their badge, so they stand out in a long list.
pub(crate) fn runs_table(runs: &[flow_runs::Model], names: &HashMap<Uuid, String>) -> impl IntoView {
    let rows: Vec<AnyView> = runs
        .iter()
        .map(|r| {
            let customer = r.customer_id.map(|c| {
                let name = names.get(&c).cloned().unwrap_or_else(|| c.to_string());
                view! { <a href=format!("/admin/customers/{c}")>{name}</a> }
            });
            let row_class = if r.state == FlowState::Failed { "row--failed" } else { "" };
            view! {
                <tr class=row_class>
                    <td><a href=detail_href(r.id)>{r.kind.clone()}</a></td>
                    <td>{customer.map(IntoAny::into_any).unwrap_or_else(|| view! { <span class="muted">"system"</span> }.into_any())}</td>
                    <td>{badge::flow_state(r.state)}</td>
                    <td>{r.current_step.clone().map(|s| view! { <code>{s}</code> })}</td>
                    <td class="nowrap">{when(&r.created_at)}</td>
                    <td class="nowrap">{run_duration(r)}</td>
                </tr>
            }
            .into_any()
        })
        .collect();
    let columns = [
        Column::plain("Flow"),
        Column::plain("Customer"),
        Column::plain("State"),
        Column::plain("Current step"),
        Column::plain("Created"),
        Column::plain("Duration"),
    ];
    table("Flow runs", &columns, None, rows)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    kind: Option<String>,
    state: Option<String>,
    customer: Option<String>,
    after: Option<String>,
}

async fn list(State(state): State<WebState>, ctx: PageCtx, Query(q): Query<ListQuery>) -> PageResult {
    let kind = q.kind.as_deref().map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned);
    let flow_state = q.state.as_deref().and_then(|s| FlowState::try_from_value(&s.to_owned()).ok());
    let customer_id: Option<Uuid> = q.customer.as_deref().and_then(|c| c.parse().ok());
    let after = q.after.as_deref().and_then(|a| a.parse().ok());
    let filter = store::flows::Filter { kind: kind.clone(), state: flow_state, customer_id };
    let paged = store::flows::list(&state.db, &ctx.caller, filter, Page { cursor: after, limit: Some(25) }).await?;
    let customers = super::sites::customer_choices(&state, &ctx).await?;
    let names = customer_names(&state, &ctx, &customers, paged.items.iter().filter_map(|r| r.customer_id)).await?;
    let link = Link::new("/admin/flows")
        .param("kind", kind.clone())
        .param("state", flow_state.map(|s| s.to_value()))
        .param("customer", customer_id);
    let filtered = kind.is_some() || flow_state.is_some() || customer_id.is_some();
    let results = if paged.items.is_empty() {
        let message = if filtered { "No flow run matches these filters." } else { "No flow has run yet." };
        empty_state(message, None).into_any()
    } else {
        view! {
            <p class="muted">"Newest first. Open a run to see its steps."</p>
            {runs_table(&paged.items, &names)}
            {pager(&link, paged.next_cursor, after.is_none())}
        }
        .into_any()
    };
    let body = view! {
        <div class="toolbar">
            <form method="get" action="/admin/flows" class="filters" role="search">
                {Field::new("kind", "Flow").value(kind.unwrap_or_default()).hint("e.g. onboarding").render()}
                {Field::new("state", "State").select(status_options::<FlowState>()).value(flow_state.map(|s| s.to_value()).unwrap_or_default()).render()}
                {Field::new("customer", "Customer").select(super::sites::customer_options(&customers, Some("Any customer"))).value(customer_id.map(|c| c.to_string()).unwrap_or_default()).render()}
                <button type="submit" class="button button--secondary">"Filter"</button>
            </form>
        </div>
        {results}
    };
    Ok(page(ctx.chrome(), "Flow runs", body).into_response())
}

fn step_class(state: StepState) -> &'static str {
    match state {
        StepState::Pending => "timeline-step timeline-step--pending",
        StepState::Running => "timeline-step timeline-step--running",
        StepState::Succeeded => "timeline-step timeline-step--succeeded",
        StepState::Failed => "timeline-step timeline-step--failed",
    }
}

/// The steps, in order, as an ordered list: a timeline that reads top to bottom. `describe`
/// may give a step a sentence for people who do not know the flow's step names (the portal).
pub(crate) fn timeline(steps: &[flow_steps::Model], describe: fn(&str) -> Option<&'static str>) -> impl IntoView {
    let now = Utc::now();
    let items = steps
        .iter()
        .map(|s| {
            let error = s.error.clone().map(|e| view! { <pre class="error-text">{e}</pre> });
            let description = describe(&s.name).map(|d| view! { <p class="timeline-meta">{d}</p> });
            let meta = match (s.attempts, &s.started_at) {
                (_, None) => "not started yet".to_owned(),
                (n, Some(at)) => {
                    let attempts = if n == 1 { "1 attempt".to_owned() } else { format!("{n} attempts") };
                    let took = duration_opt(Some(at), s.finished_at.as_ref(), &now);
                    format!("{attempts} · started {} · {took}", when(at))
                }
            };
            view! {
                <li class=step_class(s.state)>
                    <div class="timeline-head">
                        <strong class="timeline-name">{s.name.clone()}</strong>
                        {badge::step_state(s.state)}
                    </div>
                    {description}
                    <p class="timeline-meta muted">{meta}</p>
                    {error}
                </li>
            }
        })
        .collect_view();
    view! { <ol class="timeline">{items}</ol> }
}

async fn detail(State(state): State<WebState>, ctx: PageCtx, Path(id): Path<String>) -> PageResult {
    let id = parse_id(&id)?;
    let (run, steps) = store::flows::get_with_steps(&state.db, &ctx.caller, id).await?;
    let customer = match run.customer_id {
        Some(c) => Some(store::customers::get(&state.db, &ctx.caller, c).await?),
        None => None,
    };
    let filter = store::jobs::Filter { flow_run_id: Some(id), ..Default::default() };
    let jobs = store::jobs::list(&state.db, &ctx.caller, filter, Page { cursor: None, limit: Some(20) }).await?;
    // Pretty-printing a JSON value cannot fail; the fallback only keeps this free of panics.
    let input = serde_json::to_string_pretty(&run.input).unwrap_or_else(|_| run.input.to_string());
    let retry = (run.state == FlowState::Failed).then(|| {
        view! {
            <form method="post" action=format!("{}/retry", detail_href(id)) class="actions">
                {csrf_input(&ctx.csrf)}
                <button type="submit" class="button">"Retry"</button>
                <span class="muted">"Resumes at the failed step; finished steps are not run again."</span>
            </form>
        }
    });
    let customer = customer.map(|c| {
        view! { <dt>"Customer"</dt><dd><a href=format!("/admin/customers/{}", c.id)>{c.company_name}</a></dd> }
    });
    let error = run.error.clone().map(|e| view! { <dt>"Error"</dt><dd><pre class="error-text">{e}</pre></dd> });
    let body = view! {
        <p><a href="/admin/flows">"← All flow runs"</a></p>
        <div class="cards cards--run">
        <section class="panel stack" aria-labelledby="f-summary">
            <h2 id="f-summary">"Run"</h2>
            <dl class="facts">
                <dt>"State"</dt><dd>{badge::flow_state(run.state)}</dd>
                {customer}
                <dt>"Current step"</dt><dd>{run.current_step.clone().map(|s| view! { <code>{s}</code> })}</dd>
                <dt>"Created"</dt><dd>{when(&run.created_at)}</dd>
                <dt>"Finished"</dt><dd>{when_opt(&run.finished_at)}</dd>
                <dt>"Duration"</dt><dd>{run_duration(&run)}</dd>
                {error}
            </dl>
            {retry}
        </section>
        <section class="panel" aria-labelledby="f-steps">
            <h2 id="f-steps">"Steps"</h2>
            {timeline(&steps, |_| None)}
        </section>
        </div>
        <section class="panel" aria-labelledby="f-input">
            <h2 id="f-input">"Input"</h2>
            <pre class="code-block">{input}</pre>
        </section>
        <section aria-labelledby="f-jobs">
            <h2 id="f-jobs">"Jobs that drove this run"</h2>
            {super::jobs::jobs_table(&ctx, &jobs.items, None)}
        </section>
    };
    Ok(page(ctx.chrome(), &format!("Flow run: {}", run.kind), body).into_response())
}

async fn retry(
    State(state): State<WebState>,
    Path(id): Path<String>,
    PostForm { ctx, .. }: PostForm<NoFields>,
) -> PageResult {
    let id = parse_id(&id)?;
    let flash = match store::flows::retry(&state.db, &ctx.caller, id).await {
        Ok(run) => {
            let at = run.current_step.map(|s| format!(" at step {s}")).unwrap_or_default();
            Flash::success(format!("Retry queued: the run resumes{at}."))
        }
        // Already running again, or not failed: say so on the run's page.
        Err(berth_core::Error::Conflict(message)) => Flash::error(format!("Not retried: {message}.")),
        Err(e) => return Err(e.into()),
    };
    ctx.redirect(&detail_href(id), flash).await
}

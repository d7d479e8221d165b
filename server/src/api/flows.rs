//! Flow runs (what replaces n8n's execution list): each run with its steps as a timeline —
//! start, end, duration, attempts and error per step. Admins see all; customer users their own
//! customer's runs. Retrying a failed run (resuming at the failed step) is admin-only.

use axum::extract::State;
use axum::Json;
use berth_core::entities::flow_runs::{self, FlowState};
use berth_core::entities::flow_steps::{self, StepState};
use berth_core::store::{self, page::Page};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::auth::{Admin, Auth};
use crate::http::error::{ApiResult, Problem};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(get)).routes(routes!(retry))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FlowRunDto {
    pub id: Uuid,
    /// The flow's stable name, e.g. `onboarding`.
    pub kind: String,
    pub state: FlowState,
    pub customer_id: Option<Uuid>,
    /// The step running now, or the one that failed.
    pub current_step: Option<String>,
    pub error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Present on single-run reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<FlowStepDto>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FlowStepDto {
    pub position: i32,
    pub name: String,
    pub state: StepState,
    /// Times started; more than one after a retry or a crash-resume.
    pub attempts: i32,
    /// `<run id>:<step>`, the same on every attempt.
    pub idempotency_key: String,
    pub error: Option<String>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// `finished_at - started_at` of the last attempt, when it finished.
    pub duration_ms: Option<i64>,
}

impl From<flow_steps::Model> for FlowStepDto {
    fn from(s: flow_steps::Model) -> Self {
        let duration_ms = match (s.started_at, s.finished_at) {
            (Some(a), Some(b)) if b >= a => Some((b - a).num_milliseconds()),
            _ => None,
        };
        Self {
            position: s.position,
            name: s.name,
            state: s.state,
            attempts: s.attempts,
            idempotency_key: s.idempotency_key,
            error: s.error,
            started_at: s.started_at,
            finished_at: s.finished_at,
            duration_ms,
        }
    }
}

impl FlowRunDto {
    pub(crate) fn new(m: flow_runs::Model, steps: Option<Vec<flow_steps::Model>>) -> Self {
        Self {
            id: m.id,
            kind: m.kind,
            state: m.state,
            customer_id: m.customer_id,
            current_step: m.current_step,
            error: m.error,
            created_at: m.created_at,
            updated_at: m.updated_at,
            finished_at: m.finished_at,
            steps: steps.map(|s| s.into_iter().map(Into::into).collect()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FlowRunList {
    pub items: Vec<FlowRunDto>,
    pub next_cursor: Option<Uuid>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub kind: Option<String>,
    /// `running`, `succeeded` or `failed`.
    pub state: Option<FlowState>,
    pub customer_id: Option<Uuid>,
    pub cursor: Option<Uuid>,
    pub limit: Option<u64>,
}

#[utoipa::path(get, operation_id = "flows_list", path = "/flows", tag = "flows", params(ListQuery),
    responses((status = 200, body = FlowRunList), (status = 400, body = Problem)))]
async fn list(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<FlowRunList>> {
    let filter = store::flows::Filter { kind: q.kind, state: q.state, customer_id: q.customer_id };
    let page = store::flows::list(&state.db, &auth.caller, filter, Page { cursor: q.cursor, limit: q.limit }).await?;
    Ok(Json(FlowRunList {
        items: page.items.into_iter().map(|m| FlowRunDto::new(m, None)).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(get, operation_id = "flows_get", path = "/flows/{id}", tag = "flows", params(("id" = Uuid, Path)),
    responses((status = 200, body = FlowRunDto), (status = 404, body = Problem)))]
async fn get(State(state): State<AppState>, auth: Auth, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<FlowRunDto>> {
    let (run, steps) = store::flows::get_with_steps(&state.db, &auth.caller, id).await?;
    Ok(Json(FlowRunDto::new(run, Some(steps))))
}

/// Resumes a failed run at the step that failed, with a fresh driver job (audited as
/// `flow.retry`).
#[utoipa::path(post, operation_id = "flows_retry", path = "/flows/{id}/retry", tag = "flows", params(("id" = Uuid, Path)),
    responses((status = 200, body = FlowRunDto), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn retry(
    State(state): State<AppState>,
    Admin(auth): Admin,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<FlowRunDto>> {
    let run = store::flows::retry(&state.db, &auth.caller, id).await?;
    let steps = store::flows::steps(&state.db, run.id).await?;
    Ok(Json(FlowRunDto::new(run, Some(steps))))
}

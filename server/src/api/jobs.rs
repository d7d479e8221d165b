//! Background jobs: the queue and its history. Admins see every job; customer users only the
//! jobs done for their own customer (scoped in the store). Retrying a dead job is admin-only.

use axum::extract::State;
use axum::Json;
use berth_core::entities::jobs::{self, JobState};
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
pub struct JobDto {
    pub id: Uuid,
    /// The job type's stable name, e.g. `flow.run`, `housekeeping.retention`.
    pub kind: String,
    pub queue: String,
    pub priority: i32,
    pub state: JobState,
    /// Runs started so far.
    pub attempts: i32,
    pub max_attempts: i32,
    /// Not run before this instant (retry backoff).
    pub run_at: chrono::DateTime<chrono::Utc>,
    /// The last failure, kept when the job later succeeds on a retry.
    pub last_error: Option<String>,
    pub customer_id: Option<Uuid>,
    pub flow_run_id: Option<Uuid>,
    /// The cron tick that enqueued it, for scheduled jobs.
    pub scheduled_for: Option<chrono::DateTime<chrono::Utc>>,
    pub dedup_key: Option<String>,
    /// The worker that runs (or last ran) it.
    pub locked_by: Option<String>,
    pub lease_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The job's data; administrators only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
}

impl JobDto {
    pub fn new(m: jobs::Model, admin: bool) -> Self {
        Self {
            id: m.id,
            kind: m.kind,
            queue: m.queue,
            priority: m.priority,
            state: m.state,
            attempts: m.attempts,
            max_attempts: m.max_attempts,
            run_at: m.run_at,
            last_error: m.last_error,
            customer_id: m.customer_id,
            flow_run_id: m.flow_run_id,
            scheduled_for: m.scheduled_for,
            dedup_key: m.dedup_key,
            locked_by: m.locked_by,
            lease_expires_at: m.lease_expires_at,
            created_at: m.created_at,
            started_at: m.started_at,
            finished_at: m.finished_at,
            payload: admin.then_some(m.payload),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    pub items: Vec<JobDto>,
    pub next_cursor: Option<Uuid>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub kind: Option<String>,
    /// `queued`, `running`, `done` or `dead`.
    pub state: Option<JobState>,
    pub queue: Option<String>,
    pub customer_id: Option<Uuid>,
    pub flow_run_id: Option<Uuid>,
    pub cursor: Option<Uuid>,
    pub limit: Option<u64>,
}

#[utoipa::path(get, operation_id = "jobs_list", path = "/jobs", tag = "jobs", params(ListQuery),
    responses((status = 200, body = JobList), (status = 400, body = Problem)))]
async fn list(State(state): State<AppState>, auth: Auth, ApiQuery(q): ApiQuery<ListQuery>) -> ApiResult<Json<JobList>> {
    let filter = store::jobs::Filter {
        kind: q.kind,
        state: q.state,
        queue: q.queue,
        customer_id: q.customer_id,
        flow_run_id: q.flow_run_id,
    };
    let page = store::jobs::list(&state.db, &auth.caller, filter, Page { cursor: q.cursor, limit: q.limit }).await?;
    let admin = auth.caller.is_admin();
    Ok(Json(JobList {
        items: page.items.into_iter().map(|m| JobDto::new(m, admin)).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(get, operation_id = "jobs_get", path = "/jobs/{id}", tag = "jobs", params(("id" = Uuid, Path)),
    responses((status = 200, body = JobDto), (status = 404, body = Problem)))]
async fn get(State(state): State<AppState>, auth: Auth, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<JobDto>> {
    let job = store::jobs::get(&state.db, &auth.caller, id).await?;
    Ok(Json(JobDto::new(job, auth.caller.is_admin())))
}

/// Puts a dead job back in its queue with a fresh set of attempts (audited as `job.retry`).
#[utoipa::path(post, operation_id = "jobs_retry", path = "/jobs/{id}/retry", tag = "jobs", params(("id" = Uuid, Path)),
    responses((status = 200, body = JobDto), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn retry(
    State(state): State<AppState>,
    Admin(auth): Admin,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<JobDto>> {
    let job = store::jobs::retry(&state.db, &auth.caller, id).await?;
    Ok(Json(JobDto::new(job, true)))
}

//! The audit log (admin only), filterable by actor, target and time.

use axum::extract::State;
use axum::Json;
use berth_core::entities::audit_log;
use berth_core::store::{self, page::Page};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::auth::Admin;
use crate::http::error::{ApiResult, Problem};
use crate::http::extract::ApiQuery;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: Uuid,
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor: String,
    pub actor_id: Option<Uuid>,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    pub customer_id: Option<Uuid>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub details: serde_json::Value,
}

impl From<audit_log::Model> for AuditEntry {
    fn from(a: audit_log::Model) -> Self {
        Self {
            id: a.id,
            at: a.at,
            actor: a.actor,
            actor_id: a.actor_id,
            action: a.action,
            target_type: a.target_type,
            target_id: a.target_id,
            customer_id: a.customer_id,
            ip: a.ip,
            request_id: a.request_id,
            details: a.details,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditList {
    pub items: Vec<AuditEntry>,
    pub next_cursor: Option<Uuid>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// The actor's e-mail (or `cli`, `system`).
    pub actor: Option<String>,
    /// `customer`, `site`, `user`, `api_token`.
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub customer_id: Option<Uuid>,
    pub action: Option<String>,
    /// RFC 3339, inclusive.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// RFC 3339, exclusive.
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    pub cursor: Option<Uuid>,
    pub limit: Option<u64>,
}

#[utoipa::path(get, operation_id = "audit_list", path = "/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditList), (status = 403, body = Problem)))]
async fn list(
    State(state): State<AppState>,
    Admin(auth): Admin,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditList>> {
    let filter = store::audit::Filter {
        actor: q.actor,
        target_type: q.target_type,
        target_id: q.target_id,
        customer_id: q.customer_id,
        action: q.action,
        since: q.since,
        until: q.until,
        exclude_auth: false,
    };
    let page = store::audit::list(&state.db, &auth.caller, filter, Page { cursor: q.cursor, limit: q.limit }).await?;
    Ok(Json(AuditList { items: page.items.into_iter().map(Into::into).collect(), next_cursor: page.next_cursor }))
}

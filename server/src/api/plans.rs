//! The plans on offer.

use axum::extract::State;
use axum::Json;
use berth_core::entities::plans;
use berth_core::store;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::Auth;
use crate::http::error::{ApiResult, Problem};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanDto {
    pub id: String,
    pub name: String,
    /// CPU in thousandths of a core.
    pub cpu_millis: i32,
    pub memory_mb: i32,
    pub storage_mb: i32,
    pub max_sites: i32,
    pub backup_retention_days: i32,
}

impl From<plans::Model> for PlanDto {
    fn from(p: plans::Model) -> Self {
        Self {
            id: p.id,
            name: p.name,
            cpu_millis: p.cpu_millis,
            memory_mb: p.memory_mb,
            storage_mb: p.storage_mb,
            max_sites: p.max_sites,
            backup_retention_days: p.backup_retention_days,
        }
    }
}

#[utoipa::path(get, operation_id = "plans_list", path = "/plans", tag = "plans", responses((status = 200, body = Vec<PlanDto>), (status = 401, body = Problem)))]
async fn list(State(state): State<AppState>, _auth: Auth) -> ApiResult<Json<Vec<PlanDto>>> {
    Ok(Json(store::plans::list(&state.db).await?.into_iter().map(Into::into).collect()))
}

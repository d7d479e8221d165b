//! Customers (admin only): who buys hosting, on which plan, in which state.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use berth_core::entities::customers;
use berth_core::store::{self, page::Page};
use berth_core::types::CustomerStatus;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::auth::Admin;
use crate::http::error::{ApiResult, Problem};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(get, patch, delete))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerDto {
    pub id: Uuid,
    pub email: String,
    pub company_name: String,
    pub plan: String,
    pub status: CustomerStatus,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<customers::Model> for CustomerDto {
    fn from(c: customers::Model) -> Self {
        Self {
            id: c.id,
            email: c.email,
            company_name: c.company_name,
            plan: c.plan_id,
            status: c.status,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerList {
    pub items: Vec<CustomerDto>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<Uuid>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub status: Option<CustomerStatus>,
    pub plan: Option<String>,
    /// Search in e-mail and company name.
    pub q: Option<String>,
    pub cursor: Option<Uuid>,
    /// 1 to 200, default 50.
    pub limit: Option<u64>,
}

#[utoipa::path(get, operation_id = "customers_list", path = "/customers", tag = "customers", params(ListQuery),
    responses((status = 200, body = CustomerList), (status = 403, body = Problem)))]
async fn list(
    State(state): State<AppState>,
    Admin(auth): Admin,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<CustomerList>> {
    let filter = store::customers::Filter { status: q.status, plan: q.plan, q: q.q };
    let page =
        store::customers::list(&state.db, &auth.caller, filter, Page { cursor: q.cursor, limit: q.limit }).await?;
    Ok(Json(CustomerList { items: page.items.into_iter().map(Into::into).collect(), next_cursor: page.next_cursor }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomer {
    pub email: String,
    pub company_name: String,
    /// A plan id from GET /plans.
    pub plan: String,
}

#[utoipa::path(post, operation_id = "customers_create", path = "/customers", tag = "customers", request_body = CreateCustomer,
    responses((status = 201, body = CustomerDto), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create(
    State(state): State<AppState>,
    Admin(auth): Admin,
    ApiJson(body): ApiJson<CreateCustomer>,
) -> ApiResult<(StatusCode, Json<CustomerDto>)> {
    let new = store::customers::NewCustomer { email: body.email, company_name: body.company_name, plan: body.plan };
    let customer = store::customers::create(&state.db, &auth.caller, new).await?;
    Ok((StatusCode::CREATED, Json(customer.into())))
}

#[utoipa::path(get, operation_id = "customers_get", path = "/customers/{id}", tag = "customers", params(("id" = Uuid, Path)),
    responses((status = 200, body = CustomerDto), (status = 404, body = Problem)))]
async fn get(
    State(state): State<AppState>,
    Admin(auth): Admin,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<CustomerDto>> {
    Ok(Json(store::customers::get(&state.db, &auth.caller, id).await?.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchCustomer {
    pub company_name: Option<String>,
    pub plan: Option<String>,
    pub status: Option<CustomerStatus>,
}

#[utoipa::path(patch, operation_id = "customers_patch", path = "/customers/{id}", tag = "customers", params(("id" = Uuid, Path)), request_body = PatchCustomer,
    responses((status = 200, body = CustomerDto), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn patch(
    State(state): State<AppState>,
    Admin(auth): Admin,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<PatchCustomer>,
) -> ApiResult<Json<CustomerDto>> {
    let patch = store::customers::Patch { company_name: body.company_name, plan: body.plan, status: body.status };
    Ok(Json(store::customers::update(&state.db, &auth.caller, id, patch).await?.into()))
}

#[utoipa::path(delete, operation_id = "customers_delete", path = "/customers/{id}", tag = "customers", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, description = "The customer still has sites", body = Problem)))]
async fn delete(
    State(state): State<AppState>,
    Admin(auth): Admin,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    store::customers::delete(&state.db, &auth.caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

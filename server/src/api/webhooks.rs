//! Webhooks in. `POST /webhooks/signup` is called by the hosting company's signup form: signed
//! (`Berth-Signature`), JSON only, unknown fields refused, event ids de-duplicated.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_core::access::Caller;
use berth_core::store::signup::{self, Outcome, Signup};
use berth_core::webhook::{self, SignatureError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::http::client_ip::ClientIp;
use crate::http::error::{problem_response, ApiError, ApiResult, Problem};
use crate::http::extract::{parse_json, ApiBytes};
use crate::http::request_id;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(signup_webhook))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    /// The event id; a replay of the same id returns the first answer and starts nothing.
    pub id: String,
    pub email: String,
    pub company_name: String,
    /// A plan id from GET /plans.
    pub plan: String,
    /// A site name under BERTH_BASE_DOMAIN (`shop` → `shop.<base domain>`) ...
    pub subdomain: Option<String>,
    /// ... or the customer's own domain; exactly one of the two.
    pub domain: Option<String>,
    /// The site image; the static site image when absent.
    pub template: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignupAccepted {
    pub customer_id: Uuid,
    pub site_id: Uuid,
    /// The host the site will answer on.
    pub host: String,
    /// The onboarding flow run.
    pub flow_id: Uuid,
    /// Where to follow onboarding (the flow run, with its steps).
    pub status_url: String,
}

fn signature_problem(err: SignatureError) -> Response {
    problem_response(StatusCode::UNAUTHORIZED, "signature", "Bad signature", err.to_string(), vec![], None)
}

/// Accepts a signup and starts its onboarding. Signed with
/// `Berth-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
#[utoipa::path(post, operation_id = "webhooks_signup_webhook", path = "/webhooks/signup", tag = "webhooks",
    request_body = SignupRequest,
    params(("Berth-Signature" = String, Header, description = "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"t.body\">")),
    responses(
        (status = 202, description = "Accepted: customer, portal user and site exist; onboarding runs in the background", body = SignupAccepted),
        (status = 401, description = "Missing, malformed, stale or wrong signature", body = Problem),
        (status = 400, description = "Malformed JSON, or an object that repeats a key", body = Problem),
        (status = 409, description = "E-mail or host already taken", body = Problem),
        (status = 413, description = "Body over 1 MiB", body = Problem),
        (status = 415, body = Problem),
        (status = 422, body = Problem),
        (status = 503, description = "No webhook secret configured", body = Problem),
    ))]
async fn signup_webhook(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Response> {
    let cfg = &state.config;
    let secrets: Vec<_> = [&cfg.webhook.secret, &cfg.webhook.secret_previous].into_iter().flatten().collect();
    if secrets.is_empty() {
        return Err(ApiError::Unavailable("the signup webhook is not configured (set BERTH_WEBHOOK_SECRET)".into()));
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type.split(';').next().map(str::trim) != Some("application/json") {
        return Err(ApiError::UnsupportedMediaType);
    }
    let signature = headers.get(webhook::SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    if let Err(err) = webhook::verify(signature, &body, &secrets, chrono::Utc::now().timestamp()) {
        tracing::warn!(%ip, error = %err, "Rejected a signup webhook");
        return Ok(signature_problem(err));
    }
    let req: SignupRequest = parse_json(&body)?;
    let caller = Caller::system("signup-webhook").with_request(Some(ip.to_string()), request_id::of(&headers));
    let signup = Signup {
        event_id: req.id,
        email: req.email,
        company_name: req.company_name,
        plan: req.plan,
        subdomain: req.subdomain,
        domain: req.domain,
        template: req.template,
    };
    // One transaction: the customer, their user and site, their onboarding run and the stored
    // answer (what a replay of this event id gets) commit together or not at all.
    let outcome = signup::accept(&state.db, &state.keys, cfg, &caller, signup, |accepted| {
        let body = SignupAccepted {
            customer_id: accepted.customer_id,
            site_id: accepted.site_id,
            host: accepted.host.clone(),
            flow_id: accepted.flow_run_id,
            status_url: cfg.server.public_link(&format!("/api/v1/flows/{}", accepted.flow_run_id)),
        };
        serde_json::to_value(&body).map_err(|e| berth_core::Error::Internal(e.into()))
    })
    .await?;
    Ok(match outcome {
        Outcome::New { accepted, response } => {
            state.ops.reconcile_soon();
            tracing::info!(customer.id = %accepted.customer_id, host = %accepted.host, "Signup accepted");
            (StatusCode::ACCEPTED, axum::Json(response)).into_response()
        }
        Outcome::Replay { status_code, response } => {
            let status = StatusCode::from_u16(status_code).unwrap_or(StatusCode::ACCEPTED);
            (status, axum::Json(response)).into_response()
        }
    })
}

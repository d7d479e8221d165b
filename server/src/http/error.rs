//! Error policy for the HTTP edge, written once here.
//!
//! Every handler returns `Result<_, ApiError>`. An `ApiError` renders as RFC 7807
//! `application/problem+json` with a stable `type` (`urn:berth:problem:<slug>`), a human
//! `detail`, and per-field `errors` for 422. Mapping: not found → 404 (also for another tenant's
//! object), forbidden → 403, conflict → 409, validation → 422, pool exhaustion or a lost database
//! → 503. Internal details are logged here, once, and never sent: the client gets a generic
//! sentence and the request id to quote.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_core::{Error as CoreError, FieldError};
use serde::Serialize;

#[derive(Debug)]
pub enum ApiError {
    Core(CoreError),
    BadRequest(String),
    UnsupportedMediaType,
    PayloadTooLarge,
    /// The body did not arrive within BERTH_HTTP_BODY_TIMEOUT_SECONDS.
    RequestTimeout,
    Unauthorized(&'static str),
    TotpRequired,
    CsrfFailed,
    /// A change only a signed-in person may make (with their password), never an API token.
    SessionRequired,
    TooManyRequests {
        retry_after_secs: u64,
    },
    RouteNotFound,
    MethodNotAllowed,
    Unavailable(String),
}

/// The problem+json body. Public so the OpenAPI document can describe it.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub errors: Vec<ProblemField>,
}

#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ProblemField {
    pub field: String,
    pub message: String,
}

impl From<FieldError> for ProblemField {
    fn from(e: FieldError) -> Self {
        Self { field: e.field, message: e.message }
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        ApiError::Core(e)
    }
}

/// Site operations: the store's errors as above; a missing or stopped container is a conflict
/// with the site's state (409), an engine that is off, unreachable or slow is 503, anything else
/// the engine refused is internal (logged here, once).
impl From<berth_ops::Error> for ApiError {
    fn from(e: berth_ops::Error) -> Self {
        use berth_ops::Error as E;
        match e {
            E::Store(e) => ApiError::Core(e),
            E::NoContainer
            | E::NotRunning(_)
            | E::RemoteEngine
            | E::SwitchFailed(_)
            | E::VolumeInUse(_)
            | E::Restore(_) => ApiError::Core(CoreError::Conflict(e.to_string())),
            E::Fill(detail) => ApiError::Core(CoreError::Internal(anyhow::anyhow!("filling a volume: {detail}"))),
            E::NoRuntime | E::NoBackups | E::EngineTimeout => ApiError::Unavailable(e.to_string()),
            E::EngineUnavailable(ref detail) => {
                tracing::error!(error = %detail, "Docker unreachable");
                ApiError::Unavailable(e.to_string())
            }
            E::Engine(detail) => ApiError::Core(CoreError::Internal(anyhow::anyhow!("container engine: {detail}"))),
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        ApiError::Core(e.into())
    }
}

impl ApiError {
    pub fn invalid(field: &str, message: &str) -> Self {
        ApiError::Core(CoreError::invalid(field, message))
    }

    fn parts(self) -> (StatusCode, &'static str, &'static str, String, Vec<ProblemField>) {
        use StatusCode as S;
        match self {
            ApiError::Core(e) => match e {
                CoreError::NotFound(what) => {
                    (S::NOT_FOUND, "not-found", "Not found", format!("{what} not found"), vec![])
                }
                CoreError::Forbidden => {
                    (S::FORBIDDEN, "forbidden", "Forbidden", "this action needs an administrator".into(), vec![])
                }
                CoreError::Unauthorized => (
                    S::UNAUTHORIZED,
                    "unauthorized",
                    "Unauthorized",
                    "sign in or send a valid API token".into(),
                    vec![],
                ),
                CoreError::Conflict(msg) => (S::CONFLICT, "conflict", "Conflict", msg, vec![]),
                CoreError::Validation(errors) => (
                    S::UNPROCESSABLE_ENTITY,
                    "validation",
                    "Invalid input",
                    describe_fields(&errors),
                    errors.into_iter().map(Into::into).collect(),
                ),
                CoreError::Unavailable(err) => {
                    tracing::error!(error = %err, "Database unavailable");
                    (
                        S::SERVICE_UNAVAILABLE,
                        "unavailable",
                        "Service unavailable",
                        "the database is unavailable; try again shortly".into(),
                        vec![],
                    )
                }
                CoreError::Db(err) => {
                    tracing::error!(error = %err, "Database error");
                    internal()
                }
                CoreError::Internal(err) => {
                    tracing::error!(error = format!("{err:#}"), "Internal error");
                    internal()
                }
            },
            ApiError::BadRequest(detail) => (S::BAD_REQUEST, "bad-request", "Bad request", detail, vec![]),
            ApiError::UnsupportedMediaType => (
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "send the body as Content-Type: application/json".into(),
                vec![],
            ),
            ApiError::PayloadTooLarge => {
                (S::PAYLOAD_TOO_LARGE, "payload-too-large", "Payload too large", "the body is too large".into(), vec![])
            }
            ApiError::RequestTimeout => (
                S::REQUEST_TIMEOUT,
                "request-timeout",
                "Request timeout",
                "the request body did not arrive in time".into(),
                vec![],
            ),
            ApiError::Unauthorized(detail) => (S::UNAUTHORIZED, "unauthorized", "Unauthorized", detail.into(), vec![]),
            ApiError::TotpRequired => (
                S::UNAUTHORIZED,
                "totp-required",
                "Two-factor code required",
                "enter the 6-digit code from your authenticator app".into(),
                vec![],
            ),
            ApiError::CsrfFailed => (
                S::FORBIDDEN,
                "csrf",
                "Missing or wrong CSRF token",
                "send the X-CSRF-Token header from GET /api/v1/auth/me with cookie-authenticated changes".into(),
                vec![],
            ),
            ApiError::SessionRequired => (
                S::FORBIDDEN,
                "session-required",
                "Sign-in required",
                "an API token cannot change the second factor: sign in with your password and use the session".into(),
                vec![],
            ),
            ApiError::TooManyRequests { retry_after_secs } => (
                S::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
                format!("too many attempts; try again in {retry_after_secs} seconds"),
                vec![],
            ),
            ApiError::RouteNotFound => (S::NOT_FOUND, "not-found", "Not found", "no such API route".into(), vec![]),
            ApiError::MethodNotAllowed => (
                S::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                "this route does not accept that method".into(),
                vec![],
            ),
            ApiError::Unavailable(detail) => {
                (S::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable", detail, vec![])
            }
        }
    }
}

fn internal() -> (StatusCode, &'static str, &'static str, String, Vec<ProblemField>) {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "Internal error",
        "something went wrong on our side; quote the X-Request-Id header when you report it".into(),
        vec![],
    )
}

fn describe_fields(errors: &[FieldError]) -> String {
    match errors {
        [one] => format!("{} {}", one.field, one.message),
        many => format!("{} fields are invalid", many.len()),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            ApiError::TooManyRequests { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        let (status, slug, title, detail, errors) = self.parts();
        problem_response(status, slug, title, detail, errors, retry_after)
    }
}

pub fn problem_response(
    status: StatusCode,
    slug: &str,
    title: &str,
    detail: String,
    errors: Vec<ProblemField>,
    retry_after: Option<u64>,
) -> Response {
    let body = Problem {
        kind: format!("urn:berth:problem:{slug}"),
        title: title.into(),
        status: status.as_u16(),
        detail,
        errors,
    };
    let json = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
    let mut res = (status, json).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    if let Some(secs) = retry_after {
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    res
}

pub type ApiResult<T> = Result<T, ApiError>;

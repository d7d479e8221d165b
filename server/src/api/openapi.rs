//! Finishing the OpenAPI document that utoipa collects from the route registrations: what
//! every operation has in common is declared here once instead of on each handler.
//!
//! - **Security.** Every operation declares how it is called: not at all (sign-in, the
//!   set-password link, the signed webhook, probes, this document), by session only (the
//!   second factor: enrolling, confirming and turning it off need the password of a signed-in
//!   person, never an API token), or by bearer token or session (everything else).
//! - **Errors.** Every error answer is `application/problem+json` ([`Problem`]); the shared ones
//!   (400, 401, 404, 413, 415, 422, 429, 500, 503) are `components/responses` that each
//!   operation refers to where they can happen.
//!
//! [`Problem`]: crate::http::error::Problem

use serde_json::{json, Map, Value};

/// Operations anyone may call (they check a password, a one-time token or a signature).
const PUBLIC: &[&str] = &[
    "auth_login",
    "auth_set_password",
    "webhooks_signup_webhook",
    "api_openapi_json",
    "health_healthz",
    "health_readyz",
    "health_metrics",
];

/// Operations that need a signed-in session (and the password), never a bearer token.
pub const SESSION_ONLY: &[&str] =
    &["auth_totp_enroll", "auth_totp_confirm", "auth_totp_disable", "customer_users_reset_totp"];

const PROBLEM_JSON: &str = "application/problem+json";

/// The shared error answers, by status.
const SHARED: &[(&str, &str, &str)] = &[
    ("400", "BadRequest", "Malformed JSON or query string"),
    ("401", "Unauthorized", "Not signed in, or the API token is invalid or revoked"),
    ("403", "Forbidden", "Needs an administrator, or the CSRF token of a cookie-authenticated change is missing"),
    ("404", "NotFound", "No such object (another tenant's objects are not found either)"),
    ("413", "PayloadTooLarge", "The body is larger than 1 MiB"),
    ("415", "UnsupportedMediaType", "The body is not `Content-Type: application/json`"),
    ("422", "ValidationFailed", "Invalid fields, listed in `errors`"),
    ("500", "InternalError", "Something failed on the server; quote the X-Request-Id header"),
    ("503", "Unavailable", "The database, Redis or the session store is unavailable"),
];

/// The document as served: problem+json errors, shared responses and security declared.
pub fn finish(doc: &utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(doc).unwrap_or_else(|_| json!({}));
    add_components(&mut doc);
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else { continue };
            for (_, op) in item.iter_mut() {
                if let Some(op) = op.as_object_mut() {
                    finish_operation(path, op);
                }
            }
        }
    }
    doc
}

fn add_components(doc: &mut Value) {
    let Some(root) = doc.as_object_mut() else { return };
    let components = root.entry("components").or_insert_with(|| json!({}));
    let Some(components) = components.as_object_mut() else { return };
    let responses = components.entry("responses").or_insert_with(|| json!({}));
    if let Some(responses) = responses.as_object_mut() {
        for (_, name, description) in SHARED {
            responses.insert(
                (*name).to_owned(),
                json!({
                    "description": description,
                    "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
                }),
            );
        }
    }
    if let Some(session) = components.get_mut("securitySchemes").and_then(|s| s.get_mut("session")) {
        session["description"] = json!(
            "The session cookie set by POST /api/v1/auth/login. Changes made with it must carry the \
             session's CSRF token (from the login answer or GET /api/v1/auth/me) in X-CSRF-Token."
        );
    }
}

fn shared_ref(status: &str) -> Value {
    let name = SHARED.iter().find(|(s, _, _)| *s == status).map(|(_, n, _)| *n).unwrap_or("InternalError");
    json!({"$ref": format!("#/components/responses/{name}")})
}

fn finish_operation(path: &str, op: &mut Map<String, Value>) {
    let id = op.get("operationId").and_then(Value::as_str).unwrap_or_default().to_owned();
    let public = PUBLIC.contains(&id.as_str());
    let in_api = path.starts_with("/api/v1/") && id != "api_openapi_json";
    let security = if public {
        json!([])
    } else if SESSION_ONLY.contains(&id.as_str()) {
        json!([{"session": []}])
    } else {
        json!([{"bearer": []}, {"session": []}])
    };
    op.insert("security".into(), security);

    let has_body = op.contains_key("requestBody");
    let has_query =
        op.get("parameters").and_then(Value::as_array).is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
    let has_path_params = path.contains('{');
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else { return };
    // Problem bodies the handlers declared are problem+json on the wire.
    for (_, response) in responses.iter_mut() {
        if let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) {
            let is_problem =
                content.get("application/json").is_some_and(|c| c["schema"]["$ref"] == "#/components/schemas/Problem");
            if is_problem {
                if let Some(c) = content.remove("application/json") {
                    content.insert(PROBLEM_JSON.into(), c);
                }
            }
        }
    }
    if !in_api {
        return;
    }
    let mut wanted = vec!["500", "503"];
    if has_body {
        wanted.extend(["400", "413", "415", "422"]);
    }
    if has_query {
        wanted.push("400");
    }
    if !public {
        wanted.extend(["401", "403"]);
    }
    if has_path_params {
        wanted.push("404");
    }
    for status in wanted {
        responses.entry(status.to_owned()).or_insert_with(|| shared_ref(status));
    }
}

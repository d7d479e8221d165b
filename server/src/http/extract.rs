//! Extractors whose rejections are our own problem+json errors, so malformed input can never
//! surface as axum's plain-text rejections (or as a 500).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::{header, request::Parts, StatusCode};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use berth_core::FieldError;

/// A JSON body: 415 unless `Content-Type: application/json`, 400 for malformed JSON, 413 when
/// too large, 422 with the offending field's path when the JSON does not fit the type
/// (including unknown fields, which request types refuse with `deny_unknown_fields`).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok())) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let ApiBytes(bytes) = ApiBytes::from_request(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// The raw body (for handlers that must see the exact bytes, such as a signed webhook): 413 when
/// too large, 408 when it did not arrive within BERTH_HTTP_BODY_TIMEOUT_SECONDS, 400 when the
/// connection failed; all problem+json, never axum's plain-text rejections.
pub struct ApiBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state).await.map(ApiBytes).map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else if super::serve::is_body_timeout(&rejection) {
                ApiError::RequestTimeout
            } else {
                ApiError::BadRequest("could not read the request body".into())
            }
        })
    }
}

pub(crate) fn is_json(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return false };
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses a JSON body into `T`: 400 for malformed JSON (checked first, whole body) and for an
/// object that repeats a key, 422 for a NUL character anywhere (no field of ours accepts one,
/// and PostgreSQL cannot store it) or a shape that does not fit `T`, naming the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let StrictValue(value) =
        serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?;
    if let Some(path) = find_nul(&value, String::new()) {
        let field = if path.is_empty() { "body".to_owned() } else { path };
        return Err(ApiError::Core(berth_core::Error::Validation(vec![FieldError::new(
            field,
            "must not contain NUL characters",
        )])));
    }
    serde_path_to_error::deserialize::<_, T>(value).map_err(|err| {
        let path = err.path().to_string();
        shape_error(&path, &err.into_inner())
    })
}

/// A JSON value whose objects never repeat a key. serde_json keeps the last of two equal keys
/// without a word, so `{"plan":"starter","plan":"business"}` would mean whatever the last reader
/// of the bytes decides (a signature checker, a proxy and Berth could each see another value):
/// such a body is refused instead.
struct StrictValue(serde_json::Value);

impl<'de> serde::Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, serde_json::Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(serde_json::Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!("duplicate key `{key}`")));
            }
            let StrictValue(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(serde_json::Value::Object(object))
    }
}

/// The path of the first string (or object key) holding a NUL character.
fn find_nul(value: &serde_json::Value, path: String) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(s) => s.contains('\0').then_some(path),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| find_nul(v, format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let here = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
            if k.contains('\0') {
                Some(here)
            } else {
                find_nul(v, here)
            }
        }),
        _ => None,
    }
}

/// Turns serde's "missing field `x`" / "unknown field `x`" into a per-field error on `x`.
fn shape_error(path: &str, err: &serde_json::Error) -> ApiError {
    let text = err.to_string();
    let message = text.split(" at line ").next().unwrap_or(&text).to_owned();
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix).and_then(|rest| rest.split('`').next()).map(str::to_owned));
    // serde_path_to_error's path ends at the unknown field itself, but at the parent object
    // for a missing one.
    let field = match (named, path) {
        (Some(name), "." | "") => name,
        (Some(name), p) if p == name || p.ends_with(&format!(".{name}")) => p.to_owned(),
        (Some(name), parent) => format!("{parent}.{name}"),
        (None, "." | "") => "body".to_owned(),
        (None, p) => p.to_owned(),
    };
    let message = if message.starts_with("unknown field") {
        "is not a known field".to_owned()
    } else if message.starts_with("missing field") {
        "is required".to_owned()
    } else {
        message
    };
    ApiError::Core(berth_core::Error::Validation(vec![FieldError::new(field, message)]))
}

/// Path parameters; a malformed id is a 404 (it cannot name anything), not a 500.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|_| ApiError::Core(berth_core::Error::NotFound("object")))
    }
}

/// Query strings; a bad filter value is a 400 naming the problem.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if parts.uri.query().is_some_and(|q| q.to_ascii_lowercase().contains("%00")) {
            return Err(ApiError::BadRequest("invalid query string: NUL characters are not allowed".into()));
        }
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| ApiError::BadRequest(format!("invalid query string: {}", e.body_text())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        email: String,
        nested: Option<Inner>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        n: u8,
    }

    fn field_of(err: ApiError) -> String {
        match err {
            ApiError::Core(berth_core::Error::Validation(f)) => f[0].field.clone(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn classifies_json_failures() {
        assert!(matches!(parse_json::<Body>(b"{\"email\": "), Err(ApiError::BadRequest(_))));
        assert!(matches!(parse_json::<Body>(b"{\"email\":\"a\"} {}"), Err(ApiError::BadRequest(_))));
        assert_eq!(field_of(parse_json::<Body>(b"{}").unwrap_err()), "email");
        assert_eq!(field_of(parse_json::<Body>(b"{\"email\":\"a\",\"id\":1}").unwrap_err()), "id");
        assert_eq!(field_of(parse_json::<Body>(b"{\"email\":\"a\",\"nested\":{\"n\":300}}").unwrap_err()), "nested.n");
        assert_eq!(field_of(parse_json::<Body>(b"{\"email\":5}").unwrap_err()), "email");
        assert_eq!(field_of(parse_json::<Body>(b"{\"email\":\"a\\u0000\"}").unwrap_err()), "email");
        assert_eq!(field_of(parse_json::<Body>(b"{\"nested\":{\"k\\u0000\":1}}").unwrap_err()), "nested.k\0");
        assert!(parse_json::<Body>(b"{\"email\":\"a\"}").is_ok());
        // A repeated key is refused at any depth, not silently resolved to the last value.
        assert!(matches!(parse_json::<Body>(b"{\"email\":\"a\",\"email\":\"b\"}"), Err(ApiError::BadRequest(_))));
        let nested = b"{\"email\":\"a\",\"nested\":[{\"n\":1,\"n\":2}]}";
        assert!(
            matches!(parse_json::<serde_json::Value>(nested), Err(ApiError::BadRequest(m)) if m.contains("duplicate key `n`"))
        );
        // Numbers, nulls and nesting survive the strict reading unchanged.
        let value: serde_json::Value = parse_json(b"{\"a\":[1,-2,3.5,null,true,\"x\"],\"b\":{}}").expect("parses");
        assert_eq!(value, serde_json::json!({"a": [1, -2, 3.5, null, true, "x"], "b": {}}));
    }

    #[test]
    fn json_content_types() {
        assert!(is_json(Some("application/json")));
        assert!(is_json(Some("Application/JSON; charset=utf-8")));
        assert!(is_json(Some("application/merge-patch+json")));
        assert!(!is_json(Some("text/plain")));
        assert!(!is_json(None));
    }
}

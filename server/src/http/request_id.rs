//! Request ids: an incoming X-Request-Id is kept when it is short and plain (so a proxy's id
//! follows the request), replaced otherwise, generated when absent, echoed on the response and
//! put on every log line of the request.

use axum::http::HeaderValue;

pub const HEADER: &str = "x-request-id";

fn acceptable(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// A new random (v4) UUID as a header value. The bytes come from the thread's CSPRNG (seeded
/// from the OS once) rather than `Uuid::new_v4`, which asks the kernel each time: a system call
/// per request for an id that only has to be unique, not secret.
fn generate() -> HeaderValue {
    let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    let mut buf = uuid::Uuid::encode_buffer();
    let text = id.hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("00000000-0000-4000-8000-000000000000"))
}

/// Gives the request an acceptable id (keeps the incoming one when acceptable). A plain
/// function for `ServiceBuilder::map_request`, with [`propagate`] echoing the id on the answer:
/// neither boxes the request's future nor clones the stack below it, as `middleware::from_fn`
/// does on every request.
pub fn assign<B>(mut req: axum::http::Request<B>) -> axum::http::Request<B> {
    if !req.headers().get(HEADER).is_some_and(acceptable) {
        req.headers_mut().insert(HEADER, generate());
    }
    req
}

/// Copies the request's id (set by [`assign`]) onto its answer.
pub fn propagate() -> tower_http::request_id::PropagateRequestIdLayer {
    tower_http::request_id::PropagateRequestIdLayer::new(axum::http::HeaderName::from_static(HEADER))
}

/// The request id of a request that went through [`assign`].
pub fn of(headers: &axum::http::HeaderMap) -> Option<String> {
    as_str(headers).map(str::to_owned)
}

/// The same, borrowed (for the trace span, which formats it once itself).
pub fn as_str(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers.get(HEADER).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn generated_ids_are_v4_uuids_and_acceptable() {
        let a = super::generate();
        let b = super::generate();
        assert_ne!(a, b);
        assert!(super::acceptable(&a));
        let parsed = uuid::Uuid::parse_str(a.to_str().expect("ascii")).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 4);
    }
}

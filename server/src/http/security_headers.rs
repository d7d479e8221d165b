//! Security headers on every answer, set in one place.
//!
//! The console is server-rendered HTML with no JavaScript of its own, one stylesheet
//! (`/assets/berth.css`) and inline SVG QR codes, so its policy can be strict:
//!
//! - `Content-Security-Policy`: nothing by default; styles and images from Berth itself only;
//!   forms post to Berth only; no `<base>`; and `frame-ancestors 'none'`, so no other site can
//!   frame a page (a delete confirmation, say) and trick a click;
//! - `X-Frame-Options: DENY`, the same for browsers that predate `frame-ancestors`;
//! - `X-Content-Type-Options: nosniff`, so an answer is only ever read as its declared type;
//! - `Referrer-Policy: same-origin`: a set-password link's token never leaves in a `Referer`
//!   (same-origin form posts keep their `Origin`, which the console's CSRF check reads);
//! - `Cache-Control: no-store` on every page and API answer that does not set its own: pages
//!   are per user, and some show a secret once (a new API token, a set-password link, a TOTP
//!   set-up key) that must not stay in a browser or proxy cache. The stylesheet keeps its own.
//!
//! A handler that sets one of these itself keeps its value.

use axum::http::{header, HeaderValue, Response};

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Sets the headers on an answer. A plain function for `ServiceBuilder::map_response`, which
/// neither boxes the request's future nor clones the stack below it on every request, as
/// `middleware::from_fn` does.
pub fn apply<B>(mut res: Response<B>) -> Response<B> {
    let headers = res.headers_mut();
    let defaults = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in defaults {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    res
}

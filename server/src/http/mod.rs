//! The HTTP plumbing shared by every route: errors, extractors, request ids, client address,
//! metrics, security headers, the listener.

pub mod client_ip;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod request_id;
pub mod security_headers;
pub mod serve;
pub mod sessions;

//! The HTTP plumbing of `server/src/http/`: the listener's limits and the security headers.

mod security_headers;
mod serve;

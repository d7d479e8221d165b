//! The HTTP plumbing of `server/src/http/`: the listener's limits.

mod serve;

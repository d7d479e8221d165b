//! The `berth` server: configuration in force, HTTP API, authentication, UI mounting and
//! start-up. The binary in `main.rs` is a thin CLI over this library, which the end-to-end
//! tests also drive in process.

pub mod api;
pub mod app;
pub mod auth;
pub mod http;
pub mod startup;
pub mod state;

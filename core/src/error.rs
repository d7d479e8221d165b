//! Error policy for library code.
//!
//! Domain and data-access functions return [`Error`]: a small thiserror enum whose variants are
//! the outcomes a caller must tell apart (not found, forbidden, conflict, invalid input). The
//! HTTP layer maps each variant to one RFC 7807 problem type; the CLI prints the `Display` form
//! as one line. Database failures keep their source for the log and are never shown to users.

use sea_orm::DbErr;
use serde::Serialize;

/// One invalid input field: `field` is the JSON path as the client sent it (`domains[1]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object does not exist *for this caller*: another tenant's object is reported the
    /// same way as a missing one, so the answer never hints that it exists.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("this action needs an administrator")]
    Forbidden,
    #[error("authentication required")]
    Unauthorized,
    #[error("{0}")]
    Conflict(String),
    #[error("invalid input: {}", summarize(.0))]
    Validation(Vec<FieldError>),
    #[error("database unavailable")]
    Unavailable(#[source] DbErr),
    #[error("database error")]
    Db(#[source] DbErr),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

fn summarize(errors: &[FieldError]) -> String {
    errors.iter().map(|e| format!("{} {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
}

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }
}

impl From<DbErr> for Error {
    fn from(err: DbErr) -> Self {
        match &err {
            // Pool exhaustion and a lost connection are "try again later", not bugs.
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => Error::Unavailable(err),
            _ => Error::Db(err),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Collects field errors so a request reports every bad field at once, not the first only.
#[derive(Debug, Default)]
pub struct Fields(Vec<FieldError>);

impl Fields {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the error of a validation result and returns its value when it passed.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(message) => {
                self.0.push(FieldError::new(field, message));
                None
            }
        }
    }

    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    pub fn finish(self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(self.0))
        }
    }
}

/// Maps a unique-constraint violation to a 409 with a human message; other errors pass through.
pub fn conflict_on_unique(err: DbErr, message: &str) -> Error {
    match err.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => Error::Conflict(message.to_owned()),
        _ => err.into(),
    }
}

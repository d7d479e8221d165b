//! How failures become pages.
//!
//! Another customer's object, an admin page opened by a customer, and a missing object all
//! answer the same 404 page, so an answer never tells that something exists. Internal details
//! are logged here, once, and never shown.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use leptos::prelude::*;

use crate::layout::{plain_page, Area};

#[derive(Debug)]
pub enum PageError {
    NotFound,
    /// Not signed in (or the session ended): go to the area's sign-in page.
    SignIn(Area),
    /// Signed in, but this page lives in the other area.
    Elsewhere(Area),
    /// The form's CSRF token is missing or stale.
    CsrfFailed,
    BadRequest(String),
    Conflict(String),
    Unavailable,
}

pub type PageResult = Result<Response, PageError>;

impl From<berth_core::Error> for PageError {
    fn from(err: berth_core::Error) -> Self {
        use berth_core::Error as E;
        match err {
            // The UI never says "forbidden": a customer learns nothing about admin pages.
            E::NotFound(_) | E::Forbidden => PageError::NotFound,
            E::Unauthorized => PageError::BadRequest("sign in again".into()),
            E::Conflict(message) => PageError::Conflict(message),
            E::Validation(fields) => PageError::BadRequest(
                fields.iter().map(|f| format!("{} {}", f.field, f.message)).collect::<Vec<_>>().join("; "),
            ),
            E::Unavailable(source) => {
                tracing::warn!(error = %source, "Database unavailable while rendering a page");
                PageError::Unavailable
            }
            E::Db(source) => {
                tracing::error!(error = %source, "Database error while rendering a page");
                PageError::Unavailable
            }
            E::Internal(source) => {
                tracing::error!(error = format!("{source:#}"), "Internal error while rendering a page");
                PageError::Unavailable
            }
        }
    }
}

/// What a page says when a site operation did not happen. The store's errors that are about the
/// request itself (not found, another tenant's site) stay page errors; the site's state and the
/// container engine become a sentence for the flash message. Engine details are logged here,
/// once, and kept off the page.
pub fn operation_failed(err: berth_ops::Error) -> Result<String, PageError> {
    use berth_ops::Error as E;
    Ok(match err {
        // Being deleted, for instance: said on the site's page.
        E::Store(berth_core::Error::Conflict(message)) => format!("{message}."),
        E::Store(other) => return Err(other.into()),
        E::NoRuntime => "No container runtime is configured, so there is no container to act on.".into(),
        E::NoBackups => "Backups are not set up in this process.".into(),
        E::NoContainer => "The site has no container yet.".into(),
        E::NotRunning(status) => format!("The site is {status}; only a running site can be restarted."),
        E::EngineTimeout => {
            tracing::warn!("The container engine did not answer a site page in time");
            "The container engine did not answer in time; try again shortly.".into()
        }
        E::EngineUnavailable(detail) => {
            tracing::error!(error = %detail, "Docker unreachable from a site page");
            "The container engine is unreachable; try again shortly.".into()
        }
        E::Engine(detail) => {
            tracing::error!(error = %detail, "Container engine call from a site page failed");
            "The container engine refused the request; the error is in Berth's log.".into()
        }
        E::Fill(detail) => {
            tracing::error!(error = %detail, "Filling a data volume from a site page failed");
            "The new data could not be copied; the site was not touched, and the error is in Berth's log.".into()
        }
        e @ (E::RemoteEngine | E::SwitchFailed(_) | E::VolumeInUse(_) | E::Restore(_)) => format!("{e}."),
    })
}

/// A failed site operation as a page error, for forms that show no flash message: what
/// [`operation_failed`] would say becomes a conflict page.
pub fn page_error(err: berth_ops::Error) -> PageError {
    match operation_failed(err) {
        Ok(message) => PageError::Conflict(message),
        Err(page) => page,
    }
}

impl From<tower_sessions::session::Error> for PageError {
    fn from(err: tower_sessions::session::Error) -> Self {
        tracing::error!(error = %err, "Session store failed");
        PageError::Unavailable
    }
}

fn message_page(status: StatusCode, title: &str, message: String, home: (&'static str, &'static str)) -> Response {
    let (label, href) = home;
    (
        status,
        plain_page(
            title,
            view! {
                <p>{message}</p>
                <p><a href=href>{label}</a></p>
            },
        ),
    )
        .into_response()
}

pub fn not_found() -> Response {
    message_page(
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is nothing here. Check the address, or go back to where you came from.".into(),
        ("Go to the start page", "/"),
    )
}

/// The router's fallback.
pub async fn not_found_page() -> Response {
    not_found()
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::NotFound => not_found(),
            PageError::SignIn(area) => Redirect::to(area.login()).into_response(),
            PageError::Elsewhere(area) => Redirect::to(area.home()).into_response(),
            PageError::CsrfFailed => message_page(
                StatusCode::FORBIDDEN,
                "This form has expired",
                "The form was opened in an earlier session. Go back, reload the page and send it again.".into(),
                ("Go to the start page", "/"),
            ),
            PageError::BadRequest(message) => message_page(
                StatusCode::BAD_REQUEST,
                "That did not work",
                format!("The request was not valid: {message}."),
                ("Go to the start page", "/"),
            ),
            PageError::Conflict(message) => {
                message_page(StatusCode::CONFLICT, "That did not work", message, ("Go to the start page", "/"))
            }
            PageError::Unavailable => message_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Something went wrong",
                "Berth could not finish this request. Try again in a moment.".into(),
                ("Go to the start page", "/"),
            ),
        }
    }
}

//! The one error of site operations. Policy: the store's errors pass through unchanged (not
//! found, validation, conflict, ...); container-engine failures become a few variants whose
//! `Display` is a sentence fit for a person. The server maps this type to problem+json in one
//! place (`berth_server::http::error`), the web crate to a page message in one place
//! (`berth_web::error`); both log the engine's details there, once.

use berth_runtime::RuntimeError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] berth_core::Error),
    #[error("no container runtime is configured (BERTH_DOCKER_HOST is off)")]
    NoRuntime,
    #[error("backups are not set up in this process")]
    NoBackups,
    #[error("the site has no container yet")]
    NoContainer,
    /// The operation needs a running site; the status it has instead.
    #[error("the site is {0}; only a running site can be restarted")]
    NotRunning(String),
    #[error("the container engine is unreachable; try again shortly")]
    EngineUnavailable(String),
    #[error("the container engine did not answer in time; try again shortly")]
    EngineTimeout,
    /// Anything else the engine refused; the detail is for the log, not for the user.
    #[error("the container engine refused the request")]
    Engine(String),
    /// Filling a volume from a directory needs the engine's volumes on this machine.
    #[error("filling a data volume from a directory is not supported on a remote engine (BERTH_DOCKER_HOST is not a unix:// socket)")]
    RemoteEngine,
    /// Copying into the fresh volume failed; the site was not touched.
    #[error("cannot fill the fresh data volume: {0}")]
    Fill(String),
    /// The replacement container on the fresh volume did not become healthy: the site went
    /// back to its previous volume, whose container kept serving.
    #[error("the site stays on its previous data: the container on the new data did not become healthy ({0})")]
    SwitchFailed(String),
    /// A restore refused its snapshot (damaged, foreign, not this site's) or could not read it;
    /// the site was not touched.
    #[error("{0}")]
    Restore(String),
    /// A volume operation that would leave the site without its data.
    #[error("{0}")]
    VolumeInUse(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<RuntimeError> for Error {
    fn from(e: RuntimeError) -> Self {
        match e {
            RuntimeError::NotFound(_) => Self::NoContainer,
            RuntimeError::Unavailable(detail) => Self::EngineUnavailable(detail),
            other => Self::Engine(other.to_string()),
        }
    }
}

impl From<sea_orm::DbErr> for Error {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Store(e.into())
    }
}

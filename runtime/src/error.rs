//! Errors of the runtime edge. The reconciler records their `Display` form on the site (what
//! the API and UI show), so each message is a sentence a hosting admin can act on.

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("image {0} is not present on this host (build it with `berth images build`, or pull it)")]
    ImageMissing(String),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("the Docker engine is unreachable: {0}")]
    Unavailable(String),
    #[error("Docker refused: {0}")]
    Docker(String),
    #[error("ingress: {0}")]
    Ingress(String),
    #[error("{0}")]
    Io(String),
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

impl From<bollard::errors::Error> for RuntimeError {
    fn from(err: bollard::errors::Error) -> Self {
        use bollard::errors::Error as B;
        match err {
            B::DockerResponseServerError { status_code: 404, message } => Self::NotFound(message),
            B::DockerResponseServerError { status_code: 409, message } => Self::Conflict(message),
            B::DockerResponseServerError { message, .. } => Self::Docker(message),
            other @ (B::SocketNotFoundError(_)
            | B::HyperResponseError { .. }
            | B::HyperLegacyError { .. }
            | B::RequestTimeoutError
            | B::IOError { .. }) => Self::Unavailable(other.to_string()),
            other => Self::Docker(other.to_string()),
        }
    }
}

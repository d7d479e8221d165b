//! The backup engine's one error type. rustic's own errors are long multi-line reports; they are
//! condensed to one line here (`RusticError::display_log`), which is what a backup row, a log
//! line or a problem+json `detail` can carry.

pub type Result<T, E = BackupError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// No snapshot with this id (or id prefix) in this customer's repository.
    #[error("snapshot {0} is not in this repository")]
    SnapshotNotFound(String),
    /// The snapshot's data did not read back intact (a pack that does not decrypt, a blob whose
    /// hash does not match, a missing pack): it must not be restored.
    #[error("snapshot {snapshot} is damaged and cannot be used: {detail}")]
    Corrupt { snapshot: String, detail: String },
    /// The repository exists but this customer's key does not open it.
    #[error("the repository does not open with this customer's key")]
    WrongKey,
    /// The backup source cannot be read (a volume that is gone, an unreadable directory).
    #[error("cannot read the backup source: {0}")]
    Source(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Anything else the engine reported.
    #[error("backup engine: {0}")]
    Engine(String),
    /// The blocking task running the engine panicked or was cancelled.
    #[error("the backup task stopped unexpectedly: {0}")]
    Task(String),
}

impl BackupError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io { context: context.into(), source }
    }

    /// True when the repository data itself is damaged.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, Self::Corrupt { .. })
    }
}

impl From<Box<rustic_core::RusticError>> for BackupError {
    fn from(err: Box<rustic_core::RusticError>) -> Self {
        if err.is_incorrect_password() {
            return Self::WrongKey;
        }
        Self::Engine(one_line(&err))
    }
}

/// rustic's report as one line, without its "Error: " prefix and without the backtrace it
/// appends when `RUST_BACKTRACE` is set (hundreds of frames: no use in a backup row or a
/// problem+json `detail`, and it would push the rest of a message out of a truncated field).
pub(crate) fn one_line(err: &rustic_core::RusticError) -> String {
    let text = err.display_log();
    let text = text.strip_prefix("Error: ").unwrap_or(&text);
    let text = text.split("Backtrace:").next().unwrap_or(text);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

//! The server's one error type. Client mistakes carry a short message that is safe to show
//! (never an ID number, phone or name, never the request body); everything else is internal,
//! logged by the HTTP layer and answered with a generic 500.

use std::path::PathBuf;

use agent_core::doc::DocError;
use agent_core::sync::wire::WireError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request is malformed (400); the message says what, without quoting it.
    #[error("{0}")]
    BadRequest(String),
    /// A sync request older than the device's last one (409): the device must renumber.
    #[error("stale request counter")]
    StaleCounter,
    /// The staff API needs a signed-in account: `Authorization: Bearer` with a token from
    /// `POST /api/login` (401).
    #[error("请先登录：staff identity required (Authorization: Bearer, from POST /api/login)")]
    Unauthorized,
    /// A sync request whose signature does not verify against the key its device (or
    /// township server) enrolled with (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// The device was revoked (410): it is to stop syncing and wipe its store.
    #[error("{0}")]
    Revoked(String),
    /// The requester may not do this here (403): out of scope, not enrolled, wrong server.
    #[error("{0}")]
    Forbidden(String),
    /// Too many failed sign-ins from one address (see `throttle`).
    #[error("登录失败次数过多，请15分钟后再试")]
    Throttled,
    #[error("没有编号为{0}的办件")]
    NotFound(String),
    /// An event the role table or the lifecycle forbids (422), in Chinese for staff.
    #[error("无法记录：{0}")]
    Refused(String),
    #[error("config {path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("{0} already holds a Daiban server; choose another directory (nothing was changed)")]
    AlreadyInitialised(PathBuf),
    #[error("{0} is not a sync-server database (or is damaged); nothing was changed")]
    NotAServerDatabase(PathBuf),
    #[error("this database was made by a newer sync-server (schema {0}); please upgrade")]
    NewerDatabase(i64),
    #[error("file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("ticket document: {0}")]
    Doc(#[from] DocError),
    /// Boxed: agent-core's error is large and rarely on the hot path.
    #[error(transparent)]
    Core(Box<agent_core::Error>),
    #[error("sync message: {0}")]
    Wire(#[from] WireError),
    /// Something that should not happen (a poisoned lock, a failed task).
    #[error("internal: {0}")]
    Internal(String),
}

impl From<agent_core::Error> for Error {
    fn from(e: agent_core::Error) -> Self {
        Error::Core(Box::new(e))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

//! The crate's one error type. Messages never carry ID numbers, phones or names.

use std::path::PathBuf;

use crate::crypto::CryptoError;
use crate::doc::DocError;
use crate::domain::calendar::CalendarError;
use crate::domain::catalog::CatalogError;
use crate::domain::number::NumberError;
use crate::domain::ticket::FormError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The registration form or an event draft is not acceptable; the message says what to fix.
    #[error(transparent)]
    Form(#[from] FormError),
    #[error(transparent)]
    Number(#[from] NumberError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Calendar(#[from] CalendarError),
    #[error("无法记录：{0}")]
    Event(String),
    #[error("没有编号为{0}的办件")]
    NotFound(String),
    #[error("密钥不正确，无法打开本机数据（数据未作任何改动）")]
    WrongKey,
    #[error("本机数据已加密，打开时必须提供密钥")]
    KeyRequired,
    #[error("store key: {0}")]
    Key(#[from] CryptoError),
    /// The database file was damaged; it was moved aside (never deleted) so it can be
    /// recovered, and the next open starts a fresh store.
    #[error("本机数据库已损坏，已移至 {moved_to}（未删除），请联系乡镇中心恢复数据")]
    CorruptDatabase { moved_to: PathBuf },
    /// A ticket document failed to open; it was moved to quarantine, the rest is intact.
    #[error("办件{number}的数据已损坏，已隔离保存，其他办件不受影响")]
    CorruptDocument { number: String },
    #[error("ticket document: {0}")]
    Doc(#[from] DocError),
    #[error("database: {0}")]
    Sqlite(rusqlite::Error),
    #[error("file: {0}")]
    Io(#[from] std::io::Error),
    #[error("stored data: {0}")]
    Json(#[from] serde_json::Error),
    #[error("这个数据库由更新版本的软件创建（版本{0}），请升级软件")]
    NewerDatabase(i64),
    #[error("操作已取消")]
    Interrupted,
    /// The link or the server failed; nothing local was lost, sync again later.
    #[error("同步失败：{0}")]
    Sync(String),
    /// This device has not enrolled with a township yet: nothing was sent (a server would
    /// refuse it).
    #[error("本设备尚未注册，不能同步：请先用乡镇中心签发的注册码注册本设备")]
    NotEnrolled,
    /// The server refused the request: this device was revoked (lost, replaced). A store
    /// synced with [`crate::sync::client::sync_now`] is then wiped; `unsynced` lists (masked)
    /// the tickets whose latest changes its township never received, so the agent can check
    /// and redo them there.
    #[error(
        "本设备已停用（{reason}），本机办件数据已清除，请联系乡镇中心{}",
        unsynced_text(unsynced)
    )]
    Revoked {
        reason: String,
        unsynced: Vec<crate::store::TicketSummary>,
    },
}

fn unsynced_text(unsynced: &[crate::store::TicketSummary]) -> String {
    if unsynced.is_empty() {
        return String::new();
    }
    let list: Vec<String> = unsynced
        .iter()
        .map(|t| format!("{}（{}，{}）", t.number, t.item_name, t.applicant))
        .collect();
    format!(
        "；以下{}件办件（或其最近的办理记录）未送达乡镇，请到乡镇中心核对补办：{}",
        unsynced.len(),
        list.join("、")
    )
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<rusqlite::Error> for Error {
    /// SQLite's interrupt (from [`crate::store::Store::interrupt_handle`]) is the host's cancel.
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::OperationInterrupted) => Error::Interrupted,
            _ => Error::Sqlite(e),
        }
    }
}

//! Status codes, and the one place where an agent-core error becomes a code and a message.

use agent_core::crypto::CryptoError;
use agent_core::Error;

use crate::boundary::Failure;

/// What a call did. `DAIBAN_OK` (0) is success; every other value is a failure whose
/// detailed message `daiban_last_error_message` returns on the same thread.
///
/// Numbers are fixed forever: a code is never renumbered or reused for another meaning, and
/// new codes get new numbers. Ranges: 1–99 the call itself was wrong (a bug in the host app;
/// nothing was done); 100–199 the input was understood and refused (tell the agent the
/// message); 200–299 the store; 300–399 sync; 900–999 the library failed.
///
/// Hosts receive this as a `uint32_t` and must treat numbers they do not know as failures.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum daiban_status {
    /// Success; out-parameters were written.
    DAIBAN_OK = 0,
    /// A pointer argument that must not be NULL was NULL.
    DAIBAN_NULL_ARGUMENT = 1,
    /// A text argument is not valid UTF-8.
    DAIBAN_INVALID_UTF8 = 2,
    /// A JSON argument is not JSON, or not the shape the call takes (the message gives the
    /// line and column, never the values).
    DAIBAN_INVALID_JSON = 3,
    /// The store handle is not open: already freed, or not made by `daiban_store_open`.
    DAIBAN_INVALID_HANDLE = 4,
    /// The string passed to `daiban_string_free` was not returned by this library, or was
    /// already freed.
    DAIBAN_INVALID_STRING = 5,
    /// The key is not `DAIBAN_KEY_LEN` (32) bytes long.
    DAIBAN_KEY_LENGTH = 6,
    /// The registration form was refused; the message says what to fix.
    DAIBAN_FORM = 100,
    /// The ticket number is not a valid number (length, digits, check digit).
    DAIBAN_NUMBER = 101,
    /// The catalog was refused (duplicate code, missing promise, wrong shape).
    DAIBAN_CATALOG = 102,
    /// The calendar CSV was refused; the message gives the line.
    DAIBAN_CALENDAR = 103,
    /// The event may not be recorded now, or not by an agent; the message says why.
    DAIBAN_EVENT = 104,
    /// No ticket with that number in this store.
    DAIBAN_NOT_FOUND = 105,
    /// The key does not open this store; nothing was changed.
    DAIBAN_WRONG_KEY = 200,
    /// The store is sealed but no key was given (not reachable through this ABI, which
    /// always passes a key; kept so the number stays reserved).
    DAIBAN_KEY_REQUIRED = 201,
    /// The database file was damaged and moved aside (never deleted); the message names
    /// the new file. Opening again starts an empty store; call the township to recover.
    DAIBAN_CORRUPT_DATABASE = 202,
    /// One ticket's data was damaged and quarantined; other tickets are intact.
    DAIBAN_CORRUPT_DOCUMENT = 203,
    /// The database was written by a newer version of the software; update the app.
    DAIBAN_NEWER_DATABASE = 204,
    /// The call was cancelled by `daiban_store_cancel`; nothing was changed.
    DAIBAN_INTERRUPTED = 205,
    /// SQLite failed (disk full, file locked by another process, ...).
    DAIBAN_DATABASE = 206,
    /// A file operation failed.
    DAIBAN_IO = 207,
    /// Stored data could not be read back (damaged or from an incompatible version).
    DAIBAN_STORED_DATA = 208,
    /// Sync with the township server failed (no link, or the server refused the request);
    /// nothing local was lost: sync again later. The message says what happened.
    DAIBAN_SYNC = 300,
    /// The township revoked this device (lost, replaced): its store was wiped and refuses
    /// all further work (register, append, enroll, sync). The message lists, masked, the
    /// tickets the township never received, for the agent to redo there; a sync also writes
    /// them to its `report_json_out` (see `daiban_store_sync_tls`). Take the tablet out of
    /// service and call the township.
    DAIBAN_REVOKED = 301,
    /// This device is not enrolled with its township yet, so it may not sync: enroll it with
    /// a code the township admin issued (`daiban_store_enroll`). Nothing was sent.
    DAIBAN_NOT_ENROLLED = 302,
    /// The library panicked; the panic was caught and did not cross into the host.
    DAIBAN_PANIC = 900,
    /// An earlier call on this handle panicked while holding it; free the handle and open
    /// the store again.
    DAIBAN_POISONED = 901,
    /// An error this version of the ABI has no code for.
    DAIBAN_INTERNAL = 902,
}

use daiban_status::*;

/// Every code, for the message table and its tests.
const ALL: [daiban_status; 28] = [
    DAIBAN_OK,
    DAIBAN_NULL_ARGUMENT,
    DAIBAN_INVALID_UTF8,
    DAIBAN_INVALID_JSON,
    DAIBAN_INVALID_HANDLE,
    DAIBAN_INVALID_STRING,
    DAIBAN_KEY_LENGTH,
    DAIBAN_FORM,
    DAIBAN_NUMBER,
    DAIBAN_CATALOG,
    DAIBAN_CALENDAR,
    DAIBAN_EVENT,
    DAIBAN_NOT_FOUND,
    DAIBAN_WRONG_KEY,
    DAIBAN_KEY_REQUIRED,
    DAIBAN_CORRUPT_DATABASE,
    DAIBAN_CORRUPT_DOCUMENT,
    DAIBAN_NEWER_DATABASE,
    DAIBAN_INTERRUPTED,
    DAIBAN_DATABASE,
    DAIBAN_IO,
    DAIBAN_STORED_DATA,
    DAIBAN_SYNC,
    DAIBAN_REVOKED,
    DAIBAN_NOT_ENROLLED,
    DAIBAN_PANIC,
    DAIBAN_POISONED,
    DAIBAN_INTERNAL,
];

impl daiban_status {
    /// The code for a number a host passed in (`None` for numbers this version does not know).
    pub fn from_u32(n: u32) -> Option<daiban_status> {
        ALL.into_iter().find(|s| *s as u32 == n)
    }

    /// The C name of the code, as in the header.
    pub fn name(self) -> &'static str {
        match self {
            DAIBAN_OK => "DAIBAN_OK",
            DAIBAN_NULL_ARGUMENT => "DAIBAN_NULL_ARGUMENT",
            DAIBAN_INVALID_UTF8 => "DAIBAN_INVALID_UTF8",
            DAIBAN_INVALID_JSON => "DAIBAN_INVALID_JSON",
            DAIBAN_INVALID_HANDLE => "DAIBAN_INVALID_HANDLE",
            DAIBAN_INVALID_STRING => "DAIBAN_INVALID_STRING",
            DAIBAN_KEY_LENGTH => "DAIBAN_KEY_LENGTH",
            DAIBAN_FORM => "DAIBAN_FORM",
            DAIBAN_NUMBER => "DAIBAN_NUMBER",
            DAIBAN_CATALOG => "DAIBAN_CATALOG",
            DAIBAN_CALENDAR => "DAIBAN_CALENDAR",
            DAIBAN_EVENT => "DAIBAN_EVENT",
            DAIBAN_NOT_FOUND => "DAIBAN_NOT_FOUND",
            DAIBAN_WRONG_KEY => "DAIBAN_WRONG_KEY",
            DAIBAN_KEY_REQUIRED => "DAIBAN_KEY_REQUIRED",
            DAIBAN_CORRUPT_DATABASE => "DAIBAN_CORRUPT_DATABASE",
            DAIBAN_CORRUPT_DOCUMENT => "DAIBAN_CORRUPT_DOCUMENT",
            DAIBAN_NEWER_DATABASE => "DAIBAN_NEWER_DATABASE",
            DAIBAN_INTERRUPTED => "DAIBAN_INTERRUPTED",
            DAIBAN_DATABASE => "DAIBAN_DATABASE",
            DAIBAN_IO => "DAIBAN_IO",
            DAIBAN_STORED_DATA => "DAIBAN_STORED_DATA",
            DAIBAN_SYNC => "DAIBAN_SYNC",
            DAIBAN_REVOKED => "DAIBAN_REVOKED",
            DAIBAN_NOT_ENROLLED => "DAIBAN_NOT_ENROLLED",
            DAIBAN_PANIC => "DAIBAN_PANIC",
            DAIBAN_POISONED => "DAIBAN_POISONED",
            DAIBAN_INTERNAL => "DAIBAN_INTERNAL",
        }
    }

    /// What the code means, in Chinese, NUL-terminated for `daiban_status_message`.
    pub(crate) fn message_c(self) -> &'static str {
        match self {
            DAIBAN_OK => "成功\0",
            DAIBAN_NULL_ARGUMENT => "必需的指针参数为 NULL（调用方程序错误）\0",
            DAIBAN_INVALID_UTF8 => "文本参数不是有效的 UTF-8（调用方程序错误）\0",
            DAIBAN_INVALID_JSON => "JSON 参数格式错误或结构不符（调用方程序错误）\0",
            DAIBAN_INVALID_HANDLE => "本机数据句柄无效：已释放或并非由 daiban_store_open 创建\0",
            DAIBAN_INVALID_STRING => "该字符串不是本库返回的，或已释放过\0",
            DAIBAN_KEY_LENGTH => "密钥长度应为32字节\0",
            DAIBAN_FORM => "登记表填写有误，请按提示修改\0",
            DAIBAN_NUMBER => "办件编号不正确，请核对编号\0",
            DAIBAN_CATALOG => "事项目录有误，未采用\0",
            DAIBAN_CALENDAR => "节假日日历有误，未采用\0",
            DAIBAN_EVENT => "此时不能记录该事件\0",
            DAIBAN_NOT_FOUND => "没有这个办件\0",
            DAIBAN_WRONG_KEY => "密钥不正确，无法打开本机数据（数据未作任何改动）\0",
            DAIBAN_KEY_REQUIRED => "本机数据已加密，打开时必须提供密钥\0",
            DAIBAN_CORRUPT_DATABASE => {
                "本机数据库已损坏，已移至旁边保存（未删除），请联系乡镇中心恢复数据\0"
            }
            DAIBAN_CORRUPT_DOCUMENT => "该办件的数据已损坏，已隔离保存，其他办件不受影响\0",
            DAIBAN_NEWER_DATABASE => "本机数据由更新版本的软件创建，请升级软件\0",
            DAIBAN_INTERRUPTED => "操作已取消\0",
            DAIBAN_DATABASE => "本机数据库出错（存储空间不足或文件被占用等）\0",
            DAIBAN_IO => "文件读写出错\0",
            DAIBAN_STORED_DATA => "本机保存的数据无法读取\0",
            DAIBAN_SYNC => "同步失败，请稍后再试\0",
            DAIBAN_REVOKED => "本设备已停用，本机办件数据已清除，请联系乡镇中心\0",
            DAIBAN_NOT_ENROLLED => "本设备尚未注册，请先用乡镇中心签发的注册码注册\0",
            DAIBAN_PANIC => "程序内部错误（已拦截，未影响宿主程序）\0",
            DAIBAN_POISONED => "此前的调用在内部出错，请释放句柄后重新打开本机数据\0",
            DAIBAN_INTERNAL => "未知的内部错误\0",
        }
    }

    /// What the code means, in Chinese.
    pub fn message(self) -> &'static str {
        self.message_c().trim_end_matches('\0')
    }
}

/// The one mapping from agent-core errors to codes and messages.
///
/// Messages are agent-core's own (Chinese for everything an agent can fix; they never carry
/// ID numbers, phones or names), except where the underlying text could echo stored values
/// (documents, stored JSON): those get the code's fixed message instead.
pub(crate) fn from_core(e: Error) -> Failure {
    let (status, detailed) = match &e {
        Error::Form(_) => (DAIBAN_FORM, true),
        Error::Number(_) => (DAIBAN_NUMBER, true),
        // A catalog carries no personal data; serde's text helps the district fix it.
        Error::Catalog(_) => (DAIBAN_CATALOG, true),
        Error::Calendar(_) => (DAIBAN_CALENDAR, true),
        Error::Event(_) => (DAIBAN_EVENT, true),
        Error::NotFound(_) => (DAIBAN_NOT_FOUND, true),
        Error::WrongKey => (DAIBAN_WRONG_KEY, true),
        Error::KeyRequired => (DAIBAN_KEY_REQUIRED, true),
        Error::Key(CryptoError::KeyLength) => (DAIBAN_KEY_LENGTH, false),
        Error::Key(CryptoError::Open) => (DAIBAN_STORED_DATA, false),
        Error::Key(_) => (DAIBAN_INTERNAL, true),
        Error::CorruptDatabase { .. } => (DAIBAN_CORRUPT_DATABASE, true),
        Error::CorruptDocument { .. } => (DAIBAN_CORRUPT_DOCUMENT, true),
        // Document and stored-JSON errors can quote stored values: fixed message only.
        Error::Doc(_) => (DAIBAN_STORED_DATA, false),
        Error::Json(_) => (DAIBAN_STORED_DATA, false),
        Error::Sqlite(_) => (DAIBAN_DATABASE, true),
        Error::Io(_) => (DAIBAN_IO, true),
        Error::NewerDatabase(_) => (DAIBAN_NEWER_DATABASE, true),
        Error::Interrupted => (DAIBAN_INTERRUPTED, true),
        Error::Sync(_) => (DAIBAN_SYNC, true),
        // Lists the unsynced tickets with masked names, ID numbers and phones only.
        Error::Revoked { .. } => (DAIBAN_REVOKED, true),
        Error::NotEnrolled => (DAIBAN_NOT_ENROLLED, true),
        _ => (DAIBAN_INTERNAL, true),
    };
    let message = if detailed {
        e.to_string()
    } else {
        status.message().to_owned()
    };
    Failure::new(status, message)
}

/// A JSON argument that did not parse, described without quoting any of its values (serde's
/// "invalid type: string \"…\"" would echo an ID number typed into the wrong field).
pub(crate) fn json_failure(arg: &str, e: &serde_json::Error) -> Failure {
    use serde_json::error::Category;
    let text = e.to_string();
    let what = match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => "不是有效的 JSON".to_owned(),
        // Field names come from the schema, not from the data: safe to show.
        Category::Data if text.starts_with("missing field") => {
            let field = text.split('`').nth(1).unwrap_or("?");
            format!("缺少字段 {field}")
        }
        Category::Data => "结构不符（字段类型或取值不对）".to_owned(),
    };
    Failure::new(
        DAIBAN_INVALID_JSON,
        format!("参数 {arg} {what}（第{}行第{}列）", e.line(), e.column()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers are the ABI: this table may only grow.
    #[test]
    fn codes_are_frozen() {
        let table: Vec<(&str, u32)> = ALL.iter().map(|s| (s.name(), *s as u32)).collect();
        assert_eq!(
            table,
            [
                ("DAIBAN_OK", 0),
                ("DAIBAN_NULL_ARGUMENT", 1),
                ("DAIBAN_INVALID_UTF8", 2),
                ("DAIBAN_INVALID_JSON", 3),
                ("DAIBAN_INVALID_HANDLE", 4),
                ("DAIBAN_INVALID_STRING", 5),
                ("DAIBAN_KEY_LENGTH", 6),
                ("DAIBAN_FORM", 100),
                ("DAIBAN_NUMBER", 101),
                ("DAIBAN_CATALOG", 102),
                ("DAIBAN_CALENDAR", 103),
                ("DAIBAN_EVENT", 104),
                ("DAIBAN_NOT_FOUND", 105),
                ("DAIBAN_WRONG_KEY", 200),
                ("DAIBAN_KEY_REQUIRED", 201),
                ("DAIBAN_CORRUPT_DATABASE", 202),
                ("DAIBAN_CORRUPT_DOCUMENT", 203),
                ("DAIBAN_NEWER_DATABASE", 204),
                ("DAIBAN_INTERRUPTED", 205),
                ("DAIBAN_DATABASE", 206),
                ("DAIBAN_IO", 207),
                ("DAIBAN_STORED_DATA", 208),
                ("DAIBAN_SYNC", 300),
                ("DAIBAN_REVOKED", 301),
                ("DAIBAN_NOT_ENROLLED", 302),
                ("DAIBAN_PANIC", 900),
                ("DAIBAN_POISONED", 901),
                ("DAIBAN_INTERNAL", 902),
            ]
        );
    }

    #[test]
    fn every_code_has_a_distinct_message() {
        let mut seen = std::collections::HashSet::new();
        for s in ALL {
            assert!(s.message_c().ends_with('\0'));
            assert!(!s.message().contains('\0'), "{}", s.name());
            assert!(seen.insert(s.message()), "{} repeats a message", s.name());
            assert_eq!(daiban_status::from_u32(s as u32), Some(s));
        }
        assert_eq!(daiban_status::from_u32(7), None);
    }

    /// A revocation's message lists the unsynced tickets, masked, for the agent to redo.
    #[test]
    fn a_revocation_is_its_own_code_with_the_masked_list() {
        let summary = serde_json::from_value(serde_json::json!({
            "number": "010100100001", "item_code": "SB001", "item_name": "失业证办理",
            "status": "registered", "status_label": "已登记", "needs_review": false,
            "registered_on": "2026-03-02", "due_on": null, "light": null, "remaining": null,
            "applicant": "王*英", "id_number": "4310**********0023", "phone": "138****8000",
            "village": "东坪村", "sync_state": "pending", "sync_reason": null
        }))
        .unwrap();
        let f = from_core(Error::Revoked {
            reason: "丢失".into(),
            unsynced: vec![summary],
        });
        assert_eq!(f.status, DAIBAN_REVOKED);
        assert!(f.message.contains("010100100001"), "{}", f.message);
        assert!(f.message.contains("王*英"), "{}", f.message);
        assert!(f.message.contains("已清除"), "{}", f.message);
    }

    #[test]
    fn json_messages_never_quote_values() {
        use agent_core::domain::ticket::NewTicket;
        let bad = r#"{"item_code": "SB001", "applicant_name": "张三",
                      "id_number": 110101199003071234, "village": "东坪村"}"#;
        let e = serde_json::from_str::<NewTicket>(bad).unwrap_err();
        assert!(
            e.to_string().contains("110101199003071234"),
            "serde quotes it"
        );
        let f = json_failure("form_json", &e);
        assert_eq!(f.status, DAIBAN_INVALID_JSON);
        assert!(!f.message.contains("110101199003071234"), "{}", f.message);
        let e = serde_json::from_str::<NewTicket>(r#"{"item_code": "SB001"}"#).unwrap_err();
        assert!(json_failure("form_json", &e)
            .message
            .contains("applicant_name"));
    }
}

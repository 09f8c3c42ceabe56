//! Staff accounts, console sessions and the audit log.
//!
//! Passwords are kept as argon2id PHC strings (salt from ring). Hashing is slow on purpose, so
//! callers verify outside the store's lock: [`credentials`] reads what to check against,
//! [`check_password`] runs on its own, [`record_sign_in`] writes the outcome. Five failures in
//! a row lock an account for [`LOCKOUT_MINUTES`]. A session is a random token in an HttpOnly
//! cookie, of which only the SHA-256 is stored, with the CSRF token its forms carry.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Duration, FixedOffset};
use ring::rand::{SecureRandom, SystemRandom};
use rusqlite::{params, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};

use agent_core::domain::event::Role;

use crate::config::ServerRole;
use crate::error::{Error, Result};
use crate::store::ServerStore;
use crate::sync::ServerInfo;

/// Failed sign-ins in a row that lock an account.
pub const MAX_FAILURES: i64 = 5;
/// How long a locked account stays locked.
pub const LOCKOUT_MINUTES: i64 = 15;
/// How long a session lasts: a working day.
pub const SESSION_HOURS: i64 = 12;
/// Shortest password an account may have.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// What a staff account may do; each belongs on one level of server (an auditor on both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    /// 乡镇工作人员: handles the township's tickets.
    TownshipStaff,
    /// 乡镇管理员: a township clerk who also manages the township's staff and enrollment codes.
    TownshipAdmin,
    /// 窗口工作人员: handles what was forwarded to the district's windows.
    WindowStaff,
    /// 区县管理员: manages everything at the district.
    DistrictAdmin,
    /// 监察审计员: reads, never changes.
    Auditor,
}

impl StaffRole {
    pub const ALL: [StaffRole; 5] = [
        StaffRole::TownshipStaff,
        StaffRole::TownshipAdmin,
        StaffRole::WindowStaff,
        StaffRole::DistrictAdmin,
        StaffRole::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::TownshipStaff => "township_staff",
            StaffRole::TownshipAdmin => "township_admin",
            StaffRole::WindowStaff => "window_staff",
            StaffRole::DistrictAdmin => "district_admin",
            StaffRole::Auditor => "auditor",
        }
    }

    pub fn parse(text: &str) -> Option<StaffRole> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// The name staff read.
    pub fn label(self) -> &'static str {
        match self {
            StaffRole::TownshipStaff => "乡镇工作人员",
            StaffRole::TownshipAdmin => "乡镇管理员",
            StaffRole::WindowStaff => "窗口工作人员",
            StaffRole::DistrictAdmin => "区县管理员",
            StaffRole::Auditor => "监察审计员",
        }
    }

    /// The role of the ticket events this account appends; `None`: it appends none.
    pub fn event_role(self) -> Option<Role> {
        match self {
            StaffRole::TownshipStaff | StaffRole::TownshipAdmin => Some(Role::Township),
            StaffRole::WindowStaff => Some(Role::Window),
            StaffRole::DistrictAdmin | StaffRole::Auditor => None,
        }
    }

    /// Whether the role handles or reads tickets (a district admin does neither).
    pub fn sees_tickets(self) -> bool {
        self.event_role().is_some() || self == StaffRole::Auditor
    }

    /// Whether the role belongs on a server of this level.
    pub fn serves_on(self, level: ServerRole) -> bool {
        match self {
            StaffRole::TownshipStaff | StaffRole::TownshipAdmin => level == ServerRole::Township,
            StaffRole::WindowStaff | StaffRole::DistrictAdmin => level == ServerRole::District,
            StaffRole::Auditor => true,
        }
    }
}

/// A staff account as the console and the API see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub login: String,
    pub name: String,
    pub role: StaffRole,
    /// The township whose points it sees; `None` on a district.
    pub township: Option<String>,
    /// For window staff: the district window whose forwarded tickets it sees (the catalog's
    /// window name); `None` for a general window (综合窗口) that sees every forwarded ticket.
    pub window: Option<String>,
    /// Hex Automerge actor its events are written with.
    pub actor: String,
}

/// A signed-in session: the account and the CSRF token its forms must carry.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub account: Account,
    pub csrf: String,
}

/// An account to open: who, in which role, and for window staff which window.
#[derive(Debug, Clone)]
pub struct NewAccount<'a> {
    pub login: &'a str,
    pub name: &'a str,
    pub role: StaffRole,
    pub window: Option<&'a str>,
}

/// Add an account to this server (its township's, on a township server); `by` is who
/// opened it, for the audit log.
pub fn add(
    store: &mut ServerStore,
    info: &ServerInfo,
    new: &NewAccount<'_>,
    password: &str,
    by: &str,
    now: DateTime<FixedOffset>,
) -> Result<Account> {
    let login = new.login.trim();
    let name = new.name.trim();
    let role = new.role;
    let login_ok = (2..=32).contains(&login.len())
        && login
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !login_ok {
        return Err(Error::BadRequest(
            "登录名须为2至32位字母、数字或 . _ -".into(),
        ));
    }
    if name.is_empty() || name.chars().count() > 32 || name.chars().any(char::is_control) {
        return Err(Error::BadRequest("姓名须为1至32个字".into()));
    }
    if !role.serves_on(info.role) {
        return Err(Error::BadRequest(format!(
            "{}账号不能在这一级服务器上开设",
            role.label()
        )));
    }
    let window = new.window.map(str::trim).filter(|w| !w.is_empty());
    if window.is_some() && role != StaffRole::WindowStaff {
        return Err(Error::BadRequest("只有窗口工作人员账号有所属窗口".into()));
    }
    if window.is_some_and(|w| w.chars().count() > 64 || w.chars().any(char::is_control)) {
        return Err(Error::BadRequest("窗口名称须为1至64个字".into()));
    }
    let hash = hash_password(password)?;
    let account = Account {
        login: login.to_owned(),
        name: name.to_owned(),
        role,
        township: info.township.clone(),
        window: window.map(str::to_owned),
        actor: automerge::ActorId::random().to_hex_string(),
    };
    let tx = store.begin()?;
    let taken: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM staff_accounts WHERE login = ?1)",
        [login],
        |r| r.get(0),
    )?;
    if taken {
        return Err(Error::BadRequest(format!("登录名{login}已被使用")));
    }
    tx.execute(
        "INSERT INTO staff_accounts
             (login, name, role, township, window, password, actor, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            account.login,
            account.name,
            role.as_str(),
            account.township,
            account.window,
            hash,
            account.actor,
            now.to_rfc3339()
        ],
    )?;
    audit(&tx, by, "开设账号", None, &account.login, now)?;
    tx.commit()?;
    Ok(account)
}

/// An argon2id PHC string for `password`, refused when too short.
pub fn hash_password(password: &str) -> Result<String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::BadRequest(format!("密码至少{MIN_PASSWORD_CHARS}位")));
    }
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| Error::Internal("no randomness for a salt".into()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| Error::Internal(e.to_string()))?
        .to_string())
}

/// What a sign-in is checked against: the account's stored hash, or a stand-in for an
/// unknown login (so both take as long), and whether it is locked now.
pub struct Credentials {
    hash: String,
    known: bool,
    locked: bool,
}

/// Read what `login`'s password is checked against.
pub fn credentials(
    store: &ServerStore,
    login: &str,
    now: DateTime<FixedOffset>,
) -> Result<Credentials> {
    let row: Option<(String, bool, Option<String>)> = store
        .conn()
        .query_row(
            "SELECT password, disabled, locked_until FROM staff_accounts WHERE login = ?1",
            [login],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    Ok(match row {
        Some((hash, disabled, locked_until)) => Credentials {
            hash,
            known: !disabled,
            locked: locked_until
                .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .is_some_and(|t| t > now),
        },
        None => Credentials {
            hash: stand_in_hash().to_owned(),
            known: false,
            locked: false,
        },
    })
}

/// A hash of a password nobody has, verified for unknown logins.
fn stand_in_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("no such account, ever").unwrap_or_default())
}

/// Whether `password` matches (slow: run it outside the store's lock). A locked or unknown
/// account never matches.
pub fn check_password(c: &Credentials, password: &str) -> bool {
    let matches = PasswordHash::new(&c.hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    });
    matches && c.known && !c.locked
}

/// Record a sign-in's outcome: on success a new session (its cookie token returned with the
/// account), else one more failure, locking the account at [`MAX_FAILURES`].
pub fn record_sign_in(
    store: &mut ServerStore,
    login: &str,
    matched: bool,
    now: DateTime<FixedOffset>,
) -> Result<(String, SignedIn)> {
    let tx = store.begin()?;
    let locked: Option<String> = tx
        .query_row(
            "SELECT locked_until FROM staff_accounts WHERE login = ?1",
            [login],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    let is_locked = locked
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .is_some_and(|t| t > now);
    if is_locked {
        return Err(Error::Forbidden(format!(
            "登录失败次数过多，账号已锁定{LOCKOUT_MINUTES}分钟，请稍后再试或联系管理员"
        )));
    }
    if !matched {
        let failed: Option<i64> = tx
            .query_row(
                "UPDATE staff_accounts SET failed = failed + 1 WHERE login = ?1 RETURNING failed",
                [login],
                |r| r.get(0),
            )
            .optional()?;
        if failed.is_some_and(|f| f >= MAX_FAILURES) {
            let until = now + Duration::minutes(LOCKOUT_MINUTES);
            tx.execute(
                "UPDATE staff_accounts SET failed = 0, locked_until = ?2 WHERE login = ?1",
                params![login, until.to_rfc3339()],
            )?;
            audit(&tx, login, "账号锁定", None, "连续登录失败", now)?;
        }
        tx.commit()?;
        return Err(Error::Unauthenticated("用户名或密码错误".into()));
    }
    tx.execute(
        "UPDATE staff_accounts SET failed = 0, locked_until = NULL WHERE login = ?1",
        [login],
    )?;
    // Sessions that ran out go when a new one starts.
    tx.execute(
        "DELETE FROM staff_sessions WHERE expires_at <= ?1",
        [now.to_rfc3339()],
    )?;
    let token = random_token()?;
    let csrf = random_token()?;
    tx.execute(
        "INSERT INTO staff_sessions (digest, login, csrf, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            digest(&token),
            login,
            csrf,
            now.to_rfc3339(),
            (now + Duration::hours(SESSION_HOURS)).to_rfc3339()
        ],
    )?;
    audit(&tx, login, "登录", None, "", now)?;
    let account = account(&tx, login)?.ok_or(Error::Unauthorized)?;
    tx.commit()?;
    Ok((token, SignedIn { account, csrf }))
}

/// The session a cookie token names, if it is live and its account enabled.
pub fn session(
    store: &ServerStore,
    token: &str,
    now: DateTime<FixedOffset>,
) -> Result<Option<SignedIn>> {
    let row: Option<(String, String, String)> = store
        .conn()
        .query_row(
            "SELECT login, csrf, expires_at FROM staff_sessions WHERE digest = ?1",
            [digest(token)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((login, csrf, expires)) = row else {
        return Ok(None);
    };
    if DateTime::parse_from_rfc3339(&expires).map_or(true, |e| e <= now) {
        return Ok(None);
    }
    Ok(account(store.conn(), &login)?.map(|account| SignedIn { account, csrf }))
}

/// End a session.
pub fn sign_out(store: &mut ServerStore, token: &str, now: DateTime<FixedOffset>) -> Result<()> {
    let tx = store.begin()?;
    let login: Option<String> = tx
        .query_row(
            "DELETE FROM staff_sessions WHERE digest = ?1 RETURNING login",
            [digest(token)],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(login) = login {
        audit(&tx, &login, "退出登录", None, "", now)?;
    }
    tx.commit()?;
    Ok(())
}

/// An enabled account.
fn account(conn: &rusqlite::Connection, login: &str) -> Result<Option<Account>> {
    type Row = (
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        String,
    );
    let row: Option<Row> = conn
        .query_row(
            "SELECT login, name, role, township, window, actor FROM staff_accounts
             WHERE login = ?1 AND NOT disabled",
            [login],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .optional()?;
    let Some((login, name, role, township, window, actor)) = row else {
        return Ok(None);
    };
    let role = StaffRole::parse(&role)
        .ok_or_else(|| Error::Internal(format!("account {login}: unknown role {role}")))?;
    Ok(Some(Account {
        login,
        name,
        role,
        township,
        window,
        actor,
    }))
}

/// Record a staff action or an unmasking. `detail` never holds an ID number or a phone.
pub fn audit(
    tx: &Transaction<'_>,
    login: &str,
    action: &str,
    ticket: Option<&str>,
    detail: &str,
    now: DateTime<FixedOffset>,
) -> Result<()> {
    tx.execute(
        "INSERT INTO audit_log (at, login, action, ticket, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![now.to_rfc3339(), login, action, ticket, detail],
    )?;
    Ok(())
}

/// 32 random bytes in hex: a session or form token.
pub fn random_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::Internal("no randomness for a token".into()))?;
    Ok(hex::encode(bytes))
}

fn digest(token: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

/// An account as an admin's list shows it, disabled ones included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    pub login: String,
    pub name: String,
    pub role: StaffRole,
    pub township: Option<String>,
    pub window: Option<String>,
    pub disabled: bool,
    /// RFC 3339.
    pub created_at: String,
}

/// Every account of this server (of one township when `township` is given), by login.
pub fn list(conn: &rusqlite::Connection, township: Option<&str>) -> Result<Vec<AccountRow>> {
    let mut stmt = conn.prepare(
        "SELECT login, name, role, township, window, disabled, created_at FROM staff_accounts
         WHERE ?1 IS NULL OR township = ?1 ORDER BY login",
    )?;
    let rows = stmt
        .query_map([township], account_row_of)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().collect()
}

/// One account, enabled or not.
pub fn find(conn: &rusqlite::Connection, login: &str) -> Result<Option<AccountRow>> {
    conn.query_row(
        "SELECT login, name, role, township, window, disabled, created_at FROM staff_accounts
         WHERE login = ?1",
        [login],
        account_row_of,
    )
    .optional()?
    .transpose()
}

fn account_row_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<AccountRow>> {
    let login: String = r.get(0)?;
    let role: String = r.get(2)?;
    let Some(role) = StaffRole::parse(&role) else {
        return Ok(Err(Error::Internal(format!(
            "account {login}: unknown role {role}"
        ))));
    };
    Ok(Ok(AccountRow {
        login,
        name: r.get(1)?,
        role,
        township: r.get(3)?,
        window: r.get(4)?,
        disabled: r.get(5)?,
        created_at: r.get(6)?,
    }))
}

/// Disable or re-enable an account; disabling also ends its sessions at once. Audited as
/// `by`'s action.
pub fn set_disabled(
    store: &mut ServerStore,
    login: &str,
    disabled: bool,
    by: &str,
    now: DateTime<FixedOffset>,
) -> Result<()> {
    let tx = store.begin()?;
    let changed = tx.execute(
        "UPDATE staff_accounts SET disabled = ?2 WHERE login = ?1",
        params![login, disabled],
    )?;
    if changed == 0 {
        return Err(Error::BadRequest(format!("没有登录名为{login}的账号")));
    }
    if disabled {
        tx.execute("DELETE FROM staff_sessions WHERE login = ?1", [login])?;
    }
    let action = if disabled {
        "停用账号"
    } else {
        "启用账号"
    };
    audit(&tx, by, action, None, login, now)?;
    tx.commit()?;
    Ok(())
}

/// Give an account a new password (`hash` from [`hash_password`], made outside the store's
/// lock): its sessions end, its failures and lockout are cleared. Audited as `by`'s action.
pub fn set_password(
    store: &mut ServerStore,
    login: &str,
    hash: &str,
    by: &str,
    now: DateTime<FixedOffset>,
) -> Result<()> {
    let tx = store.begin()?;
    let changed = tx.execute(
        "UPDATE staff_accounts SET password = ?2, failed = 0, locked_until = NULL
         WHERE login = ?1",
        params![login, hash],
    )?;
    if changed == 0 {
        return Err(Error::BadRequest(format!("没有登录名为{login}的账号")));
    }
    tx.execute("DELETE FROM staff_sessions WHERE login = ?1", [login])?;
    audit(&tx, by, "重置密码", None, login, now)?;
    tx.commit()?;
    Ok(())
}

/// One row of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub id: i64,
    /// RFC 3339.
    pub at: String,
    pub login: String,
    pub action: String,
    pub ticket: Option<String>,
    pub detail: String,
}

/// Which audit rows to read: each filter applies when given.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery<'a> {
    pub login: Option<&'a str>,
    pub ticket: Option<&'a str>,
    /// Only rows by accounts of this township.
    pub township: Option<&'a str>,
    /// Only rows older than this id (the next page).
    pub before: Option<i64>,
    pub limit: u32,
}

/// Audit rows, newest first.
pub fn audit_log(conn: &rusqlite::Connection, q: &AuditQuery<'_>) -> Result<Vec<AuditRow>> {
    let mut stmt = conn.prepare(
        "SELECT id, at, login, action, ticket, detail FROM audit_log
         WHERE (?1 IS NULL OR login = ?1)
           AND (?2 IS NULL OR ticket = ?2)
           AND (?3 IS NULL OR login IN (SELECT login FROM staff_accounts WHERE township = ?3))
           AND (?4 IS NULL OR id < ?4)
         ORDER BY id DESC LIMIT ?5",
    )?;
    let rows = stmt
        .query_map(
            params![q.login, q.ticket, q.township, q.before, q.limit],
            |r| {
                Ok(AuditRow {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    login: r.get(2)?,
                    action: r.get(3)?,
                    ticket: r.get(4)?,
                    detail: r.get(5)?,
                })
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

//! Who may sync here, as the directory records it: one-time enrollment codes an admin issues
//! (a township's for a device of one of its points, a district's for a township server),
//! `POST /v1/enroll` registering a peer's signing key and Automerge actor with such a code,
//! and revocations. A code is kept only as its digest, expires, and works once; a retry of
//! the same enrollment (same key and actor) is answered again. See docs/SYNC.md.

use chrono::{DateTime, Duration, FixedOffset};
use rusqlite::{params, OptionalExtension, Transaction};

use agent_core::crypto::identity::is_public_key;
use agent_core::domain::directory::{is_actor, Device, DirectoryPart, Revoked, ServerIdentity};
use agent_core::domain::number::TicketNumber;
use agent_core::sync::enroll::{normalize_code, EnrollRequest, Enrolled};
use agent_core::sync::shared::SharedName;
use agent_core::sync::wire::{Peer, PROTOCOL_VERSION};

use crate::config::ServerRole;
use crate::error::{Error, Result};
use crate::store::{directory, publish, shared, ServerStore};
use crate::sync::ServerInfo;

/// Symbols of a code: Crockford's base 32 (no I, L, O, U), so it reads out unambiguously.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Symbols in a code: 60 random bits.
const CODE_LEN: usize = 12;
/// Highest device number within a point (two digits of the ticket number).
const MAX_DEVICE: u32 = 99;

/// What a code is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeFor {
    /// A device of a point (at a township server); `None` takes the next free number.
    Device { point: u32, device: Option<u32> },
    /// A township server (at the district).
    Township(String),
}

/// A code as issued, to read out to whoever installs the device.
#[derive(Debug, Clone)]
pub struct Issued {
    /// Grouped in fours: `7KQM-X2PA-9DHT`.
    pub code: String,
    pub peer: Peer,
    pub expires: DateTime<FixedOffset>,
}

/// Longest a code may live: a month (tablets delivered to points over some weeks).
pub const MAX_CODE_HOURS: u32 = 720;

/// Issue a one-time code valid for `hours` (1 to [`MAX_CODE_HOURS`]).
pub fn issue_code(
    store: &mut ServerStore,
    info: &ServerInfo,
    target: &CodeFor,
    hours: u32,
    now: DateTime<FixedOffset>,
) -> Result<Issued> {
    let tx = store.begin()?;
    let dir = directory(&tx)?;
    let peer = match (target, info.role, info.township.as_deref()) {
        (CodeFor::Device { point, device }, ServerRole::Township, Some(mine)) => {
            if dir.township_of(*point) != Some(mine) {
                return Err(Error::BadRequest(format!(
                    "代办点{point}不属于本乡镇（或本服务器尚未收到区县目录）"
                )));
            }
            let taken = taken_devices(&tx, &dir, *point, now)?;
            let device = match device {
                Some(d) if taken.contains(d) => {
                    return Err(Error::BadRequest(format!(
                    "代办点{point}的设备编号{d}已使用过（停用的编号也不再分配，以免办件编号重复）"
                )))
                }
                Some(d) => *d,
                None => (1..=MAX_DEVICE)
                    .find(|d| !taken.contains(d))
                    .ok_or_else(|| Error::BadRequest(format!("代办点{point}的设备编号已用完")))?,
            };
            if TicketNumber::new(*point, device, 1).is_err() {
                return Err(Error::BadRequest("代办点或设备编号超出范围".into()));
            }
            Peer::Device {
                point: *point,
                device,
            }
        }
        (CodeFor::Township(code), ServerRole::District, _) => {
            if dir.township(code).is_none() {
                return Err(Error::BadRequest(format!("乡镇{code}不在区县目录中")));
            }
            Peer::Township { code: code.clone() }
        }
        (CodeFor::Device { .. }, _, _) => {
            return Err(Error::BadRequest(
                "设备注册码由乡镇服务器签发（平板连乡镇服务器）".into(),
            ))
        }
        (CodeFor::Township(_), _, _) => {
            return Err(Error::BadRequest(
                "乡镇服务器的注册码由区县服务器签发".into(),
            ))
        }
    };
    let code = random_code()?;
    let expires = now + Duration::hours(i64::from(hours.clamp(1, MAX_CODE_HOURS)));
    tx.execute(
        "INSERT INTO enroll_codes (digest, peer, issued_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![
            digest(&code),
            peer.origin(),
            now.to_rfc3339(),
            expires.to_rfc3339()
        ],
    )?;
    tx.commit()?;
    let grouped: Vec<&str> = (0..CODE_LEN).step_by(4).map(|i| &code[i..i + 4]).collect();
    Ok(Issued {
        code: grouped.join("-"),
        peer,
        expires,
    })
}

/// Device numbers of a point that must not be issued again: registered, revoked, or held by
/// a code still valid.
fn taken_devices(
    tx: &Transaction<'_>,
    dir: &agent_core::domain::directory::Directory,
    point: u32,
    now: DateTime<FixedOffset>,
) -> Result<Vec<u32>> {
    let mut taken: Vec<u32> = dir
        .townships
        .values()
        .chain(std::iter::once(&dir.district))
        .flat_map(|part| {
            let devices = part.devices.iter().filter(|d| d.point == point);
            let revoked = part.revoked.iter().filter(|r| r.point == point);
            devices
                .map(|d| d.number)
                .chain(revoked.map(|r| r.device))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut stmt = tx.prepare(
        "SELECT peer FROM enroll_codes WHERE used_by IS NULL AND expires_at > ?1 AND peer LIKE ?2",
    )?;
    let pending = stmt
        .query_map(
            params![now.to_rfc3339(), format!("device:{point}:%")],
            |r| r.get::<_, String>(0),
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    taken.extend(
        pending
            .iter()
            .filter_map(|p| p.rsplit(':').next()?.parse::<u32>().ok()),
    );
    Ok(taken)
}

fn random_code() -> Result<String> {
    let mut bytes = [0u8; CODE_LEN];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| Error::Internal("no randomness for the code".into()))?;
    // 256 is a multiple of 32: every symbol equally likely.
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b % 32)]))
        .collect())
}

fn digest(code: &str) -> Vec<u8> {
    let normal = normalize_code(code);
    ring::digest::digest(&ring::digest::SHA256, normal.as_bytes())
        .as_ref()
        .to_vec()
}

/// `POST /v1/enroll`: register the peer's key and actor in the directory part this server
/// owns (a township's devices, the district's townships), which then flows to every replica.
pub fn enroll(
    store: &mut ServerStore,
    info: &ServerInfo,
    body: &[u8],
    now: DateTime<FixedOffset>,
) -> Result<Enrolled> {
    let req: EnrollRequest =
        serde_json::from_slice(body).map_err(|_| Error::BadRequest("注册请求格式错误".into()))?;
    if req.v != PROTOCOL_VERSION {
        return Err(Error::BadRequest(format!(
            "sync protocol version {} is not supported (server speaks {PROTOCOL_VERSION})",
            req.v
        )));
    }
    let actor = automerge::ActorId::try_from(req.actor.as_str())
        .ok()
        .filter(|_| is_actor(&req.actor))
        .ok_or_else(|| Error::BadRequest("执行者编号格式错误".into()))?;
    if !is_public_key(&req.key) {
        return Err(Error::BadRequest("公钥格式错误".into()));
    }
    let used_by = format!("{}:{}", actor.to_hex_string(), req.key);
    let own_actor = store.actor().clone();
    let tx = store.begin()?;
    let row: Option<(String, String, Option<String>)> = tx
        .query_row(
            "SELECT peer, expires_at, used_by FROM enroll_codes WHERE digest = ?1",
            [digest(&req.code)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((peer, expires, used)) = row else {
        return Err(Error::Forbidden(
            "注册码无效，请核对或向管理员重新申请".into(),
        ));
    };
    if peer != req.peer.origin() {
        return Err(Error::Forbidden(
            "注册码不是为这台设备签发的（代办点或设备编号不符）".into(),
        ));
    }
    let township = match &req.peer {
        Peer::Device { .. } => info.township.clone().unwrap_or_default(),
        Peer::Township { code } => code.clone(),
    };
    match used {
        // The same enrollment again (its answer was lost): answer it again.
        Some(u) if u == used_by => return Ok(Enrolled { township }),
        Some(_) => {
            return Err(Error::Forbidden(
                "注册码已使用，每个注册码只能用一次".into(),
            ))
        }
        None => {}
    }
    let expired = DateTime::parse_from_rfc3339(&expires).map_or(true, |e| e <= now);
    if expired {
        return Err(Error::Forbidden("注册码已过期，请向管理员重新申请".into()));
    }
    let dir = directory(&tx)?;
    let hex = actor.to_hex_string();
    if actor == own_actor || dir.actors().any(|(a, _)| a == hex) {
        return Err(Error::Forbidden(
            "执行者编号已被其他设备或服务器使用".into(),
        ));
    }
    let (name, mut part) = own_part(&tx, info)?;
    match &req.peer {
        Peer::Device { point, device } => {
            if dir.is_revoked(*point, *device) || dir.device(*point, *device).is_some() {
                return Err(Error::Forbidden(format!(
                    "代办点{point}的设备编号{device}已登记或已停用，请申请新的注册码"
                )));
            }
            part.devices.push(Device {
                point: *point,
                number: *device,
                actor: actor.to_hex_string(),
                key: req.key.clone(),
            });
        }
        Peer::Township { code } => {
            // A new code replaces a township server's identity (a reinstalled server).
            let Some(t) = part.townships.iter_mut().find(|t| &t.code == code) else {
                return Err(Error::Forbidden(format!("乡镇{code}不在区县目录中")));
            };
            t.server = Some(ServerIdentity {
                actor: actor.to_hex_string(),
                key: req.key.clone(),
            });
        }
    }
    publish(&tx, &name, &serde_json::to_vec(&part).map_err(json_error)?)?;
    tx.execute(
        "UPDATE enroll_codes SET used_by = ?2, used_at = ?3 WHERE digest = ?1",
        params![digest(&req.code), used_by, now.to_rfc3339()],
    )?;
    tx.commit()?;
    tracing::info!(peer = %req.peer.origin(), "enrolled");
    Ok(Enrolled { township })
}

/// Revoke a device: every server on its path refuses it from its next sync on, and tells it
/// to wipe. A township revokes devices of its points; the district any device.
pub fn revoke(
    store: &mut ServerStore,
    info: &ServerInfo,
    point: u32,
    device: u32,
    reason: &str,
) -> Result<u64> {
    let tx = store.begin()?;
    let dir = directory(&tx)?;
    if let Some(mine) = info.township.as_deref() {
        if dir.township_of(point) != Some(mine) {
            return Err(Error::BadRequest(format!("代办点{point}不属于本乡镇")));
        }
    }
    let (name, mut part) = own_part(&tx, info)?;
    if !part
        .revoked
        .iter()
        .any(|r| r.point == point && r.device == device)
    {
        part.revoked.push(Revoked {
            point,
            device,
            reason: reason.to_owned(),
        });
    }
    let version = publish(&tx, &name, &serde_json::to_vec(&part).map_err(json_error)?)?;
    tx.commit()?;
    Ok(version)
}

/// The directory part this server owns, as held now.
pub(crate) fn own_part(
    tx: &Transaction<'_>,
    info: &ServerInfo,
) -> Result<(SharedName, DirectoryPart)> {
    let name = SharedName::directory_part(info.township.as_deref());
    let part = match shared(tx, &name)? {
        Some(doc) => serde_json::from_slice(&doc.body).map_err(json_error)?,
        None => DirectoryPart::default(),
    };
    Ok((name, part))
}

fn json_error(e: serde_json::Error) -> Error {
    Error::Internal(format!("directory part: {e}"))
}

/// An admin's new directory part keeps what enrollment and revocation recorded in the held
/// one: a file written before a device enrolled must not unregister it, nor undo a
/// revocation.
pub fn keep_enrolled(new: &mut DirectoryPart, held: &DirectoryPart) {
    for d in &held.devices {
        if !new
            .devices
            .iter()
            .any(|n| n.point == d.point && n.number == d.number)
        {
            new.devices.push(d.clone());
        }
    }
    for t in &mut new.townships {
        if t.server.is_none() {
            t.server = held
                .townships
                .iter()
                .find(|h| h.code == t.code)
                .and_then(|h| h.server.clone());
        }
    }
    for r in &held.revoked {
        if !new
            .revoked
            .iter()
            .any(|n| n.point == r.point && n.device == r.device)
        {
            new.revoked.push(r.clone());
        }
    }
}

//! The directory: townships, village points, agents and devices.
//!
//! Points carry their distance and usual fare to the county seat, so reports can count the
//! trips and money the proxy saved villagers.

use serde::{Deserialize, Serialize};

/// A township (乡镇), which runs a township server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Township {
    pub code: String,
    pub name: String,
    /// The township server's identity, once it enrolled with the district.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerIdentity>,
    /// The service center's duty mobile (值班手机), told by SMS when a ticket runs overdue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// A server's Automerge actor and signing key, as registered at enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerIdentity {
    /// Hex Automerge actor id its stamps and staff events are written with.
    pub actor: String,
    /// Hex Ed25519 public key its sync requests are signed with.
    pub key: String,
}

/// A village service point (代办点), belonging to one township.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// 1–9999, the first digits of every ticket number made here.
    pub number: u32,
    pub name: String,
    pub township: String,
    /// Road distance to the county seat.
    pub distance_km: f64,
    /// Usual round-trip fare to the county seat, in fen.
    pub fare_fen: i64,
    /// The point's proxy agent's mobile (代理员手机), told by SMS when a ticket runs overdue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_phone: Option<String>,
}

/// A village proxy agent (代理员).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub point: u32,
}

/// A tablet bound to one point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub point: u32,
    /// 1–99 within the point; part of every ticket number it makes.
    pub number: u32,
    /// Hex Automerge actor id the device writes with.
    pub actor: String,
    /// Hex Ed25519 public key its sync requests are signed with (registered at enrollment).
    #[serde(default)]
    pub key: String,
}

/// A device taken out of service (lost, stolen, replaced). Its requests are refused by every
/// server holding the revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revoked {
    pub point: u32,
    pub device: u32,
    #[serde(default)]
    pub reason: String,
}

/// One owner's part of the directory. The district's part lists townships and points; a
/// township's part lists its devices. Either may revoke devices. Each part is edited only by
/// its owner, so replicas keep the highest version of each part and never merge inside one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectoryPart {
    pub townships: Vec<Township>,
    pub points: Vec<Point>,
    pub devices: Vec<Device>,
    pub revoked: Vec<Revoked>,
}

/// Why a directory part cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    #[error("目录格式错误：{0}")]
    Format(#[from] serde_json::Error),
    #[error("目录有误：{0}")]
    Invalid(String),
}

impl DirectoryPart {
    /// Parse and check a part; `township`: the owner when a township's part (it may list only
    /// devices, of its own points per `district`).
    pub fn from_json(
        json: &str,
        township: Option<&str>,
        district: &Directory,
    ) -> Result<DirectoryPart, DirectoryError> {
        let part: DirectoryPart = serde_json::from_str(json)?;
        let bad = |m: String| Err(DirectoryError::Invalid(m));
        let mut seen = std::collections::HashSet::new();
        for p in &part.points {
            if p.number == 0 || p.number > crate::domain::number::MAX_POINT {
                return bad(format!("代办点编号{}超出范围", p.number));
            }
            if !seen.insert(p.number) {
                return bad(format!("代办点编号{}重复", p.number));
            }
            if !part.townships.iter().any(|t| t.code == p.township) {
                return bad(format!(
                    "代办点{}所属乡镇{}不在目录中",
                    p.number, p.township
                ));
            }
        }
        // Every actor id writes for one device or server only: a server tells who wrote a
        // change by its actor. An entry of this part may keep its own actor (the part
        // replaces its older version).
        let taken: std::collections::HashSet<&str> = district
            .actors()
            .filter(|(_, owner)| match township {
                Some(code) => *owner != Some(code),
                None => owner.is_some(),
            })
            .map(|(actor, _)| actor)
            .collect();
        let mut actors = std::collections::HashSet::new();
        let listed = part.devices.iter().map(|d| d.actor.as_str()).chain(
            part.townships
                .iter()
                .filter_map(|t| Some(t.server.as_ref()?.actor.as_str())),
        );
        for actor in listed {
            if !is_actor(actor) {
                return bad(format!("执行者编号{actor}格式错误"));
            }
            if taken.contains(actor) || !actors.insert(actor) {
                return bad(format!("执行者编号{actor}已被其他设备或服务器使用"));
            }
        }
        for d in &part.devices {
            if d.number == 0 || d.number > 99 {
                return bad(format!("设备编号{}超出范围", d.number));
            }
            if !crate::crypto::identity::is_public_key(&d.key) {
                return bad(format!(
                    "代办点{}设备{}没有注册公钥：平板请用乡镇签发的注册码注册",
                    d.point, d.number
                ));
            }
        }
        match township {
            // The district's part replaces the whole list of townships and points: an empty
            // one (say, a township's file imported at the district) would take every point
            // out of scope.
            None if part.townships.is_empty() || part.points.is_empty() => {
                return bad(
                    "区县目录须列出乡镇和代办点（乡镇的设备目录请在乡镇服务器导入）".into(),
                );
            }
            None if !part.devices.is_empty() => {
                return bad(
                    "设备由乡镇登记：请在乡镇服务器导入；区县可在 revoked 中停用设备".into(),
                );
            }
            _ => {}
        }
        if let Some(code) = township {
            if !part.townships.is_empty() || !part.points.is_empty() {
                return bad("乡镇只能登记本乡镇的设备，乡镇和代办点由区县维护".into());
            }
            let foreign = part
                .devices
                .iter()
                .map(|d| d.point)
                .chain(part.revoked.iter().map(|r| r.point))
                .find(|p| district.township_of(*p) != Some(code));
            if let Some(p) = foreign {
                return bad(format!("代办点{p}不属于本乡镇"));
            }
        }
        Ok(part)
    }
}

/// Whether a text is an Automerge actor id as the directory lists it: 1–32 bytes in hex.
pub fn is_actor(text: &str) -> bool {
    hex::decode(text).is_ok_and(|b| (1..=32).contains(&b.len()))
}

/// The whole directory as one replica sees it: the district's part plus township parts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Directory {
    pub district: DirectoryPart,
    /// Township code → its part.
    pub townships: std::collections::BTreeMap<String, DirectoryPart>,
}

impl Directory {
    /// The township a point belongs to.
    pub fn township_of(&self, point: u32) -> Option<&str> {
        self.district
            .points
            .iter()
            .find(|p| p.number == point)
            .map(|p| p.township.as_str())
    }

    pub fn point(&self, number: u32) -> Option<&Point> {
        self.district.points.iter().find(|p| p.number == number)
    }

    /// A device as its township registered it.
    pub fn device(&self, point: u32, number: u32) -> Option<&Device> {
        let township = self.township_of(point)?;
        self.townships
            .get(township)?
            .devices
            .iter()
            .find(|d| d.point == point && d.number == number)
    }

    pub fn township(&self, code: &str) -> Option<&Township> {
        self.district.townships.iter().find(|t| t.code == code)
    }

    /// Every actor id listed: township servers' (owner `None`) and devices' (owner: their
    /// township's code).
    pub fn actors(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        let servers = self
            .district
            .townships
            .iter()
            .filter_map(|t| Some((t.server.as_ref()?.actor.as_str(), None)));
        let devices = self.townships.iter().flat_map(|(code, part)| {
            part.devices
                .iter()
                .map(move |d| (d.actor.as_str(), Some(code.as_str())))
        });
        servers.chain(devices)
    }

    /// Whether any part revokes the device.
    pub fn is_revoked(&self, point: u32, device: u32) -> bool {
        self.revocation(point, device).is_some()
    }

    /// The revocation of the device, if any part revokes it (the first found).
    pub fn revocation(&self, point: u32, device: u32) -> Option<&Revoked> {
        std::iter::once(&self.district)
            .chain(self.townships.values())
            .flat_map(|p| &p.revoked)
            .find(|r| r.point == point && r.device == device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn district() -> Directory {
        Directory {
            district: crate::demo::district_directory(),
            ..Directory::default()
        }
    }

    #[test]
    fn each_owner_imports_only_its_own_part() {
        let empty = Directory::default();
        let whole = serde_json::to_string(&crate::demo::district_directory()).unwrap();
        assert!(DirectoryPart::from_json(&whole, None, &empty).is_ok());
        // A township's file at the district, or a district part without points, is refused.
        let key = "ab".repeat(32);
        let devices =
            format!(r#"{{"devices":[{{"point":101,"number":1,"actor":"aa","key":"{key}"}}]}}"#);
        let devices = devices.as_str();
        // A device without its enrolled key is refused.
        let keyless = r#"{"devices":[{"point":101,"number":1,"actor":"aa"}]}"#;
        assert!(DirectoryPart::from_json(keyless, Some("431023101"), &district()).is_err());
        assert!(DirectoryPart::from_json(devices, None, &empty).is_err());
        assert!(DirectoryPart::from_json(
            r#"{"townships":[{"code":"1","name":"x"}]}"#,
            None,
            &empty
        )
        .is_err());
        // A township registers devices of its own points only, and no townships or points.
        assert!(DirectoryPart::from_json(devices, Some("431023101"), &district()).is_ok());
        assert!(DirectoryPart::from_json(devices, Some("431023102"), &district()).is_err());
        assert!(DirectoryPart::from_json(&whole, Some("431023101"), &district()).is_err());
        // Points must belong to listed townships and be numbered once.
        let orphan = r#"{"townships":[{"code":"1","name":"x"}],"points":[{"number":5,"name":"p","township":"2","distance_km":1.0,"fare_fen":1}]}"#;
        assert!(DirectoryPart::from_json(orphan, None, &empty).is_err());
        assert!(DirectoryPart::from_json("{ not json", None, &empty).is_err());
    }

    #[test]
    fn an_actor_writes_for_one_device_or_server_only() {
        let key = "ab".repeat(32);
        let part = |actors: &[(u32, u32, &str)]| {
            let devices: Vec<String> = actors
                .iter()
                .map(|(p, n, a)| {
                    format!(r#"{{"point":{p},"number":{n},"actor":"{a}","key":"{key}"}}"#)
                })
                .collect();
            format!(r#"{{"devices":[{}]}}"#, devices.join(","))
        };
        let mut dir = district();
        dir.district.townships[0].server = Some(ServerIdentity {
            actor: "5e".into(),
            key: key.clone(),
        });
        let first = part(&[(101, 1, "a1")]);
        let a = dir.district.townships[0].code.clone();
        let b = dir.district.townships[1].code.clone();
        dir.townships.insert(
            a.clone(),
            DirectoryPart::from_json(&first, Some(&a), &dir).unwrap(),
        );
        // Its own part again, with the same device: fine.
        assert!(DirectoryPart::from_json(&first, Some(&a), &dir).is_ok());
        // Two devices with one actor; another township's device's actor; a server's actor;
        // not an actor id.
        let twice = part(&[(101, 1, "a1"), (101, 2, "a1")]);
        assert!(DirectoryPart::from_json(&twice, Some(&a), &dir).is_err());
        let point_of_b = dir
            .district
            .points
            .iter()
            .find(|p| p.township == b)
            .unwrap()
            .number;
        for (code, actor) in [
            (&b, "a1"),
            (&a, "5e"),
            (&b, "5e"),
            (&a, "not hex"),
            (&a, ""),
        ] {
            let point = if code == &a { 102 } else { point_of_b };
            let text = part(&[(point, 1, actor)]);
            let err = DirectoryPart::from_json(&text, Some(code), &dir).unwrap_err();
            assert!(
                err.to_string().contains("执行者编号"),
                "{code} {actor}: {err}"
            );
        }
        // A township server enrolled under a device's actor.
        let mut district = dir.district.clone();
        district.townships[1].server = Some(ServerIdentity {
            actor: "a1".into(),
            key,
        });
        let text = serde_json::to_string(&district).unwrap();
        assert!(DirectoryPart::from_json(&text, None, &dir).is_err());
    }
}

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

    /// Whether any part revokes the device.
    pub fn is_revoked(&self, point: u32, device: u32) -> bool {
        std::iter::once(&self.district)
            .chain(self.townships.values())
            .flat_map(|p| &p.revoked)
            .any(|r| r.point == point && r.device == device)
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
}

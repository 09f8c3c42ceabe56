//! Shared documents: the catalog, the calendar and the directory parts. Each has one owner
//! (the district, or a township for its own directory part) who alone edits it, so a replica
//! keeps the highest version it has seen and never merges inside one.

use std::fmt;

use crate::domain::directory::{Directory, DirectoryPart};

/// Which shared document.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SharedName {
    /// The district's catalog of items (JSON).
    Catalog,
    /// The working-day calendar (CSV).
    Calendar,
    /// The district's directory part: townships and points (JSON).
    Directory,
    /// A township's directory part: its devices (JSON).
    TownshipDirectory(String),
}

const TOWNSHIP_PREFIX: &str = "directory:";

impl SharedName {
    pub fn parse(name: &str) -> Option<SharedName> {
        match name {
            "catalog" => Some(SharedName::Catalog),
            "calendar" => Some(SharedName::Calendar),
            "directory" => Some(SharedName::Directory),
            _ => {
                let code = name.strip_prefix(TOWNSHIP_PREFIX)?;
                let ok = !code.is_empty()
                    && code.len() <= 32
                    && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
                ok.then(|| SharedName::TownshipDirectory(code.to_owned()))
            }
        }
    }

    /// Whether `body` reads as this document (a relay checks before it keeps and passes on).
    pub fn check(&self, body: &[u8]) -> crate::Result<()> {
        let text = std::str::from_utf8(body)
            .map_err(|_| crate::Error::Sync(format!("shared document {self} is not UTF-8")))?;
        match self {
            SharedName::Catalog => drop(crate::domain::catalog::Catalog::from_json(text)?),
            SharedName::Calendar => drop(crate::domain::calendar::Calendar::parse_csv(text)?),
            SharedName::Directory | SharedName::TownshipDirectory(_) => {
                drop(serde_json::from_str::<DirectoryPart>(text)?)
            }
        }
        Ok(())
    }

    /// The directory part a server owns: its township's, or (`None`) the district's.
    pub fn directory_part(township: Option<&str>) -> SharedName {
        match township {
            Some(code) => SharedName::TownshipDirectory(code.to_owned()),
            None => SharedName::Directory,
        }
    }

    /// The township whose replicas hold it (with the district); `None`: every replica.
    pub fn township(&self) -> Option<&str> {
        match self {
            SharedName::TownshipDirectory(code) => Some(code),
            _ => None,
        }
    }
}

/// The directory from the directory parts a replica holds, as (shared name, JSON body) pairs;
/// other names are ignored.
pub fn directory_from(
    parts: impl IntoIterator<Item = (String, Vec<u8>)>,
) -> Result<Directory, serde_json::Error> {
    let mut dir = Directory::default();
    for (name, body) in parts {
        match SharedName::parse(&name) {
            Some(SharedName::Directory) => dir.district = serde_json::from_slice(&body)?,
            Some(SharedName::TownshipDirectory(code)) => {
                let part: DirectoryPart = serde_json::from_slice(&body)?;
                dir.townships.insert(code, part);
            }
            _ => {}
        }
    }
    Ok(dir)
}

impl fmt::Display for SharedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SharedName::Catalog => f.write_str("catalog"),
            SharedName::Calendar => f.write_str("calendar"),
            SharedName::Directory => f.write_str("directory"),
            SharedName::TownshipDirectory(code) => write!(f, "{TOWNSHIP_PREFIX}{code}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_junk_is_refused() {
        for name in [
            SharedName::Catalog,
            SharedName::Calendar,
            SharedName::Directory,
            SharedName::TownshipDirectory("431023101".into()),
        ] {
            assert_eq!(SharedName::parse(&name.to_string()), Some(name));
        }
        for junk in [
            "",
            "directory:",
            "directory:a b",
            "catalogue",
            "directory:../x",
        ] {
            assert_eq!(SharedName::parse(junk), None, "{junk}");
        }
    }
}

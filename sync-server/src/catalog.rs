//! The service catalog as the district edits it: every published definition of an item kept
//! with its version (`catalog_versions`, from the first import on), and the save that turns a
//! changed item into a new catalog version and publishes it.
//!
//! Versions: a save that changes an item gives it the next catalog version (the catalog's own
//! version goes up with it); a save that changes nothing makes no version. Tickets keep the
//! item version they were registered under (their `ItemRef`), so an edit never changes a
//! ticket already made.

use chrono::{DateTime, FixedOffset};
use rusqlite::{params, Connection, Transaction};

use agent_core::domain::catalog::{Catalog, Item};
use agent_core::sync::shared::SharedName;

use crate::accounts;
use crate::error::{Error, Result};
use crate::store::ServerStore;

/// Who recorded versions brought in by `import-catalog`.
pub const BY_IMPORT: &str = "(命令行)";

/// One recorded definition of an item.
#[derive(Debug, Clone)]
pub struct ItemVersion {
    pub item: Item,
    /// RFC 3339, server time.
    pub at: String,
    /// The login that published it, or [`BY_IMPORT`].
    pub by: String,
}

/// Record each item of `catalog` whose definition differs from the last one recorded for its
/// code (a first import records every item). Returns how many rows were added. Called by
/// every path that publishes a catalog: `import-catalog` and the console's save.
pub fn record_versions(
    tx: &Transaction<'_>,
    catalog: &Catalog,
    by: &str,
    now: DateTime<FixedOffset>,
) -> Result<usize> {
    let mut last = tx.prepare(
        "SELECT version, item FROM catalog_versions WHERE code = ?1 ORDER BY id DESC LIMIT 1",
    )?;
    let mut insert = tx.prepare(
        "INSERT INTO catalog_versions (code, version, item, at, by) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut added = 0;
    for item in &catalog.items {
        let json = serde_json::to_string(item).map_err(|e| Error::Internal(e.to_string()))?;
        let held: Option<(i64, String)> = last
            .query_map([&item.code], |r| Ok((r.get(0)?, r.get(1)?)))?
            .next()
            .transpose()?;
        if held.is_some_and(|(v, j)| v == i64::from(item.version) && j == json) {
            continue;
        }
        insert.execute(params![item.code, item.version, json, now.to_rfc3339(), by])?;
        added += 1;
    }
    Ok(added)
}

/// The recorded definitions of an item, newest first.
pub fn history(conn: &Connection, code: &str) -> Result<Vec<ItemVersion>> {
    let mut stmt =
        conn.prepare("SELECT item, at, by FROM catalog_versions WHERE code = ?1 ORDER BY id DESC")?;
    let rows = stmt
        .query_map([code], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(json, at, by)| {
            let item = serde_json::from_str(&json)
                .map_err(|e| Error::Internal(format!("recorded item version: {e}")))?;
            Ok(ItemVersion { item, at, by })
        })
        .collect()
}

/// What a save did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    /// The item as posted equals the current one: no version made, nothing published.
    Unchanged,
    /// Published as this catalog (and item) version.
    Published(u32),
}

/// How a save names the item it edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Save {
    /// A new item: its code must not be in the catalog yet.
    New,
    /// The item with this code, as it stood at version `base` when the form was opened
    /// (`None`: whatever stands now).
    Edit { base: Option<u32> },
}

/// Save `item` (its `version` is ignored): as a new item or over the one with its code. A
/// change makes the next catalog version, which is checked as a whole
/// (`Catalog::from_json`), published, its items' versions recorded and the save audited, in
/// one transaction. District only: the caller checks the server's role and the account.
pub fn save_item(
    store: &mut ServerStore,
    mut item: Item,
    save: Save,
    by: &str,
    now: DateTime<FixedOffset>,
) -> Result<Saved> {
    let tx = store.begin()?;
    let mut catalog = match crate::store::shared(&tx, &SharedName::Catalog)? {
        Some(doc) => Catalog::from_json(&String::from_utf8_lossy(&doc.body))
            .map_err(|e| Error::Internal(format!("stored catalog: {e}")))?,
        None => Catalog {
            version: 0,
            items: Vec::new(),
        },
    };
    let at = catalog.items.iter().position(|i| i.code == item.code);
    let old = match (save, at) {
        (Save::New, Some(_)) => {
            return Err(Error::BadRequest(format!(
                "事项编码{}已存在：请换一个编码，或打开该事项修改",
                item.code
            )))
        }
        (Save::Edit { .. }, None) => {
            return Err(Error::BadRequest(format!(
                "事项{}不在事项目录中",
                item.code
            )))
        }
        (Save::New, None) => None,
        (Save::Edit { base }, Some(at)) => {
            let old = catalog.items[at].clone();
            if base.is_some_and(|b| b != old.version) {
                return Err(Error::BadRequest(format!(
                    "事项{}已被修改为第{}版：请重新打开该事项，在新版本上修改",
                    item.code, old.version
                )));
            }
            Some(old)
        }
    };
    if let Some(old) = &old {
        item.version = old.version;
        if item == *old {
            return Ok(Saved::Unchanged);
        }
    }
    // The catalog's version is normally the highest of its items'; an older catalog imported
    // since, or one numbered otherwise, still never gets a version handed out before.
    let highest = catalog.items.iter().map(|i| i.version).max().unwrap_or(0);
    let recorded: i64 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM catalog_versions",
        [],
        |r| r.get(0),
    )?;
    let version = catalog
        .version
        .max(highest)
        .max(u32::try_from(recorded).unwrap_or(u32::MAX))
        .checked_add(1)
        .ok_or_else(|| Error::BadRequest("事项目录版本号已达上限".into()))?;
    catalog.version = version;
    item.version = version;
    let detail = match &old {
        Some(old) => format!(
            "{} {} 第{}版→第{version}版：{}",
            item.code,
            item.name,
            old.version,
            changed_fields(old, &item).join("、")
        ),
        None => format!("{} {} 第{version}版", item.code, item.name),
    };
    match at {
        Some(at) => catalog.items[at] = item,
        None => catalog.items.push(item),
    }
    let json = serde_json::to_string(&catalog).map_err(|e| Error::Internal(e.to_string()))?;
    // The same checks every replica makes when the catalog reaches it.
    Catalog::from_json(&json).map_err(|e| Error::BadRequest(e.to_string()))?;
    crate::store::publish(&tx, &SharedName::Catalog, json.as_bytes())?;
    record_versions(&tx, &catalog, by, now)?;
    let action = if old.is_some() {
        "修改事项"
    } else {
        "新增事项"
    };
    accounts::audit(&tx, by, action, None, &detail, now)?;
    tx.commit()?;
    Ok(Saved::Published(version))
}

/// The names of the fields that differ between two definitions of an item.
pub fn changed_fields(old: &Item, new: &Item) -> Vec<&'static str> {
    let fields = [
        ("名称", old.name != new.name),
        ("类别", old.category != new.category),
        ("实施部门", old.department != new.department),
        (
            "办理层级",
            old.level != new.level || old.window != new.window,
        ),
        ("事项类型", old.kind != new.kind),
        ("所需材料", old.materials != new.materials),
        ("收费", old.fee_fen != new.fee_fen),
        ("设定依据", old.legal_basis != new.legal_basis),
        ("承诺时限", old.promised_days != new.promised_days),
        ("环节时限", old.stages != new.stages),
    ];
    fields
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ServerStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = ServerStore::open(dir.path().join("s.db")).unwrap();
        (dir, store)
    }

    fn now() -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339("2026-03-02T09:00:00+08:00").unwrap()
    }

    fn import(store: &mut ServerStore, catalog: &Catalog) {
        let tx = store.begin().unwrap();
        let json = serde_json::to_string(catalog).unwrap();
        crate::store::publish(&tx, &SharedName::Catalog, json.as_bytes()).unwrap();
        record_versions(&tx, catalog, BY_IMPORT, now()).unwrap();
        tx.commit().unwrap();
    }

    fn audit_rows(store: &ServerStore) -> i64 {
        store
            .conn()
            .query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_change_makes_a_version_and_the_same_item_again_makes_none() {
        let (_dir, mut store) = store();
        let demo = Catalog::demo();
        import(&mut store, &demo);
        assert_eq!(history(store.conn(), "SB001").unwrap().len(), 1);
        // Importing the same catalog again records nothing.
        import(&mut store, &demo);
        assert_eq!(history(store.conn(), "SB001").unwrap().len(), 1);

        let mut item = demo.item("SB001").unwrap().clone();
        let saved = save_item(
            &mut store,
            item.clone(),
            Save::Edit { base: None },
            "a",
            now(),
        );
        assert_eq!(saved.unwrap(), Saved::Unchanged);
        assert_eq!(audit_rows(&store), 0);

        item.fee_fen = 1250;
        let base = Some(item.version);
        let saved = save_item(&mut store, item.clone(), Save::Edit { base }, "a", now());
        let next = demo.version + 1;
        assert_eq!(saved.unwrap(), Saved::Published(next));
        let catalog = store.catalog().unwrap().unwrap();
        assert_eq!(catalog.version, next);
        let sb = catalog.item("SB001").unwrap();
        assert_eq!((sb.version, sb.fee_fen), (next, 1250));
        // Other items keep their versions.
        assert_eq!(catalog.item("WJ002").unwrap().version, 1);
        let h = history(store.conn(), "SB001").unwrap();
        assert_eq!(
            h.iter().map(|v| v.item.version).collect::<Vec<_>>(),
            [next, 1]
        );
        assert_eq!(h[0].by, "a");
        assert_eq!(h[1].by, BY_IMPORT);
        assert_eq!(history(store.conn(), "WJ002").unwrap().len(), 1);
        assert_eq!(audit_rows(&store), 1);

        // A form opened at the old version is refused; nothing changes.
        item.fee_fen = 99;
        let stale = save_item(&mut store, item, Save::Edit { base: Some(1) }, "b", now());
        assert!(matches!(stale, Err(Error::BadRequest(m)) if m.contains("已被修改")));
        assert_eq!(store.catalog().unwrap().unwrap().version, next);
    }

    #[test]
    fn new_items_get_the_next_version_and_bad_catalogs_are_refused() {
        let (_dir, mut store) = store();
        let demo = Catalog::demo();
        import(&mut store, &demo);
        let mut item = demo.item("SB001").unwrap().clone();
        let taken = save_item(&mut store, item.clone(), Save::New, "a", now());
        assert!(matches!(taken, Err(Error::BadRequest(m)) if m.contains("已存在")));
        item.code = "XX001".into();
        assert_eq!(
            save_item(&mut store, item.clone(), Save::New, "a", now()).unwrap(),
            Saved::Published(demo.version + 1)
        );
        // The catalog's own checks still apply.
        item.code = "XX002".into();
        item.promised_days = 0;
        let refused = save_item(&mut store, item, Save::New, "a", now());
        assert!(matches!(refused, Err(Error::BadRequest(m)) if m.contains("承诺时限")));
        let catalog = store.catalog().unwrap().unwrap();
        assert_eq!(catalog.items.len(), demo.items.len() + 1);
        assert!(catalog.item("XX002").is_none());
        assert!(history(store.conn(), "XX002").unwrap().is_empty());
    }

    #[test]
    fn without_a_catalog_a_new_item_starts_one() {
        let (_dir, mut store) = store();
        let mut item = Catalog::demo().items[0].clone();
        item.version = 7;
        assert_eq!(
            save_item(&mut store, item, Save::New, "a", now()).unwrap(),
            Saved::Published(1)
        );
        let catalog = store.catalog().unwrap().unwrap();
        assert_eq!((catalog.version, catalog.items[0].version), (1, 1));
    }
}

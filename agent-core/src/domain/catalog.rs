//! The service catalog (事项目录): what a village point may register, what each item needs,
//! what it costs and how long it may take. Edited only at the district; flows down to devices.

use serde::{Deserialize, Serialize};

/// Where an item is handled once the township has accepted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandlingLevel {
    /// Handled and completed at the township service center.
    Township,
    /// Forwarded to a district department window (窗口).
    Window,
}

/// The kind of item, as counties classify them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// 即办件: done on the spot once materials are complete.
    Immediate,
    /// 承诺件: done within the promised working days.
    Promised,
    /// 上报件: needs approval higher up; the promise covers the local part.
    Reported,
}

/// Whether the point must see the original or keep a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaterialForm {
    /// 原件: shown and handed back, or passed on and returned with the result.
    Original,
    /// 复印件: a copy kept with the ticket.
    Copy,
}

impl MaterialForm {
    /// The name on forms and in the public catalog.
    pub fn label(self) -> &'static str {
        match self {
            MaterialForm::Original => "原件",
            MaterialForm::Copy => "复印件",
        }
    }
}

/// One material an item requires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequiredMaterial {
    pub name: String,
    pub form: MaterialForm,
    /// How many copies (or originals) the point collects.
    pub copies: u32,
}

/// Per-stage budgets in working days; a stage over its budget is flagged even when the
/// whole ticket is within its promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct StageBudgets {
    /// From `received` at the township to its first decision.
    pub township_review: u32,
    /// From `forwarded` to `completed` at the window (window items only).
    pub window_handling: u32,
    /// From `completed` to delivery at the village point.
    pub return_to_village: u32,
}

/// One catalog item (事项).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Stable code, e.g. `SB001`.
    pub code: String,
    /// Catalog version this item definition belongs to; tickets keep the version they
    /// were registered under.
    pub version: u32,
    pub name: String,
    /// Category as the public catalog lists it (行政许可, 公共服务, 行政确认 …).
    pub category: String,
    /// Department responsible (人社局, 卫健局 …).
    pub department: String,
    pub level: HandlingLevel,
    /// The district window that handles it when `level` is `Window`.
    pub window: Option<String>,
    pub kind: ItemKind,
    pub materials: Vec<RequiredMaterial>,
    /// Statutory fee in fen (0.01 yuan); 0 for free items.
    pub fee_fen: i64,
    /// Legal basis of the fee (or of the item when free).
    pub legal_basis: String,
    /// Promised working days after acceptance.
    pub promised_days: u32,
    pub stages: StageBudgets,
}

/// The whole catalog as the district publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    pub version: u32,
    pub items: Vec<Item>,
}

/// Why a catalog cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    #[error("事项目录格式错误：{0}")]
    Format(#[from] serde_json::Error),
    #[error("事项目录中编码“{0}”重复")]
    DuplicateCode(String),
    #[error("事项“{0}”的承诺时限不能为0（即办件除外）")]
    NoPromise(String),
}

impl Catalog {
    /// The district windows its items name, sorted, each once.
    pub fn windows(&self) -> Vec<String> {
        let mut names: Vec<String> = self.items.iter().filter_map(|i| i.window.clone()).collect();
        names.sort();
        names.dedup();
        names
    }

    /// The demo catalog shipped with Daiban, drawn from the services the seed documents
    /// name; a district replaces it with its own.
    pub fn demo() -> Catalog {
        Self::from_json(include_str!("../../data/demo-catalog.json")).unwrap_or(Catalog {
            version: 0,
            items: Vec::new(),
        })
    }

    /// Parse and check a catalog as the district publishes it (JSON).
    pub fn from_json(text: &str) -> Result<Catalog, CatalogError> {
        let catalog: Catalog = serde_json::from_str(text)?;
        let mut seen = std::collections::HashSet::new();
        for item in &catalog.items {
            if !seen.insert(item.code.as_str()) {
                return Err(CatalogError::DuplicateCode(item.code.clone()));
            }
            if item.promised_days == 0 && item.kind != ItemKind::Immediate {
                return Err(CatalogError::NoPromise(item.code.clone()));
            }
        }
        Ok(catalog)
    }

    /// The current definition of an item.
    pub fn item(&self, code: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.code == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_catalog_loads_and_is_consistent() {
        let c = Catalog::demo();
        assert!(
            c.items.len() >= 20,
            "demo catalog has {} items",
            c.items.len()
        );
        for i in &c.items {
            assert!(!i.materials.is_empty(), "{} has no materials", i.code);
            assert_eq!(
                i.level == HandlingLevel::Window,
                i.window.is_some(),
                "{}",
                i.code
            );
            assert!(i.fee_fen >= 0);
        }
        let sb = c.item("SB001").expect("workload item SB001");
        assert_eq!(sb.name, "失业证办理");
        assert_eq!(sb.promised_days, 5);
    }

    #[test]
    fn rejects_duplicate_codes_and_garbage() {
        let mut c = Catalog::demo();
        let first = c.items[0].clone();
        c.items.push(first);
        let text = serde_json::to_string(&c).unwrap();
        assert!(matches!(
            Catalog::from_json(&text),
            Err(CatalogError::DuplicateCode(_))
        ));
        assert!(matches!(
            Catalog::from_json("{"),
            Err(CatalogError::Format(_))
        ));
    }
}

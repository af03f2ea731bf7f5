//! Comparing two versions of a catalog: which changes break clients.
//!
//! Clients branch on the stable code, the status and the category, and decide whether to
//! retry from the retry class. Removing a code, moving it to another status or category,
//! making its retry class stricter or changing its wire spelling breaks code written against
//! the old catalog; adding a code, loosening a retry class or rewording a title does not.
//!
//! ```
//! use rebuff_core::Catalog;
//! use rebuff_core::diff::{Change, diff};
//!
//! let old = Catalog::from_toml_str("old.toml", r#"
//! [catalog]
//! name = "demo"
//! dialect = "rebuff"
//! type_uri = "https://example.com/errors#{anchor}"
//!
//! [[error]]
//! code = "not_found"
//! status = 404
//! category = "not_found_error"
//! title = "Not found"
//! when = "The resource does not exist."
//! fix = "Check the id."
//! retry = "never"
//! "#)?;
//! let new = Catalog::from_toml_str("new.toml", r#"
//! [catalog]
//! name = "demo"
//! dialect = "rebuff"
//! type_uri = "https://example.com/errors#{anchor}"
//!
//! [[error]]
//! code = "not_found"
//! status = 410
//! category = "not_found_error"
//! title = "Not found"
//! when = "The resource does not exist."
//! fix = "Check the id."
//! retry = "never"
//! "#)?;
//! let changes = diff(&old, &new);
//! assert_eq!(changes.len(), 1);
//! assert!(matches!(&changes[0], Change::StatusChanged { code, .. } if code == "not_found"));
//! assert!(changes[0].is_breaking());
//! assert_eq!(changes[0].to_string(), "`not_found`: status changed from 404 to 410");
//! # Ok::<(), rebuff_core::CatalogError>(())
//! ```

use std::collections::HashSet;
use std::fmt;

use http::StatusCode;

use crate::catalog::{Catalog, Entry, RetryClass};

/// One difference between two catalogs, for one stable code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// The code is gone from the new catalog.
    Removed {
        /// The stable code.
        code: String,
    },
    /// The code is new.
    Added {
        /// The stable code.
        code: String,
    },
    /// The code is answered with another HTTP status.
    StatusChanged {
        /// The stable code.
        code: String,
        /// The status before.
        old: StatusCode,
        /// The status after.
        new: StatusCode,
    },
    /// The code moved to another category.
    CategoryChanged {
        /// The stable code.
        code: String,
        /// The category before.
        old: String,
        /// The category after.
        new: String,
    },
    /// The retry class allows fewer retries than before.
    RetryStricter {
        /// The stable code.
        code: String,
        /// The class before.
        old: RetryClass,
        /// The class after.
        new: RetryClass,
    },
    /// The retry class allows more retries than before.
    RetryLooser {
        /// The stable code.
        code: String,
        /// The class before.
        old: RetryClass,
        /// The class after.
        new: RetryClass,
    },
    /// The code is spelled differently on the wire (`None`: no code member is sent).
    WireCodeChanged {
        /// The stable code.
        code: String,
        /// The wire spelling before.
        old: Option<String>,
        /// The wire spelling after.
        new: Option<String>,
    },
    /// The title was reworded.
    TitleChanged {
        /// The stable code.
        code: String,
        /// The title before.
        old: String,
        /// The title after.
        new: String,
    },
}

impl Change {
    /// The stable code the change is about.
    pub fn code(&self) -> &str {
        match self {
            Change::Removed { code }
            | Change::Added { code }
            | Change::StatusChanged { code, .. }
            | Change::CategoryChanged { code, .. }
            | Change::RetryStricter { code, .. }
            | Change::RetryLooser { code, .. }
            | Change::WireCodeChanged { code, .. }
            | Change::TitleChanged { code, .. } => code,
        }
    }

    /// Whether a client written against the old catalog may misbehave with the new one.
    pub fn is_breaking(&self) -> bool {
        match self {
            Change::Removed { .. }
            | Change::StatusChanged { .. }
            | Change::CategoryChanged { .. }
            | Change::RetryStricter { .. }
            | Change::WireCodeChanged { .. } => true,
            Change::Added { .. } | Change::RetryLooser { .. } | Change::TitleChanged { .. } => false,
        }
    }
}

struct Wire<'a>(&'a Option<String>);

impl fmt::Display for Wire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(w) => write!(f, "`{w}`"),
            None => f.write_str("(no code member)"),
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Removed { code } => write!(f, "`{code}`: code removed"),
            Change::Added { code } => write!(f, "`{code}`: code added"),
            Change::StatusChanged { code, old, new } => {
                write!(f, "`{code}`: status changed from {} to {}", old.as_u16(), new.as_u16())
            }
            Change::CategoryChanged { code, old, new } => {
                write!(f, "`{code}`: category changed from `{old}` to `{new}`")
            }
            Change::RetryStricter { code, old, new } => {
                write!(f, "`{code}`: retry class made stricter, from `{old}` to `{new}`")
            }
            Change::RetryLooser { code, old, new } => {
                write!(f, "`{code}`: retry class loosened, from `{old}` to `{new}`")
            }
            Change::WireCodeChanged { code, old, new } => {
                write!(f, "`{code}`: wire code changed from {} to {}", Wire(old), Wire(new))
            }
            Change::TitleChanged { code, old, new } => {
                write!(f, "`{code}`: title changed from {old:?} to {new:?}")
            }
        }
    }
}

/// The changes from `old` to `new`: for each code of `old` in catalog order, its removal or
/// its changes (status, category, retry class, wire code, title), then the added codes in
/// `new`'s order.
pub fn diff(old: &Catalog, new: &Catalog) -> Vec<Change> {
    let mut out = Vec::new();
    for o in old.entries() {
        match new.get(&o.code) {
            None => out.push(Change::Removed { code: o.code.clone() }),
            Some(n) => entry_changes(o, n, &mut out),
        }
    }
    let known: HashSet<&str> = old.entries().iter().map(|e| e.code.as_str()).collect();
    out.extend(
        new.entries()
            .iter()
            .filter(|n| !known.contains(n.code.as_str()))
            .map(|n| Change::Added { code: n.code.clone() }),
    );
    out
}

fn entry_changes(o: &Entry, n: &Entry, out: &mut Vec<Change>) {
    let code = || o.code.clone();
    if o.status != n.status {
        out.push(Change::StatusChanged { code: code(), old: o.status, new: n.status });
    }
    if o.category != n.category {
        out.push(Change::CategoryChanged { code: code(), old: o.category.clone(), new: n.category.clone() });
    }
    match o.retry.strictness().cmp(&n.retry.strictness()) {
        std::cmp::Ordering::Less => {
            out.push(Change::RetryStricter { code: code(), old: o.retry, new: n.retry })
        }
        std::cmp::Ordering::Greater => {
            out.push(Change::RetryLooser { code: code(), old: o.retry, new: n.retry });
        }
        std::cmp::Ordering::Equal => {}
    }
    if o.wire_code != n.wire_code {
        out.push(Change::WireCodeChanged {
            code: code(),
            old: o.wire_code.clone(),
            new: n.wire_code.clone(),
        });
    }
    if o.title != n.title {
        out.push(Change::TitleChanged { code: code(), old: o.title.clone(), new: n.title.clone() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(entries: &[(&str, u16, &str, &str, &str)]) -> Catalog {
        let mut text = String::from(
            "[catalog]\nname = \"t\"\ndialect = \"rebuff\"\ntype_uri = \"https://e.x/errors#{anchor}\"\n",
        );
        for (code, status, category, title, retry) in entries {
            let masked = if *status >= 500 { "masked = true\n" } else { "" };
            text.push_str(&format!(
                "\n[[error]]\ncode = \"{code}\"\nstatus = {status}\ncategory = \"{category}\"\n\
                 title = \"{title}\"\nwhen = \"w\"\nfix = \"f\"\nretry = \"{retry}\"\n{masked}"
            ));
        }
        Catalog::from_toml_str("test.toml", &text).unwrap_or_else(|e| panic!("test catalog: {e}"))
    }

    const BASE: &[(&str, u16, &str, &str, &str)] = &[
        ("not_found", 404, "not_found_error", "Not found", "never"),
        ("rate_limited", 429, "rate_limit_error", "Too many requests", "retry_after"),
        ("internal_error", 500, "api_error", "Internal error", "backoff"),
    ];

    #[test]
    fn identical_catalogs_have_no_changes() {
        assert_eq!(diff(&catalog(BASE), &catalog(BASE)), Vec::new());
        let std = Catalog::standard();
        assert!(diff(std, std).is_empty());
    }

    #[test]
    fn removed_and_added_codes() {
        let new = catalog(&[BASE[0], BASE[1], ("gone_away", 410, "not_found_error", "Gone", "never")]);
        let changes = diff(&catalog(BASE), &new);
        assert_eq!(
            changes,
            vec![
                Change::Removed { code: "internal_error".into() },
                Change::Added { code: "gone_away".into() }
            ]
        );
        assert!(changes[0].is_breaking());
        assert!(!changes[1].is_breaking());
        assert_eq!(changes[0].code(), "internal_error");
    }

    #[test]
    fn status_and_category_changes_break() {
        let new = catalog(&[("not_found", 410, "gone_error", "Not found", "never"), BASE[1], BASE[2]]);
        let changes = diff(&catalog(BASE), &new);
        assert_eq!(
            changes,
            vec![
                Change::StatusChanged {
                    code: "not_found".into(),
                    old: StatusCode::NOT_FOUND,
                    new: StatusCode::GONE
                },
                Change::CategoryChanged {
                    code: "not_found".into(),
                    old: "not_found_error".into(),
                    new: "gone_error".into()
                },
            ]
        );
        assert!(changes.iter().all(Change::is_breaking));
    }

    #[test]
    fn retry_direction_decides_breaking() {
        let new = catalog(&[
            BASE[0],
            ("rate_limited", 429, "rate_limit_error", "Too many requests", "never"),
            ("internal_error", 500, "api_error", "Internal error", "retry_after"),
        ]);
        let changes = diff(&catalog(BASE), &new);
        assert_eq!(
            changes,
            vec![
                Change::RetryStricter {
                    code: "rate_limited".into(),
                    old: RetryClass::RetryAfter,
                    new: RetryClass::Never
                },
                Change::RetryLooser {
                    code: "internal_error".into(),
                    old: RetryClass::Backoff,
                    new: RetryClass::RetryAfter
                },
            ]
        );
        assert!(changes[0].is_breaking());
        assert!(!changes[1].is_breaking());
    }

    #[test]
    fn title_change_is_not_breaking() {
        let new =
            catalog(&[("not_found", 404, "not_found_error", "No such resource", "never"), BASE[1], BASE[2]]);
        let changes = diff(&catalog(BASE), &new);
        assert_eq!(changes.len(), 1);
        assert!(!changes[0].is_breaking());
        assert_eq!(
            changes[0].to_string(),
            "`not_found`: title changed from \"Not found\" to \"No such resource\""
        );
    }

    #[test]
    fn profiles_differ_in_wire_codes_and_titles_only() {
        let std = Catalog::standard();
        let arize = Catalog::builtin("arize").unwrap_or_else(|| panic!("arize is built in"));
        let changes = diff(std, arize);
        assert!(changes.iter().any(|c| matches!(c, Change::WireCodeChanged { .. })));
        assert!(
            !changes.iter().any(|c| matches!(c, Change::Removed { .. } | Change::Added { .. })),
            "a profile has the same codes as its base: {changes:?}"
        );
        assert!(
            !changes.iter().any(|c| matches!(c, Change::RetryStricter { .. } | Change::RetryLooser { .. }))
        );
    }

    #[test]
    fn display_names_code_and_values() {
        let c = Change::WireCodeChanged { code: "x".into(), old: Some("X".into()), new: None };
        assert_eq!(c.to_string(), "`x`: wire code changed from `X` to (no code member)");
        assert!(c.is_breaking());
        let c =
            Change::RetryStricter { code: "x".into(), old: RetryClass::Backoff, new: RetryClass::AfterFix };
        assert_eq!(c.to_string(), "`x`: retry class made stricter, from `backoff` to `after_fix`");
        assert_eq!(Change::Removed { code: "x".into() }.to_string(), "`x`: code removed");
    }
}

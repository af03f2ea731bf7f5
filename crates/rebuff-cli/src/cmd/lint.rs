//! `rebuff lint CATALOG`: load a catalog the way a service would, and report what is wrong.

use std::collections::BTreeMap;
use std::process::ExitCode;

use rebuff_core::Catalog;

use super::{failure, load_catalog};

/// Check a catalog: it loads, and has no lint-level problems.
///
/// A catalog that does not load (malformed TOML, duplicate code, unknown status, unmasked
/// 5xx, override of a missing code...) is reported with its file, line and entry, and the
/// exit status is 1. Lint-level problems (an empty `fix`, two codes of a base catalog sharing
/// a wire code or docs anchor) are printed as warnings; the exit status stays 0.
///
/// `--for layers` also checks that the catalog has every code rebuff-axum's layers and
/// extractors can raise, and `--for server` every code the reference API answers with; a
/// catalog that lacks some fails (exit 1) with all of them named.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The catalog file (or a built-in catalog name such as `standard` or `arize`).
    #[arg(value_name = "CATALOG")]
    catalog: String,
    /// Also check that the catalog has the codes of what will serve it.
    #[arg(long = "for", value_name = "USE", value_enum)]
    for_use: Option<Use>,
}

/// What a catalog will be served by, for `--for`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Use {
    /// rebuff-axum's layers and extractors (`ProblemLayer::new` checks the same).
    Layers,
    /// The reference API (`rebuff serve --catalog` checks the same).
    Server,
}

/// A problem that does not stop the catalog from loading.
#[derive(Debug, PartialEq, Eq)]
struct Warning {
    line: Option<usize>,
    entry: String,
    message: String,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let catalog = load_catalog(&args.catalog)?;
    match args.for_use {
        None => {}
        Some(Use::Layers) => {
            let codes = rebuff_axum::codes();
            catalog
                .require(codes.iter().map(|c| c.as_str()), "rebuff-axum's layers and extractors")
                .map_err(|e| failure(format!("{}: {e}", args.catalog)))?;
        }
        Some(Use::Server) => {
            rebuff_server::check_catalog(&catalog).map_err(|e| failure(format!("{}: {e}", args.catalog)))?;
        }
    }
    // The text is read again only to point warnings at a line; a built-in has none.
    let text = std::fs::read_to_string(&args.catalog).unwrap_or_default();
    let warnings = warnings(&catalog, &text);
    for w in &warnings {
        let line = w.line.map(|l| format!(":{l}")).unwrap_or_default();
        println!("warning: {}{line}: entry `{}`: {}", args.catalog, w.entry, w.message);
    }
    let extends = catalog.extends().map(|b| format!(", extends {b}")).unwrap_or_default();
    let checked = match args.for_use {
        None => "",
        Some(Use::Layers) => "; has every code rebuff-axum's layers raise",
        Some(Use::Server) => "; has every code the reference API answers with",
    };
    let warned = match warnings.len() {
        0 => String::new(),
        1 => " with 1 warning".to_owned(),
        n => format!(" with {n} warnings"),
    };
    println!(
        "ok{warned}: {}: catalog `{}` (dialect {}, {} code{}{extends}){checked}",
        args.catalog,
        catalog.name(),
        catalog.dialect(),
        catalog.entries().len(),
        if catalog.entries().len() == 1 { "" } else { "s" }
    );
    Ok(ExitCode::SUCCESS)
}

fn warnings(catalog: &Catalog, text: &str) -> Vec<Warning> {
    let mut out = Vec::new();
    for e in catalog.entries() {
        if e.fix.trim().is_empty() {
            out.push(Warning {
                line: line_of_entry(text, &e.code),
                entry: e.code.clone(),
                message: "`fix` is empty: say how the caller fixes it".to_owned(),
            });
        }
    }
    // In a profile several codes may share a spelling on purpose (`UNAUTHORIZED` for every
    // credential problem); in a base catalog that makes two codes indistinguishable.
    if catalog.extends().is_none() {
        let mut by_wire: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut by_anchor: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for e in catalog.entries() {
            if let Some(w) = e.wire_code.as_deref() {
                by_wire.entry(w).or_default().push(&e.code);
            }
            by_anchor.entry(&e.anchor).or_default().push(&e.code);
        }
        for (what, groups) in [("wire code", by_wire), ("docs anchor", by_anchor)] {
            for (value, codes) in groups.into_iter().filter(|(_, c)| c.len() > 1) {
                let (first, rest) = (codes[0], &codes[1..]);
                for code in rest {
                    out.push(Warning {
                        line: line_of_entry(text, code),
                        entry: (*code).to_owned(),
                        message: format!(
                            "shares the {what} `{value}` with `{first}`; clients cannot tell them apart"
                        ),
                    });
                }
            }
        }
    }
    out.sort_by_key(|w| w.line);
    out
}

/// The line of `[override.code]`, else of `code = "code"`, in the catalog text.
fn line_of_entry(text: &str, code: &str) -> Option<usize> {
    let quoted = format!("\"{code}\"");
    let header = |t: &str| {
        t.strip_prefix("[override.")
            .and_then(|r| r.strip_suffix(']'))
            .is_some_and(|k| k == code || k == quoted)
    };
    let code_key = |t: &str| {
        t.strip_prefix("code")
            .and_then(|r| r.trim_start().strip_prefix('='))
            .is_some_and(|v| v.split('#').next().unwrap_or_default().trim() == quoted)
    };
    let find = |pred: &dyn Fn(&str) -> bool| text.lines().position(|l| pred(l.trim())).map(|i| i + 1);
    find(&header).or_else(|| find(&code_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "[catalog]\nname = \"t\"\ndialect = \"rebuff\"\ntype_uri = \"https://e.x/errors#{anchor}\"\n";

    fn entry(code: &str, anchor: Option<&str>) -> String {
        let anchor = anchor.map(|a| format!("anchor = \"{a}\"\n")).unwrap_or_default();
        format!(
            "\n[[error]]\ncode = \"{code}\"\nstatus = 404\ncategory = \"c\"\ntitle = \"t\"\nwhen = \"w\"\n\
             fix = \"f\"\nretry = \"never\"\n{anchor}"
        )
    }

    #[test]
    fn builtin_catalogs_have_no_warnings() {
        for name in Catalog::PROFILES {
            let c = Catalog::builtin(name).unwrap_or_else(|| panic!("{name} is built in"));
            assert_eq!(warnings(c, ""), Vec::new(), "{name}");
        }
    }

    #[test]
    fn shared_anchor_in_a_base_catalog_is_reported_with_its_line() {
        let text = format!("{HEADER}{}{}", entry("a_code", Some("same")), entry("b_code", Some("same")));
        let c = Catalog::from_toml_str("t.toml", &text).unwrap_or_else(|e| panic!("{e}"));
        let w = warnings(&c, &text);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].entry, "b_code");
        assert_eq!(w[0].line, line_of_entry(&text, "b_code"));
        assert!(w[0].message.contains("docs anchor `same`"));
    }
}

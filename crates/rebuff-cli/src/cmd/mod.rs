//! One module per subcommand, and what they share: loading catalogs, finding a code, printing
//! a response, and mapping errors to exit statuses.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use clap::builder::{PossibleValue, PossibleValuesParser};
use rebuff_core::catalog::ErrorKind;
use rebuff_core::{Catalog, Entry};
use rebuff_sqlite::AccountStore;

pub(crate) mod diff;
pub(crate) mod docs;
pub(crate) mod explain;
pub(crate) mod keys;
pub(crate) mod lint;
pub(crate) mod parse;
pub(crate) mod probe;
pub(crate) mod render;
pub(crate) mod serve;
pub(crate) mod users;

/// Where a server keeps its accounts (organisations, users, API keys): the SQLite file, or
/// PostgreSQL when the server runs with `--postgres`.
#[derive(Debug, clap::Args)]
pub(crate) struct AccountsArgs {
    /// The server's SQLite database.
    #[arg(long, env = "REBUFF_DB", default_value = "./rebuff.db")]
    pub(crate) db: PathBuf,
    /// The server's PostgreSQL, when it keeps accounts there (`rebuff serve --postgres`):
    /// postgres://user@host:port/database.
    #[arg(long, env = "REBUFF_POSTGRES_URL")]
    pub(crate) postgres: Option<String>,
}

impl AccountsArgs {
    /// The accounts as the server with these options sees them: in PostgreSQL with
    /// `--postgres`, else in the SQLite file (created and migrated if need be).
    pub(crate) async fn open(&self) -> anyhow::Result<Arc<dyn AccountStore>> {
        if let Some(url) = &self.postgres {
            let pg = rebuff_server::PgStore::connect(url.as_str()).await.map_err(|e| anyhow!("{e}"))?;
            return Ok(Arc::new(pg));
        }
        let sqlite = rebuff_sqlite::SqliteStore::open(&self.db)
            .map_err(|e| anyhow!("cannot open the database {}: {e}", self.db.display()))?;
        Ok(Arc::new(sqlite))
    }
}

/// The thing checked failed (exit 1), as opposed to a usage or I/O problem (exit 2).
#[derive(Debug)]
pub(crate) struct Failure(pub(crate) String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

/// An error that exits with status 1.
pub(crate) fn failure(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure(message.into()))
}

/// Prints the error, if any, and picks the exit status.
pub(crate) fn finish(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<Failure>().is_some() { ExitCode::from(1) } else { ExitCode::from(2) }
        }
    }
}

/// Loads a catalog file: an unreadable file is a usage problem (exit 2), an invalid catalog a
/// failure (exit 1). The error names the file, line and entry.
pub(crate) fn load_path(path: &Path) -> anyhow::Result<Catalog> {
    Catalog::from_path(path)
        .map_err(|e| if e.kind() == ErrorKind::Io { anyhow!(e.to_string()) } else { failure(e.to_string()) })
}

/// The built-in catalog names, for messages.
fn builtin_names() -> String {
    let mut names = vec!["standard"];
    names.extend(Catalog::PROFILES);
    names.join(", ")
}

/// Loads `spec` as a built-in catalog when it looks like a name (no `/`, no `.toml`) and is
/// one, else as a file.
pub(crate) fn load_catalog(spec: &str) -> anyhow::Result<Catalog> {
    let looks_like_name = !spec.contains('/') && !spec.contains('\\') && !spec.ends_with(".toml");
    if looks_like_name {
        if let Some(c) = Catalog::builtin(spec) {
            return Ok(c.clone());
        }
        if !Path::new(spec).exists() {
            return Err(anyhow!(
                "`{spec}` is neither a catalog file nor a built-in catalog ({})",
                builtin_names()
            ));
        }
    }
    load_path(Path::new(spec))
}

fn profile_parser() -> PossibleValuesParser {
    PossibleValuesParser::new(Catalog::PROFILES.map(|p| {
        let v = PossibleValue::new(p);
        if p == "rebuff" { v.alias("standard") } else { v }
    }))
}

/// `--profile P | --catalog FILE`, shared by the commands that work on one catalog.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct CatalogArgs {
    /// A built-in profile.
    #[arg(long, short, value_name = "PROFILE", value_parser = profile_parser())]
    profile: Option<String>,
    /// A catalog file instead of a built-in profile.
    #[arg(long, short, value_name = "FILE", conflicts_with = "profile")]
    catalog: Option<PathBuf>,
}

impl CatalogArgs {
    /// The catalog asked for, or the `default` built-in profile, or none.
    pub(crate) fn load(&self, default: Option<&str>) -> anyhow::Result<Option<Catalog>> {
        if let Some(path) = &self.catalog {
            return load_path(path).map(Some);
        }
        match self.profile.as_deref().or(default) {
            None => Ok(None),
            Some(name) => Catalog::builtin(name)
                .cloned()
                .map(Some)
                .ok_or_else(|| anyhow!("no built-in profile `{name}` ({})", builtin_names())),
        }
    }

    /// Like [`CatalogArgs::load`] with a default, so never `None`.
    pub(crate) fn load_or(&self, default: &str) -> anyhow::Result<Catalog> {
        self.load(Some(default))?.with_context(|| format!("no built-in profile `{default}`"))
    }
}

/// What a user typed as a code, found in a catalog.
#[derive(Debug)]
pub(crate) struct Found<'c> {
    /// The entry.
    pub(crate) entry: &'c Entry,
    /// The wire code typed, when it was one and not the stable code.
    pub(crate) via_wire: Option<String>,
}

/// Finds a code by its stable name (also in another case or with `-`), else by its wire
/// spelling in this catalog. `Err` carries close matches for the message.
pub(crate) fn find_code<'c>(catalog: &'c Catalog, input: &str) -> Result<Found<'c>, Vec<String>> {
    if let Some(entry) = catalog.get(input) {
        return Ok(Found { entry, via_wire: None });
    }
    if catalog.by_wire_code(input).next().is_some()
        && let Some(entry) = catalog.identify(0, Some(input), None)
    {
        return Ok(Found { entry, via_wire: Some(input.to_owned()) });
    }
    let normalized = input.trim().to_ascii_lowercase().replace('-', "_");
    if let Some(entry) = catalog.get(&normalized) {
        return Ok(Found { entry, via_wire: None });
    }
    let wire = catalog
        .entries()
        .iter()
        .filter_map(|e| e.wire_code.as_deref())
        .find(|w| w.eq_ignore_ascii_case(input.trim()) || w.eq_ignore_ascii_case(&normalized));
    if let Some(w) = wire
        && let Some(entry) = catalog.identify(0, Some(w), None)
    {
        return Ok(Found { entry, via_wire: Some(w.to_owned()) });
    }
    Err(close_matches(catalog, &normalized))
}

/// Up to five stable or wire codes that look like `input`, closest first.
fn close_matches(catalog: &Catalog, input: &str) -> Vec<String> {
    let mut names: Vec<&str> = Vec::new();
    for e in catalog.entries() {
        names.push(&e.code);
        if let Some(w) = e.wire_code.as_deref() {
            names.push(w);
        }
    }
    names.sort_unstable();
    names.dedup();
    let limit = (input.len() / 3).max(2);
    let mut scored: Vec<(usize, &str)> = names
        .into_iter()
        .filter_map(|n| {
            let lower = n.to_ascii_lowercase();
            let d = levenshtein(&lower, input);
            let related = input.len() >= 3 && (lower.contains(input) || input.contains(lower.as_str()));
            (d <= limit || related).then_some((d, n))
        })
        .collect();
    scored.sort_unstable();
    scored.into_iter().take(5).map(|(_, n)| n.to_owned()).collect()
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The message for a code that is not in the catalog.
pub(crate) fn unknown_code_message(catalog: &Catalog, input: &str, matches: &[String]) -> String {
    let mut msg = format!("no code `{input}` in catalog `{}`", catalog.name());
    if matches.is_empty() {
        msg.push_str(&format!(
            "; it has {} codes, and `rebuff docs CATALOG` lists them",
            catalog.entries().len()
        ));
    } else {
        msg.push_str("; did you mean: ");
        msg.push_str(&matches.join(", "));
        msg.push('?');
    }
    msg
}

/// A response as `curl -i` shows it: status line, headers, blank line, pretty JSON body.
pub(crate) fn format_response<B: AsRef<[u8]>>(res: &http::Response<B>) -> String {
    let status = res.status();
    let mut out = format!("HTTP/1.1 {} {}\n", status.as_u16(), status.canonical_reason().unwrap_or(""));
    for (name, value) in res.headers() {
        out.push_str(name.as_str());
        out.push_str(": ");
        out.push_str(&String::from_utf8_lossy(value.as_bytes()));
        out.push('\n');
    }
    out.push('\n');
    let body = res.body().as_ref();
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => out.push_str(&serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string())),
        Err(_) => out.push_str(&String::from_utf8_lossy(body)),
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levenshtein_counts_edits() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("same", "same"), 0);
    }

    #[test]
    fn finds_stable_wire_and_misspelled_codes() {
        let arize = Catalog::builtin("arize").unwrap_or_else(|| panic!("built in"));
        let found = find_code(arize, "resource_not_found").unwrap_or_else(|_| panic!("stable code"));
        assert_eq!(found.entry.code, "resource_not_found");
        let found = find_code(arize, "RESOURCE_NOT_FOUND").unwrap_or_else(|_| panic!("wire code"));
        assert_eq!(found.entry.code, "resource_not_found");
        let close = find_code(arize, "resource_not_fund").err().unwrap_or_default();
        assert!(close.iter().any(|c| c.eq_ignore_ascii_case("resource_not_found")), "{close:?}");
    }
}

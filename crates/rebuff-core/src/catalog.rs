//! Catalogs: the one place an API declares its errors.
//!
//! A [`Catalog`] is loaded from TOML (see `docs/catalog-format.md`), validated, and, for a
//! profile, resolved against the catalog it extends, so that every [`Entry`] carries its final
//! presentation: wire spelling, title, type URI, message.
//!
//! A catalog may extend another one (`extends = "standard"` or a path): it inherits every
//! entry and may add `[[error]]` entries of its own, so a service keeps the standard codes
//! its layers raise and adds its own. A *profile* extends a catalog and adds nothing: it
//! changes presentation only.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use http::StatusCode;
use serde::Deserialize;
use toml::Spanned;

use crate::dialect::{Dialect, Written};

/// When a client may send the same request again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryClass {
    /// Sending it again gives the same answer.
    Never,
    /// Retry once the credential or session has been renewed.
    AfterReauth,
    /// Retry only after changing the request.
    AfterFix,
    /// Transient: retry with exponential backoff and jitter.
    Backoff,
    /// Retry after the delay the server gave (`Retry-After`), else with backoff.
    RetryAfter,
}

impl RetryClass {
    /// All classes, from the most to the least permissive for a client.
    pub const ALL: [RetryClass; 5] = [
        RetryClass::RetryAfter,
        RetryClass::Backoff,
        RetryClass::AfterReauth,
        RetryClass::AfterFix,
        RetryClass::Never,
    ];

    /// The spelling used in catalogs and on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            RetryClass::Never => "never",
            RetryClass::AfterReauth => "after_reauth",
            RetryClass::AfterFix => "after_fix",
            RetryClass::Backoff => "backoff",
            RetryClass::RetryAfter => "retry_after",
        }
    }

    /// Parses the catalog spelling.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Whether the identical request may be sent again without any change by the caller.
    pub const fn is_retryable(self) -> bool {
        matches!(self, RetryClass::Backoff | RetryClass::RetryAfter)
    }

    /// A rank where a higher number means a stricter class (fewer retries allowed); used by
    /// `rebuff diff` to call a change breaking.
    pub const fn strictness(self) -> u8 {
        match self {
            RetryClass::RetryAfter => 0,
            RetryClass::Backoff => 1,
            RetryClass::AfterReauth => 2,
            RetryClass::AfterFix => 3,
            RetryClass::Never => 4,
        }
    }

    /// A sentence for docs.
    pub const fn describe(self) -> &'static str {
        match self {
            RetryClass::Never => "Do not retry: the same request gets the same answer.",
            RetryClass::AfterReauth => "Retry after renewing the credential or session.",
            RetryClass::AfterFix => "Retry only after fixing the request.",
            RetryClass::Backoff => "Retry with exponential backoff and jitter.",
            RetryClass::RetryAfter => {
                "Retry after the delay in `Retry-After`; without one, back off exponentially."
            }
        }
    }
}

impl fmt::Display for RetryClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One error of a catalog, with its presentation fully resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Entry {
    /// The stable code (`lower_snake_case`), the same in every profile of the catalog.
    pub code: String,
    /// The HTTP status this error is answered with (in this profile).
    pub status: StatusCode,
    /// The error's type in the Stripe sense, as this profile spells it.
    pub category: String,
    /// A short summary that never changes between occurrences.
    pub title: String,
    /// The default human message when an occurrence has none; `None` sends no message.
    pub message: Option<String>,
    /// When this error happens.
    pub when: String,
    /// How the caller fixes it.
    pub fix: String,
    /// When a client may retry.
    pub retry: RetryClass,
    /// Whether the detail is replaced by the generic message (every 5xx is masked).
    pub masked: bool,
    /// The docs anchor.
    pub anchor: String,
    /// The code as spelled on the wire, or `None` when this profile sends no code for it.
    pub wire_code: Option<String>,
    /// The RFC 9457 `type` / documentation URI.
    pub type_uri: String,
    /// The code whose presentation this entry borrows in this profile (`present_as`).
    pub presented_as: Option<String>,
    /// The name of the class generated SDKs raise for this code (`sdk_class`), when the
    /// catalog names one; without it the name derives from the code.
    pub sdk_class: Option<String>,
}

/// The docs heading and summary that a profile gives to all entries of one status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct StatusSection {
    /// The anchor shared by the status's entries, if the profile sets one.
    pub anchor: Option<String>,
    /// The section heading.
    pub heading: Option<String>,
    /// The paragraph under the heading.
    pub summary: Option<String>,
}

type CodeIndex = HashMap<String, usize, foldhash::fast::RandomState>;

/// A validated, resolved catalog.
#[derive(Debug, Clone)]
pub struct Catalog {
    name: String,
    description: String,
    dialect: Dialect,
    type_uri: String,
    entries: Vec<Entry>,
    /// Entry positions by code: looked up for every error rendered, with a hasher made for short
    /// keys (std's SipHash costs several times more on a code; the codes are the catalog's own).
    index: CodeIndex,
    /// Each entry's fixed body members, written once (see [`Written`]), by entry position.
    written: Vec<Written>,
    sections: BTreeMap<u16, StatusSection>,
    base: Option<String>,
    files: Vec<PathBuf>,
}

impl Catalog {
    /// The catalog's short name (`rebuff`, `arize`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The paragraph at the top of the error reference.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The envelope used on the wire.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The type URI template (`{anchor}` and `{code}` placeholders).
    pub fn type_uri_template(&self) -> &str {
        &self.type_uri
    }

    /// The name of the catalog this one extends (a profile, or a catalog that adds codes to
    /// another).
    pub fn extends(&self) -> Option<&str> {
        self.base.as_deref()
    }

    /// The files this catalog was read from: its own first, then each file it extends, in
    /// order. Empty for a built-in catalog or one parsed from text; a built-in catalog that
    /// a file extends is not listed.
    pub fn source_files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Checks that the catalog has every code in `codes`, as something that answers with
    /// them must (the layers of a router, a server).
    ///
    /// `raised_by` says what raises them, for the message (`"the layers in use"`).
    ///
    /// # Errors
    /// [`MissingCodes`] naming every code the catalog lacks, each once, in the order given.
    pub fn require<'a>(
        &self,
        codes: impl IntoIterator<Item = &'a str>,
        raised_by: &str,
    ) -> Result<(), MissingCodes> {
        let mut missing: Vec<String> = Vec::new();
        for code in codes {
            if self.get(code).is_none() && !missing.iter().any(|m| m == code) {
                missing.push(code.to_owned());
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(MissingCodes { catalog: self.name.clone(), raised_by: raised_by.to_owned(), codes: missing })
        }
    }

    /// Every entry, in catalog order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry for a stable code.
    pub fn get(&self, code: &str) -> Option<&Entry> {
        self.index.get(code).map(|&i| &self.entries[i])
    }

    /// The entry for a stable code, with its fixed body members.
    pub(crate) fn entry_and_written(&self, code: &str) -> Option<(&Entry, &Written)> {
        self.index.get(code).map(|&i| (&self.entries[i], &self.written[i]))
    }

    /// Docs sections the profile declares per status.
    pub fn sections(&self) -> &BTreeMap<u16, StatusSection> {
        &self.sections
    }

    /// The entries a wire spelling stands for, in catalog order. Several stable codes may
    /// share one spelling in a profile (`UNAUTHORIZED` for every credential problem).
    pub fn by_wire_code<'a>(&'a self, wire: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries.iter().filter(move |e| e.wire_code.as_deref() == Some(wire))
    }

    /// The entry most likely meant by a parsed response: by wire code (preferring the entry
    /// that owns the spelling and is not presented as another), else by a type URI that only
    /// one entry has, else the most generic entry of that status.
    pub fn identify(&self, status: u16, wire: Option<&str>, type_uri: Option<&str>) -> Option<&Entry> {
        let by_status = |e: &&Entry| e.status.as_u16() == status;
        if let Some(w) = wire {
            let mut candidates: Vec<&Entry> =
                self.entries.iter().filter(|e| e.wire_code.as_deref() == Some(w)).collect();
            candidates.sort_by_key(|e| {
                (e.presented_as.is_some(), !e.code.eq_ignore_ascii_case(w), e.status.as_u16() != status)
            });
            if let Some(e) = candidates.first() {
                return Some(e);
            }
        }
        if let Some(t) = type_uri {
            // Only a type URI shared by no other entry identifies one code.
            let mut it = self.entries.iter().filter(|e| e.type_uri == t && e.presented_as.is_none());
            if let (Some(e), None) = (it.next(), it.next()) {
                return Some(e);
            }
        }
        let mut same_status: Vec<&Entry> =
            self.entries.iter().filter(by_status).filter(|e| e.presented_as.is_none()).collect();
        same_status.sort_by_key(|e| generic_code(status) != Some(e.code.as_str()));
        same_status.first().copied()
    }

    /// Parses a catalog from TOML text. `origin` names it in error messages; `extends` may
    /// only name a built-in catalog.
    ///
    /// # Errors
    /// A [`CatalogError`] naming the origin, line and entry when the text is not a valid
    /// catalog.
    pub fn from_toml_str(origin: &str, text: &str) -> Result<Catalog, CatalogError> {
        load(origin, text, None, 0)
    }

    /// Loads a catalog file; `extends` resolves built-in names and paths relative to the file.
    ///
    /// # Errors
    /// A [`CatalogError`] when the file cannot be read or is not a valid catalog.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Catalog, CatalogError> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| CatalogError {
            origin: origin.clone(),
            line: None,
            entry: None,
            kind: ErrorKind::Io,
            message: format!("cannot read the file: {e}"),
        })?;
        load(&origin, &text, Some(path), 0)
    }

    /// rebuff's standard catalog.
    pub fn standard() -> &'static Catalog {
        Self::builtin("standard").unwrap_or_else(|| unreachable!("the standard catalog is built in"))
    }

    /// A built-in catalog by name: `standard` (also `rebuff`) or a profile of it.
    pub fn builtin(name: &str) -> Option<&'static Catalog> {
        static CACHE: OnceLock<Vec<(&'static str, Catalog)>> = OnceLock::new();
        let all = CACHE.get_or_init(|| {
            BUILTINS
                .iter()
                .map(|(n, text)| {
                    let cat = load(&format!("builtin:{n}"), text, None, 0)
                        .unwrap_or_else(|e| panic!("built-in catalog {n} is invalid: {e}"));
                    (*n, cat)
                })
                .collect()
        });
        let name = if name == "rebuff" { "standard" } else { name };
        all.iter().find(|(n, _)| *n == name).map(|(_, c)| c)
    }

    /// The names accepted by [`Catalog::builtin`] as profiles (`rebuff` first).
    pub const PROFILES: [&'static str; 6] = ["rebuff", "arize", "dataxid", "mlops", "incidents", "apikeys"];
}

/// The generic code of each error status, in the standard catalog's spelling.
///
/// This is the one table of them: a bare error response of a status (a `404` from a router,
/// a `413` from a body limit) is rendered as its generic code, [`Catalog::identify`] prefers
/// it when only a status is known, and generated client tables fall back the same way.
pub const GENERIC_CODES: &[(u16, &str)] = &[
    (400, "bad_request"),
    (401, "authentication_required"),
    (403, "forbidden"),
    (404, "resource_not_found"),
    (405, "method_not_allowed"),
    (408, "request_timeout"),
    (409, "resource_conflict"),
    (413, "payload_too_large"),
    (415, "unsupported_media_type"),
    (422, "unprocessable_entity"),
    (429, "rate_limit_exceeded"),
    (500, "internal_error"),
    (502, "bad_gateway"),
    (503, "service_unavailable"),
    (504, "gateway_timeout"),
];

/// The generic code of `status` (see [`GENERIC_CODES`]).
pub fn generic_code(status: u16) -> Option<&'static str> {
    GENERIC_CODES.iter().find(|(s, _)| *s == status).map(|(_, c)| *c)
}

/// Whether `code` is the generic code of some status.
pub fn is_generic(code: &str) -> bool {
    GENERIC_CODES.iter().any(|(_, c)| *c == code)
}

const BUILTINS: &[(&str, &str)] = &[
    ("standard", include_str!("../catalog/standard.toml")),
    ("arize", include_str!("../catalog/profiles/arize.toml")),
    ("dataxid", include_str!("../catalog/profiles/dataxid.toml")),
    ("mlops", include_str!("../catalog/profiles/mlops.toml")),
    ("incidents", include_str!("../catalog/profiles/incidents.toml")),
    ("apikeys", include_str!("../catalog/profiles/apikeys.toml")),
];

/// What went wrong while loading a catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be read.
    Io,
    /// The TOML is malformed or has an unknown key or a value of the wrong type.
    Syntax,
    /// Two entries share a code.
    DuplicateCode,
    /// A status is not an HTTP error status (400..=599).
    InvalidStatus,
    /// A 5xx entry is not masked.
    UnmaskedServerError,
    /// A profile names a code that the catalog it extends does not have.
    UnknownCode,
    /// A value is out of its allowed set (code spelling, retry class, dialect...).
    InvalidValue,
    /// A profile tried to change more than presentation.
    NotPresentation,
    /// `extends` names nothing loadable, or extends too deep.
    Extends,
}

/// A catalog that cannot be loaded: names the file, the line and the entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogError {
    origin: String,
    line: Option<usize>,
    entry: Option<String>,
    kind: ErrorKind,
    message: String,
}

impl CatalogError {
    /// What kind of problem this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// The file (or built-in name) the problem is in.
    pub fn origin(&self) -> &str {
        &self.origin
    }
    /// The 1-based line, when known.
    pub fn line(&self) -> Option<usize> {
        self.line
    }
    /// The entry's code, when the problem is in one entry.
    pub fn entry(&self) -> Option<&str> {
        self.entry.as_deref()
    }
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if let Some(entry) = &self.entry {
            write!(f, "entry `{entry}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for CatalogError {}

/// Codes that something answers with and a catalog lacks; see [`Catalog::require`].
///
/// Its message names every missing code at once, so one start-up failure says everything to
/// add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingCodes {
    catalog: String,
    raised_by: String,
    codes: Vec<String>,
}

impl MissingCodes {
    /// The name of the catalog that lacks them.
    pub fn catalog(&self) -> &str {
        &self.catalog
    }

    /// The missing codes, each once.
    pub fn codes(&self) -> &[String] {
        &self.codes
    }
}

impl fmt::Display for MissingCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.codes.len();
        write!(
            f,
            "catalog `{}` lacks {n} code{} that {} can raise: {}; extend `standard` \
             (`extends = \"standard\"` in `[catalog]`) or add them as `[[error]]` entries",
            self.catalog,
            if n == 1 { "" } else { "s" },
            self.raised_by,
            self.codes.join(", ")
        )
    }
}

impl std::error::Error for MissingCodes {}

// ---- raw TOML shapes -------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    catalog: RawHeader,
    #[serde(default)]
    error: Vec<Spanned<RawEntry>>,
    #[serde(default)]
    status: BTreeMap<String, Spanned<RawStatus>>,
    #[serde(default, rename = "override")]
    overrides: BTreeMap<String, Spanned<RawOverride>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    name: String,
    #[serde(default)]
    description: String,
    dialect: Spanned<String>,
    type_uri: Option<String>,
    extends: Option<Spanned<String>>,
    #[serde(default)]
    code_case: Option<Spanned<String>>,
    #[serde(default)]
    titles: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    code: String,
    status: u16,
    category: String,
    title: String,
    message: Option<String>,
    when: String,
    fix: String,
    retry: String,
    #[serde(default)]
    masked: bool,
    anchor: Option<String>,
    sdk_class: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStatus {
    anchor: Option<String>,
    title: Option<String>,
    heading: Option<String>,
    summary: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOverride {
    wire_code: Option<String>,
    #[serde(default)]
    omit_code: bool,
    title: Option<String>,
    message: Option<String>,
    category: Option<String>,
    anchor: Option<String>,
    when: Option<String>,
    fix: Option<String>,
    present_as: Option<String>,
    sdk_class: Option<String>,
    // Present only to give a precise error: a profile may not change these.
    status: Option<toml::Value>,
    retry: Option<toml::Value>,
    masked: Option<toml::Value>,
}

// ---- loading -------------------------------------------------------------------------

struct Ctx<'a> {
    origin: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
    }

    fn err(
        &self,
        offset: Option<usize>,
        entry: Option<&str>,
        kind: ErrorKind,
        message: impl Into<String>,
    ) -> CatalogError {
        CatalogError {
            origin: self.origin.to_owned(),
            line: offset.map(|o| self.line_of(o)),
            entry: entry.map(str::to_owned),
            kind,
            message: message.into(),
        }
    }

    /// The line of a `[override.code]` or `[status.N]` header; table spans are not kept by the
    /// deserializer for dotted headers, so the header text is looked up instead.
    fn header_offset(&self, table: &str, key: &str) -> Option<usize> {
        let plain = format!("[{table}.{key}]");
        let quoted = format!("[{table}.\"{key}\"]");
        self.text.find(&plain).or_else(|| self.text.find(&quoted))
    }
}

const MAX_EXTENDS_DEPTH: usize = 8;

/// The `code` of the `[[error]]` entry that spans byte `offset`, for errors the typed parse
/// reports without naming it ("missing field `category`"). A second, untyped parse of the
/// same text keeps each entry's span; it fails only where the first failed on syntax, and
/// then no entry is named.
fn entry_code_at(text: &str, offset: usize) -> Option<String> {
    #[derive(Deserialize)]
    struct Entries {
        #[serde(default)]
        error: Vec<Spanned<toml::Table>>,
    }
    let entries: Entries = toml::from_str(text).ok()?;
    let entry = entries.error.into_iter().find(|e| e.span().contains(&offset))?;
    entry.into_inner().get("code")?.as_str().map(str::to_owned)
}

/// Loads one catalog text; `file` is where it was read from, if from a file (its directory
/// resolves a relative `extends`).
fn load(origin: &str, text: &str, file: Option<&Path>, depth: usize) -> Result<Catalog, CatalogError> {
    let cx = Ctx { origin, text };
    let dir = file.and_then(Path::parent);
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let msg = e.message().trim().to_owned();
        let at = e.span().map(|s| s.start);
        let entry = at.and_then(|at| entry_code_at(text, at));
        cx.err(at, entry.as_deref(), ErrorKind::Syntax, msg)
    })?;

    let dialect = Dialect::from_name(raw.catalog.dialect.get_ref()).ok_or_else(|| {
        cx.err(
            Some(raw.catalog.dialect.span().start),
            None,
            ErrorKind::InvalidValue,
            format!(
                "unknown dialect `{}` (expected one of: {})",
                raw.catalog.dialect.get_ref(),
                Dialect::ALL.map(|d| d.as_str()).join(", ")
            ),
        )
    })?;

    let (mut entries, base_name, inherited_uri, mut sections, mut files) = match &raw.catalog.extends {
        None => {
            if !raw.overrides.is_empty() {
                let (code, _) = raw.overrides.iter().next().expect("checked non-empty");
                return Err(cx.err(
                    cx.header_offset("override", code),
                    Some(code),
                    ErrorKind::Extends,
                    "`[override.*]` needs `extends` in `[catalog]`",
                ));
            }
            if raw.error.is_empty() {
                return Err(cx.err(
                    None,
                    None,
                    ErrorKind::InvalidValue,
                    "a catalog needs at least one `[[error]]` entry (or `extends` in `[catalog]`)",
                ));
            }
            (base_entries(&cx, &raw.error, None)?, None, None, BTreeMap::new(), Vec::new())
        }
        Some(ext) => {
            let base = resolve_extends(&cx, ext, dir, depth)?;
            // The entries this file adds come after the inherited ones; an inherited code
            // cannot be redefined (a profile or `[override.*]` changes its presentation).
            let own = base_entries(&cx, &raw.error, Some(&base))?;
            let mut entries = base.entries;
            entries.extend(own);
            (entries, Some(base.name), Some(base.type_uri), base.sections, base.files)
        }
    };
    if let Some(file) = file {
        files.insert(0, file.to_path_buf());
    }

    let type_uri = raw
        .catalog
        .type_uri
        .clone()
        .or(inherited_uri)
        .ok_or_else(|| cx.err(None, None, ErrorKind::InvalidValue, "`[catalog]` needs `type_uri`"))?;

    // Profile-level defaults.
    for (key, st) in &raw.status {
        let status = key.parse::<u16>().ok().filter(|s| (400..=599).contains(s)).ok_or_else(|| {
            cx.err(
                cx.header_offset("status", key),
                None,
                ErrorKind::InvalidStatus,
                format!("`[status.{key}]`: not an HTTP error status (400..=599)"),
            )
        })?;
        let st = st.get_ref();
        let section = sections.entry(status).or_default();
        if st.anchor.is_some() {
            section.anchor.clone_from(&st.anchor);
        }
        if st.heading.is_some() {
            section.heading.clone_from(&st.heading);
        }
        if st.summary.is_some() {
            section.summary.clone_from(&st.summary);
        }
        for e in entries.iter_mut().filter(|e| e.status.as_u16() == status) {
            if let Some(a) = &st.anchor {
                e.anchor.clone_from(a);
            }
            if let Some(t) = &st.title {
                e.title.clone_from(t);
            }
        }
    }

    if raw.catalog.extends.is_some() {
        let case = match raw.catalog.code_case.as_ref() {
            None => None,
            Some(c) => match c.get_ref().as_str() {
                "as_is" => None,
                "upper" => Some(true),
                "lower" => Some(false),
                other => {
                    return Err(cx.err(
                        Some(c.span().start),
                        None,
                        ErrorKind::InvalidValue,
                        format!("unknown code_case `{other}` (expected as_is, upper or lower)"),
                    ));
                }
            },
        };
        for e in &mut entries {
            if let (Some(upper), Some(w)) = (case, e.wire_code.as_mut()) {
                *w = if upper { w.to_ascii_uppercase() } else { w.to_ascii_lowercase() };
            }
        }
    }
    if let Some(t) = &raw.catalog.titles {
        match t.get_ref().as_str() {
            "entry" => {}
            "reason_phrase" => {
                for e in &mut entries {
                    if let Some(r) = e.status.canonical_reason() {
                        r.clone_into(&mut e.title);
                    }
                }
            }
            other => {
                return Err(cx.err(
                    Some(t.span().start),
                    None,
                    ErrorKind::InvalidValue,
                    format!("unknown titles `{other}` (expected entry or reason_phrase)"),
                ));
            }
        }
    }

    // Per-code overrides; `present_as` is applied after all others so that it borrows the
    // target's final presentation.
    let index: CodeIndex = entries.iter().enumerate().map(|(i, e)| (e.code.clone(), i)).collect();
    let mut present: Vec<(usize, usize, Option<usize>)> = Vec::new();
    for (code, ov) in &raw.overrides {
        let at = cx.header_offset("override", code);
        let Some(&i) = index.get(code) else {
            return Err(cx.err(
                at,
                Some(code),
                ErrorKind::UnknownCode,
                format!(
                    "no such code in `{}`; a profile can only override existing codes",
                    base_name.as_deref().unwrap_or("the base catalog")
                ),
            ));
        };
        let ov = ov.get_ref();
        for (field, set) in
            [("status", ov.status.is_some()), ("retry", ov.retry.is_some()), ("masked", ov.masked.is_some())]
        {
            if set {
                return Err(cx.err(
                    at,
                    Some(code),
                    ErrorKind::NotPresentation,
                    format!("a profile cannot change `{field}`: it changes presentation only"),
                ));
            }
        }
        let e = &mut entries[i];
        if let Some(w) = &ov.wire_code {
            check_wire_code(&cx, at, code, w)?;
            e.wire_code = Some(w.clone());
        }
        if ov.omit_code {
            e.wire_code = None;
        }
        for (dst, src) in [
            (&mut e.title, &ov.title),
            (&mut e.category, &ov.category),
            (&mut e.anchor, &ov.anchor),
            (&mut e.when, &ov.when),
            (&mut e.fix, &ov.fix),
        ] {
            if let Some(v) = src {
                dst.clone_from(v);
            }
        }
        if let Some(class) = &ov.sdk_class {
            check_sdk_class(&cx, at, code, class)?;
            e.sdk_class = Some(class.clone());
        }
        if let Some(m) = &ov.message {
            e.message = if m.is_empty() { None } else { Some(m.clone()) };
        }
        if let Some(target) = &ov.present_as {
            let Some(&j) = index.get(target) else {
                return Err(cx.err(
                    at,
                    Some(code),
                    ErrorKind::UnknownCode,
                    format!("`present_as` names `{target}`, which is not a code"),
                ));
            };
            let (from, to) = (entries[i].status.as_u16() / 100, entries[j].status.as_u16() / 100);
            if from != to {
                return Err(cx.err(
                    at,
                    Some(code),
                    ErrorKind::NotPresentation,
                    format!("`present_as = \"{target}\"` crosses status classes ({from}xx to {to}xx)"),
                ));
            }
            present.push((i, j, at));
        }
    }
    for e in &mut entries {
        e.type_uri = expand_uri(&type_uri, &e.anchor, e.wire_code.as_deref().unwrap_or(&e.code));
    }
    for (i, j, at) in present {
        if entries[j].presented_as.is_some() {
            return Err(cx.err(
                at,
                Some(&entries[i].code),
                ErrorKind::InvalidValue,
                format!("`present_as` target `{}` is itself presented as another code", entries[j].code),
            ));
        }
        let t = entries[j].clone();
        let e = &mut entries[i];
        e.status = t.status;
        e.category = t.category;
        e.title = t.title;
        e.message = t.message;
        e.anchor = t.anchor;
        e.wire_code = t.wire_code;
        e.type_uri = t.type_uri;
        e.presented_as = Some(t.code);
    }

    let written = entries.iter().map(|e| Written::new(dialect, e)).collect();
    Ok(Catalog {
        name: raw.catalog.name,
        description: raw.catalog.description,
        dialect,
        type_uri,
        entries,
        index,
        written,
        sections,
        base: base_name,
        files,
    })
}

fn resolve_extends(
    cx: &Ctx<'_>,
    ext: &Spanned<String>,
    dir: Option<&Path>,
    depth: usize,
) -> Result<Catalog, CatalogError> {
    let at = Some(ext.span().start);
    if depth >= MAX_EXTENDS_DEPTH {
        return Err(cx.err(at, None, ErrorKind::Extends, "`extends` chain is too deep (a cycle?)"));
    }
    let name = ext.get_ref();
    let builtin_name = name.strip_prefix("builtin:").unwrap_or(name);
    if let Some((n, text)) = BUILTINS.iter().find(|(n, _)| *n == builtin_name) {
        return load(&format!("builtin:{n}"), text, None, depth + 1);
    }
    let Some(dir) = dir else {
        return Err(cx.err(
            at,
            None,
            ErrorKind::Extends,
            format!("`extends = \"{name}\"` is not a built-in catalog (standard, arize, dataxid, mlops, incidents, apikeys)"),
        ));
    };
    let path: PathBuf = dir.join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        cx.err(at, None, ErrorKind::Extends, format!("`extends`: cannot read {}: {e}", path.display()))
    })?;
    load(&path.display().to_string(), &text, Some(&path), depth + 1)
}

/// Validates `[[error]]` entries; `inherited` is the catalog they are added to, if any.
fn base_entries(
    cx: &Ctx<'_>,
    raw: &[Spanned<RawEntry>],
    inherited: Option<&Catalog>,
) -> Result<Vec<Entry>, CatalogError> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for spanned in raw {
        let at = Some(spanned.span().start);
        let r = spanned.get_ref();
        let code = r.code.as_str();
        if !is_lower_snake(code) {
            return Err(cx.err(
                at,
                Some(code),
                ErrorKind::InvalidValue,
                "a code must be lower_snake_case ([a-z][a-z0-9_]*)",
            ));
        }
        if let Some(base) = inherited.filter(|b| b.get(code).is_some()) {
            return Err(cx.err(
                at,
                Some(code),
                ErrorKind::DuplicateCode,
                format!(
                    "`{}` already has this code; change its presentation with `[override.{code}]` instead",
                    base.name
                ),
            ));
        }
        if let Some(first) = seen.insert(code, cx.line_of(spanned.span().start)) {
            return Err(cx.err(
                at,
                Some(code),
                ErrorKind::DuplicateCode,
                format!("duplicate code (first defined on line {first})"),
            ));
        }
        let status = StatusCode::from_u16(r.status)
            .ok()
            .filter(|s| s.is_client_error() || s.is_server_error())
            .ok_or_else(|| {
                cx.err(
                    at,
                    Some(code),
                    ErrorKind::InvalidStatus,
                    format!("status {} is not an HTTP error status (400..=599)", r.status),
                )
            })?;
        if status.is_server_error() && !r.masked {
            return Err(cx.err(
                at,
                Some(code),
                ErrorKind::UnmaskedServerError,
                format!(
                    "a {} entry must set `masked = true`: server errors never show their cause",
                    status.as_u16()
                ),
            ));
        }
        let retry = RetryClass::from_name(&r.retry).ok_or_else(|| {
            cx.err(
                at,
                Some(code),
                ErrorKind::InvalidValue,
                format!("unknown retry class `{}` (expected never, after_reauth, after_fix, backoff or retry_after)", r.retry),
            )
        })?;
        for (field, value) in
            [("title", &r.title), ("category", &r.category), ("when", &r.when), ("fix", &r.fix)]
        {
            if value.trim().is_empty() {
                return Err(cx.err(
                    at,
                    Some(code),
                    ErrorKind::InvalidValue,
                    format!("`{field}` must not be empty"),
                ));
            }
        }
        let anchor = r.anchor.clone().unwrap_or_else(|| code.to_owned());
        if let Some(class) = &r.sdk_class {
            check_sdk_class(cx, at, code, class)?;
        }
        out.push(Entry {
            code: code.to_owned(),
            status,
            category: r.category.clone(),
            title: r.title.clone(),
            message: r.message.clone().filter(|m| !m.is_empty()),
            when: r.when.clone(),
            fix: r.fix.clone(),
            retry,
            masked: r.masked,
            anchor,
            wire_code: Some(code.to_owned()),
            type_uri: String::new(),
            presented_as: None,
            sdk_class: r.sdk_class.clone(),
        });
    }
    Ok(out)
}

fn check_wire_code(cx: &Ctx<'_>, at: Option<usize>, code: &str, wire: &str) -> Result<(), CatalogError> {
    let ok = !wire.is_empty()
        && wire.len() <= 64
        && wire.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(cx.err(
            at,
            Some(code),
            ErrorKind::InvalidValue,
            format!("wire_code `{wire}` must be 1-64 of [A-Za-z0-9_.-]"),
        ))
    }
}

/// An SDK class name must be an identifier in every generated language: an ASCII letter
/// first (upper case, as class names are), then letters and digits.
fn check_sdk_class(cx: &Ctx<'_>, at: Option<usize>, code: &str, class: &str) -> Result<(), CatalogError> {
    let mut bytes = class.bytes();
    let ok = matches!(bytes.next(), Some(b'A'..=b'Z'))
        && bytes.all(|b| b.is_ascii_alphanumeric())
        && class.len() <= 64;
    if ok {
        Ok(())
    } else {
        Err(cx.err(
            at,
            Some(code),
            ErrorKind::InvalidValue,
            format!("sdk_class `{class}` must be 1-64 ASCII letters and digits, starting with an upper-case letter"),
        ))
    }
}

fn is_lower_snake(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
        && s.len() <= 64
}

fn expand_uri(template: &str, anchor: &str, code: &str) -> String {
    template.replace("{anchor}", anchor).replace("{code}", code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_field_names_its_entry_and_line() {
        let text = "[catalog]\nname = \"t\"\ndialect = \"rebuff\"\ntype_uri = \"https://e.x/#{anchor}\"\n\n\
                    [[error]]\ncode = \"whole\"\nstatus = 404\ncategory = \"c\"\ntitle = \"T\"\nwhen = \"w\"\n\
                    fix = \"f\"\nretry = \"never\"\n\n\
                    [[error]]\ncode = \"no_fix\"\nstatus = 409\ncategory = \"c\"\ntitle = \"T\"\nwhen = \"w\"\n\
                    retry = \"never\"\n";
        let err = Catalog::from_toml_str("t.toml", text).expect_err("fix is required");
        assert_eq!(err.entry(), Some("no_fix"), "{err}");
        assert_eq!(err.line(), Some(15), "{err}");
        assert!(err.to_string().starts_with("t.toml:15: entry `no_fix`: missing field `fix`"), "{err}");
    }

    #[test]
    fn a_syntax_error_names_no_entry() {
        let err = Catalog::from_toml_str("t.toml", "[catalog\nname = 1").expect_err("not TOML");
        assert_eq!(err.entry(), None, "{err}");
        assert_eq!(err.kind(), ErrorKind::Syntax);
    }
}

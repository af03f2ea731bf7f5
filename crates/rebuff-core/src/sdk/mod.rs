//! Error modules for the people who call an API, in Python and TypeScript, generated from its
//! catalog (or from the catalog's JSON export, which a rebuff server publishes at
//! `/errors.json`).
//!
//! Each module is one self-contained file with no dependency beyond the language's standard
//! library (`fetch` in TypeScript): an error class hierarchy (a base class named after the
//! API, one class per category, one class per code under its category), the decoding of any
//! of the six envelopes (and plain RFC 9457, other JSON and bodies that are not JSON) into an
//! instance of the right class, and the catalog's retry rules with full-jitter backoff,
//! `Retry-After`, a deadline and one `Idempotency-Key` across the attempts of a `POST`.
//!
//! Class names come from the catalog: a code's class is its entry's `sdk_class`, or else is
//! named after the code (`model_not_ready` is `ModelNotReadyError`); a category's class is
//! named after the category (`api_error` is `APIError`: acronyms stay upper case, as PEP 8 and
//! the common TypeScript SDKs spell them). A code whose `sdk_class` is its category's class
//! raises that class itself; codes with the same `sdk_class` share one class.
//!
//! ```
//! use rebuff_core::{Catalog, sdk};
//!
//! let dataxid = Catalog::builtin("dataxid").expect("built in");
//! let names = sdk::class_names(dataxid, "quota_exceeded").expect("a code of the catalog");
//! assert_eq!(names.python, "dataxid.QuotaExceededError");
//! assert_eq!(names.typescript, "QuotaExceededError");
//! let module = sdk::python(dataxid)?;
//! assert!(module.contains("class DataxidError(_builtins.Exception):"));
//! assert!(module.contains("class ModelNotReadyError(InvalidRequestError):"));
//! # Ok::<(), sdk::SdkError>(())
//! ```

mod python;
mod typescript;

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::Value;

use crate::catalog::{Catalog, RetryClass, is_generic};
use crate::dialect::Dialect;

/// A catalog (or export) that no module can be generated from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot generate the error module: {0}")]
pub struct SdkError(String);

/// The names of the class a code raises, in each generated language.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClassNames {
    /// Qualified by the module, as Python callers write it: `dataxid.QuotaExceededError`.
    pub python: String,
    /// As exported by the TypeScript module: `QuotaExceededError`.
    pub typescript: String,
}

/// The classes code `code` of `catalog` raises in the generated modules; `None` when the
/// catalog has no such code or its class names clash (see [`python`]).
pub fn class_names(catalog: &Catalog, code: &str) -> Option<ClassNames> {
    let api = Api::from_catalog(catalog);
    let plan = Plan::new(&api).ok()?;
    let i = api.rows.iter().position(|r| r.code == code)?;
    let class = &plan.class_of[i];
    Some(ClassNames { python: format!("{}.{class}", plan.module), typescript: class.clone() })
}

/// The file name (without extension) and Python module name of a catalog's generated
/// modules: its name in lower case, with anything but ASCII letters and digits as `_`.
pub fn module_name(catalog_name: &str) -> String {
    let mut name: String = catalog_name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        name.insert_str(0, "api_");
    }
    name
}

/// The Python module of a catalog: see the [module documentation](self). It passes
/// `mypy --strict`; codes, wire codes and categories are `Literal` types.
///
/// # Errors
/// An [`SdkError`] when an `sdk_class` names the base class, a class of another category, or
/// a name the module itself uses.
pub fn python(catalog: &Catalog) -> Result<String, SdkError> {
    let api = Api::from_catalog(catalog);
    Ok(python::render(&api, &Plan::new(&api)?))
}

/// [`python`] from a catalog's JSON export (an API's `/errors.json`).
///
/// # Errors
/// An [`SdkError`] when the value is not an export (no `name`, an unknown `dialect`, no
/// `errors`, an entry without a `code`, an error `status` or a known `retry` class, or an
/// `sdk_class` that is not an identifier), or when class names clash as for [`python`].
pub fn python_json(export: &Value) -> Result<String, SdkError> {
    let api = Api::from_export(export)?;
    Ok(python::render(&api, &Plan::new(&api)?))
}

/// The TypeScript module of a catalog: see the [module documentation](self). It passes
/// `tsc --strict`; codes, wire codes and categories are string literal union types.
///
/// # Errors
/// As for [`python`].
pub fn typescript(catalog: &Catalog) -> Result<String, SdkError> {
    let api = Api::from_catalog(catalog);
    Ok(typescript::render(&api, &Plan::new(&api)?))
}

/// [`typescript`] from a catalog's JSON export.
///
/// # Errors
/// As for [`python_json`].
pub fn typescript_json(export: &Value) -> Result<String, SdkError> {
    let api = Api::from_export(export)?;
    Ok(typescript::render(&api, &Plan::new(&api)?))
}

// ---- what the generators need of a catalog -------------------------------------------------

/// One entry, as the modules need it.
struct Row {
    code: String,
    wire_code: Option<String>,
    status: u16,
    category: String,
    title: String,
    retry: RetryClass,
    type_uri: String,
    presented_as: Option<String>,
    sdk_class: Option<String>,
}

/// A catalog, from TOML or from its export.
struct Api {
    name: String,
    dialect: Dialect,
    rows: Vec<Row>,
}

impl Api {
    fn from_catalog(catalog: &Catalog) -> Api {
        let rows = catalog
            .entries()
            .iter()
            .map(|e| Row {
                code: e.code.clone(),
                wire_code: e.wire_code.clone(),
                status: e.status.as_u16(),
                category: e.category.clone(),
                title: e.title.clone(),
                retry: e.retry,
                type_uri: e.type_uri.clone(),
                presented_as: e.presented_as.clone(),
                sdk_class: e.sdk_class.clone(),
            })
            .collect();
        Api { name: catalog.name().to_owned(), dialect: catalog.dialect(), rows }
    }

    /// The export comes from outside: every string ends up escaped in a literal or cleaned
    /// in a comment, and every identifier is derived or checked, so nothing in it can break
    /// out of the generated source.
    fn from_export(export: &Value) -> Result<Api, SdkError> {
        let err = |msg: String| SdkError(format!("not a rebuff catalog export: {msg}"));
        let name = export.get("name").and_then(Value::as_str).ok_or_else(|| err("no `name`".into()))?;
        let dialect = export
            .get("dialect")
            .and_then(Value::as_str)
            .and_then(Dialect::from_name)
            .ok_or_else(|| err("no known `dialect`".into()))?;
        let errors =
            export.get("errors").and_then(Value::as_array).ok_or_else(|| err("no `errors` array".into()))?;
        let text = |e: &Value, member: &str| e.get(member).and_then(Value::as_str).map(str::to_owned);
        let mut rows = Vec::with_capacity(errors.len());
        let mut seen = HashSet::new();
        for (i, e) in errors.iter().enumerate() {
            let code = text(e, "code").ok_or_else(|| err(format!("errors[{i}] has no `code`")))?;
            if !seen.insert(code.clone()) {
                return Err(err(format!("`{code}` is listed twice")));
            }
            let status = e
                .get("status")
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok())
                .filter(|s| (400..=599).contains(s))
                .ok_or_else(|| err(format!("`{code}`: `status` is not an HTTP error status")))?;
            let retry = e
                .get("retry")
                .and_then(Value::as_str)
                .and_then(RetryClass::from_name)
                .ok_or_else(|| err(format!("`{code}`: no known `retry` class")))?;
            let sdk_class = text(e, "sdk_class");
            if let Some(class) = &sdk_class
                && !is_class_name(class)
            {
                return Err(err(format!("`{code}`: `sdk_class` `{class}` is not a class name")));
            }
            rows.push(Row {
                wire_code: text(e, "wire_code"),
                status,
                category: text(e, "category").unwrap_or_default(),
                title: text(e, "title").unwrap_or_default(),
                retry,
                type_uri: text(e, "type_uri").unwrap_or_default(),
                presented_as: text(e, "presented_as"),
                sdk_class,
                code,
            });
        }
        if rows.is_empty() {
            return Err(err("`errors` is empty".into()));
        }
        // A presented code must name a listed code: its class is that code's class.
        for r in &rows {
            if let Some(target) = &r.presented_as
                && !seen.contains(target)
            {
                return Err(err(format!("`{}` is presented as `{target}`, which is not listed", r.code)));
            }
        }
        Ok(Api { name: name.to_owned(), dialect, rows })
    }

    /// The distinct wire codes, in catalog order.
    fn wire_codes(&self) -> Vec<&str> {
        let mut seen = HashSet::new();
        self.rows.iter().filter_map(|r| r.wire_code.as_deref()).filter(|w| seen.insert(*w)).collect()
    }

    /// For each status, the code a response with nothing but that status is identified as:
    /// the first generic code of that status, else its first code, never one presented as
    /// another (as [`Catalog::identify`] does).
    fn status_fallbacks(&self) -> Vec<(u16, &str)> {
        let statuses: BTreeSet<u16> = self.rows.iter().map(|r| r.status).collect();
        statuses
            .into_iter()
            .filter_map(|status| {
                let mut own = self.rows.iter().filter(|r| r.status == status && r.presented_as.is_none());
                let first = own.clone().next()?;
                let generic = own.find(|r| is_generic(&r.code));
                Some((status, generic.unwrap_or(first).code.as_str()))
            })
            .collect()
    }
}

// ---- class names ---------------------------------------------------------------------------

/// Names the modules define or use themselves, and global names of either language that a
/// class must not shadow.
const RESERVED: &[&str] = &[
    "Attempt",
    "Category",
    "Code",
    "Envelope",
    "FieldError",
    "Headers",
    "Response",
    "RetryClass",
    "RetryEvent",
    "RetryPolicy",
    "WireCode",
    "RequestOptions",
    "RetryOptions",
    "Error",
    "Exception",
    "BaseException",
    "Object",
    "Promise",
    "Record",
    "Map",
    "Set",
    "Date",
    "JSON",
    "Math",
    "Number",
    "String",
    "Boolean",
    "Array",
    "Symbol",
    "URL",
    "AbortController",
    "AbortSignal",
    "TypeError",
    "RangeError",
    "SyntaxError",
];

/// Words spelt in capitals inside class names.
const ACRONYMS: &[&str] = &[
    "api", "csrf", "html", "http", "https", "id", "ip", "json", "jwt", "sdk", "sql", "tls", "uri", "url",
    "uuid", "xml",
];

/// One class under a category class.
struct CodeClass {
    name: String,
    parent: String,
    /// The codes raising it.
    codes: Vec<String>,
    title: String,
    status: u16,
}

/// Every class of a module, and which one each code raises.
struct Plan {
    module: String,
    base: String,
    /// `(category, class, codes raising the class itself)`, in catalog order.
    categories: Vec<(String, String, Vec<String>)>,
    classes: Vec<CodeClass>,
    /// The class each row raises (a presented code raises its target's).
    class_of: Vec<String>,
}

fn is_class_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'A'..=b'Z')) && bytes.all(|b| b.is_ascii_alphanumeric()) && name.len() <= 64
}

/// `quota_exceeded` -> `QuotaExceededError`, `api_error` -> `APIError`.
fn derived_name(text: &str) -> String {
    let mut name = String::new();
    for word in text.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
        if ACRONYMS.contains(&word.to_ascii_lowercase().as_str()) {
            name.push_str(&word.to_ascii_uppercase());
        } else {
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                name.push(first.to_ascii_uppercase());
                name.push_str(chars.as_str());
            }
        }
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        name.insert(0, 'E');
    }
    if !name.ends_with("Error") {
        name.push_str("Error");
    }
    name
}

impl CodeClass {
    /// The class's doc line: its code, status and title, or the codes sharing it.
    fn describe(&self, quoted_codes: &[String]) -> String {
        match quoted_codes {
            [one] => format!("{one} (HTTP {}): {}", self.status, comment_line(&self.title)),
            several => format!("Raised for {}", several.join(", ")),
        }
    }
}

impl Plan {
    fn new(api: &Api) -> Result<Plan, SdkError> {
        let module = module_name(&api.name);
        let base = derived_name(&api.name);
        let mut taken: HashSet<String> = RESERVED.iter().map(|s| (*s).to_owned()).collect();
        for suffix in ["", "Connection", "Timeout"] {
            let stem = base.strip_suffix("Error").unwrap_or(&base);
            taken.insert(if suffix.is_empty() { base.clone() } else { format!("{stem}{suffix}Error") });
        }
        let unique = |taken: &mut HashSet<String>, name: String| -> String {
            let mut candidate = name.clone();
            let mut n = 2;
            while !taken.insert(candidate.clone()) {
                candidate = format!("{name}{n}");
                n += 1;
            }
            candidate
        };

        // Category classes, derived and made unique.
        let mut categories: Vec<(String, String, Vec<String>)> = Vec::new();
        let mut category_class: HashMap<&str, String> = HashMap::new();
        for r in &api.rows {
            if !category_class.contains_key(r.category.as_str()) {
                let name = unique(&mut taken, derived_name(&r.category));
                category_class.insert(&r.category, name.clone());
                categories.push((r.category.clone(), name, Vec::new()));
            }
        }
        let category_names: HashMap<&str, &str> =
            category_class.iter().map(|(c, n)| (n.as_str(), *c)).collect();

        // Code classes: named ones first, so that a derived name never takes a chosen one.
        let mut classes: Vec<CodeClass> = Vec::new();
        let mut class_of: Vec<Option<String>> = vec![None; api.rows.len()];
        let own = |r: &Row| r.presented_as.is_none();
        for (i, r) in api.rows.iter().enumerate().filter(|(_, r)| own(r)) {
            let Some(name) = &r.sdk_class else { continue };
            let parent = &category_class[r.category.as_str()];
            if name == parent {
                class_of[i] = Some(name.clone());
                continue;
            }
            if let Some(other) = category_names.get(name.as_str()) {
                return Err(SdkError(format!(
                    "`{}`: sdk_class `{name}` is the class of category `{other}`, not of `{}`",
                    r.code, r.category
                )));
            }
            if let Some(c) = classes.iter_mut().find(|c| &c.name == name) {
                if &c.parent != parent {
                    return Err(SdkError(format!(
                        "`{}`: sdk_class `{name}` is shared by codes of two categories",
                        r.code
                    )));
                }
                c.codes.push(r.code.clone());
            } else {
                if taken.contains(name) {
                    return Err(SdkError(format!(
                        "`{}`: sdk_class `{name}` is a name the generated module uses itself",
                        r.code
                    )));
                }
                taken.insert(name.clone());
                classes.push(CodeClass {
                    name: name.clone(),
                    parent: parent.clone(),
                    codes: vec![r.code.clone()],
                    title: r.title.clone(),
                    status: r.status,
                });
            }
            class_of[i] = Some(name.clone());
        }
        for (i, r) in api.rows.iter().enumerate().filter(|(_, r)| own(r)) {
            if class_of[i].is_some() {
                continue;
            }
            let parent = &category_class[r.category.as_str()];
            let derived = derived_name(&r.code);
            if &derived == parent {
                class_of[i] = Some(derived);
                continue;
            }
            let name = unique(&mut taken, derived);
            classes.push(CodeClass {
                name: name.clone(),
                parent: parent.clone(),
                codes: vec![r.code.clone()],
                title: r.title.clone(),
                status: r.status,
            });
            class_of[i] = Some(name);
        }
        // A presented code raises the class of the code it is answered with.
        let by_code: HashMap<&str, usize> =
            api.rows.iter().enumerate().map(|(i, r)| (r.code.as_str(), i)).collect();
        let mut resolved = Vec::with_capacity(api.rows.len());
        for (i, r) in api.rows.iter().enumerate() {
            let class = match &r.presented_as {
                None => class_of[i].clone(),
                Some(target) => by_code.get(target.as_str()).and_then(|&j| class_of[j].clone()),
            };
            let class = class.ok_or_else(|| {
                SdkError(format!("`{}` is presented as a code that is itself presented as another", r.code))
            })?;
            resolved.push(class);
        }
        for (category, class, codes) in &mut categories {
            for (r, c) in api.rows.iter().zip(&resolved) {
                if &r.category == category && c == class && r.presented_as.is_none() {
                    codes.push(r.code.clone());
                }
            }
        }
        Ok(Plan { module, base, categories, classes, class_of: resolved })
    }

    /// `DataxidConnectionError`.
    fn connection_class(&self) -> String {
        format!("{}ConnectionError", self.base.strip_suffix("Error").unwrap_or(&self.base))
    }

    /// `DataxidTimeoutError`.
    fn timeout_class(&self) -> String {
        format!("{}TimeoutError", self.base.strip_suffix("Error").unwrap_or(&self.base))
    }
}

/// A string literal valid in Python and TypeScript (JSON's escaping is a subset of both).
fn literal(text: &str) -> String {
    // Serializing a string cannot fail.
    let mut out = serde_json::to_string(text).unwrap_or_default();
    // JSON leaves U+2028/U+2029 raw; escape them so no older parser reads a line break.
    out = out.replace('\u{2028}', "\\u2028").replace('\u{2029}', "\\u2029");
    out
}

/// One line of comment text from the catalog: no control characters or line separators (a
/// `//` comment ends at U+2028 in JavaScript), no quote or backslash
/// that could end a Python docstring, no `*/` that could end a TypeScript comment.
fn comment_line(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => ' ',
            '"' => '\'',
            '\\' => '/',
            c => c,
        })
        .collect::<String>()
        .replace("*/", "* /")
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_derive_from_codes_and_categories_with_acronyms_in_capitals() {
        assert_eq!(derived_name("api_error"), "APIError");
        assert_eq!(derived_name("model_not_ready"), "ModelNotReadyError");
        assert_eq!(derived_name("invalid_id"), "InvalidIDError");
        assert_eq!(derived_name("internal_error"), "InternalError");
        assert_eq!(derived_name("4xx"), "E4xxError");
        assert_eq!(module_name("My API"), "my_api");
        assert_eq!(module_name("9"), "api_9");
    }

    #[test]
    fn the_dataxid_profile_gives_the_published_exception_table() {
        let catalog = Catalog::builtin("dataxid").expect("built in");
        for (code, class) in [
            ("api_key_missing", "AuthenticationError"),
            ("api_key_invalid", "AuthenticationError"),
            ("parameter_invalid", "InvalidRequestError"),
            ("model_not_found", "NotFoundError"),
            ("model_not_ready", "ModelNotReadyError"),
            ("quota_exceeded", "QuotaExceededError"),
            ("rate_limit_exceeded", "RateLimitError"),
            ("idempotency_key_in_use", "ConflictError"),
            ("training_service_unavailable", "APIError"),
            ("internal_error", "APIError"),
            // Presented as parameter_invalid: the same class.
            ("invalid_json", "InvalidRequestError"),
        ] {
            let names = class_names(catalog, code).expect("in the catalog");
            assert_eq!(names.python, format!("dataxid.{class}"), "{code}");
            assert_eq!(names.typescript, class, "{code}");
        }
        assert_eq!(class_names(catalog, "no_such_code"), None);
    }

    fn export_with(classes: &[(&str, &str, Option<&str>)]) -> Value {
        let errors: Vec<Value> = classes
            .iter()
            .map(|(code, category, class)| {
                serde_json::json!({"code": code, "status": 400, "retry": "never", "category": category, "sdk_class": class})
            })
            .collect();
        serde_json::json!({"name": "x", "dialect": "rebuff", "errors": errors})
    }

    #[test]
    fn clashing_class_names_are_refused_or_made_unique() {
        // A named class of another category.
        let e = python_json(&export_with(&[("a", "one_error", None), ("b", "two_error", Some("OneError"))]));
        assert!(e.is_err_and(|e| e.to_string().contains("class of category `one_error`")));
        // One name across two categories.
        let e =
            python_json(&export_with(&[("a", "one_error", Some("Same")), ("b", "two_error", Some("Same"))]));
        assert!(e.is_err_and(|e| e.to_string().contains("two categories")));
        // The module's own names.
        let e = python_json(&export_with(&[("a", "one_error", Some("RetryPolicy"))]));
        assert!(e.is_err_and(|e| e.to_string().contains("uses itself")));
        let e = python_json(&export_with(&[("a", "one_error", Some("XError"))]));
        assert!(e.is_err_and(|e| e.to_string().contains("uses itself")));
        // Derived names never clash: `foo` and `foo_error` both derive `FooError`.
        let source =
            python_json(&export_with(&[("foo", "c", None), ("foo_error", "c", None)])).expect("generated");
        assert!(source.contains("class FooError(CError):") && source.contains("class FooError2(CError):"));
        // Not an identifier.
        let e = typescript_json(&export_with(&[("a", "c", Some("a-b"))]));
        assert!(e.is_err_and(|e| e.to_string().contains("not a class name")));
    }
}

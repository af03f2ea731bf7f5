//! A Rust code table for `rebuff-client`, from a catalog or its JSON export.

use super::*;

/// A JSON export that [`rust_client_json`] cannot turn into a client table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a rebuff catalog export: {0}")]
pub struct ExportError(String);

/// One entry, as the client table needs it: from a [`Catalog`] or from its [`json()`] export.
struct ClientRow {
    code: String,
    wire_code: Option<String>,
    status: u16,
    category: String,
    title: String,
    when: String,
    retry: RetryClass,
    type_uri: String,
    presented_as: Option<String>,
}

/// A Rust source file for API consumers using `rebuff-client`: a typed enum of the catalog's
/// stable codes and a table mapping a response's wire code and status to it, with each
/// code's retry class.
///
/// The file holds:
/// - `pub enum Code`, one variant per stable code (`api_key_missing` is `ApiKeyMissing`), with
///   `ALL`, `as_str`, `wire_code`, `status`, `retry`, `from_code` and `identify`; it
///   implements `rebuff_client::ErrorCode`, `Display` and `FromStr`, so that
///   `error.code_as::<Code>()` gives a typed code to match on;
/// - `pub static TABLE: rebuff_client::CodeTable`, to hand to the client with
///   `rebuff_client::Contract::table(&TABLE)`: it identifies codes exactly as
///   [`Catalog::identify`] does, and tells the client which errors it may retry.
///
/// The file starts with plain `//` comments only, so it works both as a module file and
/// through `include!`. The output is deterministic, and the same as [`rust_client_json`]
/// gives for the catalog's [`json()`] export.
///
/// ```
/// use rebuff_core::{Catalog, docs};
///
/// let source = docs::rust_client(Catalog::builtin("dataxid").expect("built in"));
/// assert!(source.contains("pub enum Code {"));
/// assert!(source.contains("ApiKeyMissing,"));
/// assert!(source.contains("pub static TABLE: ::rebuff_client::CodeTable"));
/// ```
pub fn rust_client(catalog: &Catalog) -> String {
    let rows: Vec<ClientRow> = catalog
        .entries()
        .iter()
        .map(|e| ClientRow {
            code: e.code.clone(),
            wire_code: e.wire_code.clone(),
            status: e.status.as_u16(),
            category: e.category.clone(),
            title: e.title.clone(),
            when: e.when.clone(),
            retry: e.retry,
            type_uri: e.type_uri.clone(),
            presented_as: e.presented_as.clone(),
        })
        .collect();
    client_source(catalog.name(), catalog.dialect(), &rows)
}

/// [`rust_client`] from a catalog's JSON export (what [`json()`] renders, and what a rebuff
/// server publishes at `/errors.json`), for a consumer who has the export but not the TOML.
///
/// The export comes from outside, so nothing in it can break out of the generated source:
/// strings become escaped literals, doc text loses its control characters, and codes that
/// are not identifiers still give distinct variant names.
///
/// # Errors
/// An [`ExportError`] when the value is not an export: no `name`, an unknown `dialect`, no
/// `errors`, or an entry without a `code`, a `status` in 400..=599 or a known `retry` class.
///
/// ```
/// use rebuff_core::{Catalog, docs};
///
/// let catalog = Catalog::builtin("incidents").expect("built in");
/// let from_json = docs::rust_client_json(&docs::json(catalog))?;
/// assert_eq!(from_json, docs::rust_client(catalog));
/// # Ok::<(), docs::ExportError>(())
/// ```
pub fn rust_client_json(export: &Value) -> Result<String, ExportError> {
    let err = |msg: String| ExportError(msg);
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
    for (i, e) in errors.iter().enumerate() {
        let code = text(e, "code").ok_or_else(|| err(format!("errors[{i}] has no `code`")))?;
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
        rows.push(ClientRow {
            wire_code: text(e, "wire_code"),
            status,
            category: text(e, "category").unwrap_or_default(),
            title: text(e, "title").unwrap_or_default(),
            when: text(e, "when").unwrap_or_default(),
            retry,
            type_uri: text(e, "type_uri").unwrap_or_default(),
            presented_as: text(e, "presented_as"),
            code,
        });
    }
    if rows.is_empty() {
        return Err(err("`errors` is empty".into()));
    }
    Ok(client_source(name, dialect, &rows))
}

fn client_source(name: &str, dialect: Dialect, rows: &[ClientRow]) -> String {
    let variants = variant_names(rows.iter().map(|r| r.code.as_str()));
    let name_text = rustdoc_line(name);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "// The error codes of the `{name_text}` API, for `rebuff-client`.\n\
         //\n\
         // Generated by `rebuff docs --format rust-client` from the API's error catalog. Do not\n\
         // edit: generate it again when the catalog changes. Use it with\n\
         //\n\
         //     let client = rebuff_client::Client::builder()\n\
         //         .contract(rebuff_client::Contract::table(&TABLE))\n\
         //         .build();\n\
         //     // ...\n\
         //     match error.code_as::<Code>() {{\n\
         //         Some(Code::RateLimitExceeded) => {{ /* ... */ }}\n\
         //         _ => {{ /* ... */ }}\n\
         //     }}\n"
    );
    let _ = writeln!(out, "/// The stable error codes of the `{name_text}` API, one variant per code.");
    out.push_str("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\n#[non_exhaustive]\npub enum Code {\n");
    for (row, variant) in rows.iter().zip(&variants) {
        let _ = writeln!(
            out,
            "    /// **{}** (HTTP {}, `{}`, retry: `{}`)",
            rustdoc_line(&row.title),
            row.status,
            rustdoc_line(&row.code).replace('`', "'"),
            row.retry
        );
        if !row.when.trim().is_empty() {
            out.push_str("    ///\n");
            let _ = writeln!(out, "    /// {}", rustdoc_line(&row.when));
        }
        let _ = writeln!(out, "    {variant},");
    }
    out.push_str("}\n\n");

    out.push_str("impl Code {\n");
    let _ = writeln!(out, "    /// Every code of the `{name_text}` API, in catalog order.");
    out.push_str("    pub const ALL: &'static [Code] = &[\n");
    for v in &variants {
        let _ = writeln!(out, "        Code::{v},");
    }
    out.push_str("    ];\n\n");
    let matcher = |out: &mut String, doc: &str, sig: &str, arm: &dyn Fn(&ClientRow) -> String| {
        let _ = writeln!(out, "    /// {doc}\n    pub const fn {sig} {{\n        match self {{");
        for (row, v) in rows.iter().zip(&variants) {
            let _ = writeln!(out, "            Code::{v} => {},", arm(row));
        }
        out.push_str("        }\n    }\n\n");
    };
    matcher(&mut out, "The stable code.", "as_str(self) -> &'static str", &|r| format!("{:?}", r.code));
    matcher(
        &mut out,
        "The code as this API spells it on the wire; `None` when it sends no code for it.",
        "wire_code(self) -> ::core::option::Option<&'static str>",
        &|r| match &r.wire_code {
            Some(w) => format!("::core::option::Option::Some({w:?})"),
            None => "::core::option::Option::None".to_owned(),
        },
    );
    matcher(&mut out, "The HTTP status this code is answered with.", "status(self) -> u16", &|r| {
        r.status.to_string()
    });
    matcher(
        &mut out,
        "When a client may send the same request again.",
        "retry(self) -> ::rebuff_client::RetryClass",
        &|r| format!("::rebuff_client::RetryClass::{}", retry_variant(r.retry)),
    );
    out.push_str(
        "    /// The code whose stable spelling is `code`.\n    \
         pub fn from_code(code: &str) -> ::core::option::Option<Code> {\n        \
         match code {\n",
    );
    for (row, v) in rows.iter().zip(&variants) {
        let _ = writeln!(out, "            {:?} => ::core::option::Option::Some(Code::{v}),", row.code);
    }
    out.push_str("            _ => ::core::option::Option::None,\n        }\n    }\n\n");
    out.push_str(
        "    /// The code a response stands for, from its status and the code it carries on the wire\n    \
         /// (see [`TABLE`]).\n    \
         pub fn identify(status: u16, wire_code: ::core::option::Option<&str>) -> ::core::option::Option<Code> {\n        \
         TABLE\n            .identify(status, wire_code, ::core::option::Option::None)\n            \
         .and_then(|row| Code::from_code(row.code()))\n    }\n}\n\n",
    );
    out.push_str(
        "impl ::rebuff_client::ErrorCode for Code {\n    \
         fn as_str(&self) -> &'static str {\n        Code::as_str(*self)\n    }\n}\n\n\
         impl ::core::fmt::Display for Code {\n    \
         fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {\n        \
         f.write_str(Code::as_str(*self))\n    }\n}\n\n\
         impl ::core::str::FromStr for Code {\n    \
         type Err = ::rebuff_client::UnknownCode;\n\n    \
         fn from_str(code: &str) -> ::core::result::Result<Self, Self::Err> {\n        \
         Code::from_code(code).ok_or_else(|| ::rebuff_client::UnknownCode::new(code))\n    }\n}\n\n",
    );

    let _ = writeln!(
        out,
        "/// The `{name_text}` API's error table: a response's wire code and status to its stable code,\n\
         /// with each code's retry class. Give it to the client with\n\
         /// `rebuff_client::Contract::table(&TABLE)`.\n\
         pub static TABLE: ::rebuff_client::CodeTable = ::rebuff_client::CodeTable::new(\n    \
         {name:?},\n    ::rebuff_client::Dialect::{},\n    &[",
        dialect_variant(dialect)
    );
    let opt = |v: &Option<String>| match v {
        Some(s) => format!("::core::option::Option::Some({s:?})"),
        None => "::core::option::Option::None".to_owned(),
    };
    for r in rows {
        let _ = writeln!(
            out,
            "        ::rebuff_client::CodeRow::new(\n            {:?},\n            {},\n            {},\n            \
             {:?},\n            ::rebuff_client::RetryClass::{},\n            {:?},\n            {},\n        ),",
            r.code,
            opt(&r.wire_code),
            r.status,
            r.category,
            retry_variant(r.retry),
            r.type_uri,
            opt(&r.presented_as),
        );
    }
    out.push_str("    ],\n    &[\n");
    for (status, code) in status_fallbacks(rows) {
        let _ = writeln!(out, "        ({status}, {code:?}),");
    }
    out.push_str("    ],\n);\n");
    out
}

/// For each status, the code [`Catalog::identify`] answers when nothing but the status is
/// known: the first generic code of that status, else its first code, never one presented as
/// another.
fn status_fallbacks(rows: &[ClientRow]) -> Vec<(u16, &str)> {
    let statuses: std::collections::BTreeSet<u16> = rows.iter().map(|r| r.status).collect();
    statuses
        .into_iter()
        .filter_map(|status| {
            let mut own = rows.iter().filter(|r| r.status == status && r.presented_as.is_none());
            let first = own.clone().next()?;
            let generic = own.find(|r| crate::catalog::is_generic(&r.code));
            Some((status, generic.unwrap_or(first).code.as_str()))
        })
        .collect()
}

const fn retry_variant(retry: RetryClass) -> &'static str {
    match retry {
        RetryClass::Never => "Never",
        RetryClass::AfterReauth => "AfterReauth",
        RetryClass::AfterFix => "AfterFix",
        RetryClass::Backoff => "Backoff",
        RetryClass::RetryAfter => "RetryAfter",
    }
}

fn dialect_variant(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Rebuff => "Rebuff",
        Dialect::Arize => "Arize",
        Dialect::Dataxid => "Dataxid",
        Dialect::Mlops => "Mlops",
        Dialect::Incidents => "Incidents",
        Dialect::Apikeys => "Apikeys",
    }
}

/// One line of doc text: no control characters (a newline or a bare CR would end the
/// comment), nothing rustdoc reads as HTML or an intra-doc link.
pub fn rustdoc_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_code = false;
    for c in text.chars() {
        match c {
            c if c.is_control() => out.push(' '),
            '`' => {
                in_code = !in_code;
                out.push(c);
            }
            '<' if !in_code => out.push_str("&lt;"),
            '>' if !in_code => out.push_str("&gt;"),
            '[' | ']' if !in_code => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    if in_code {
        // An unclosed code span would swallow the rest of the line's markup.
        out.push('`');
    }
    out.trim().to_owned()
}

/// `UpperCamelCase` variant names, distinct and valid whatever the codes are: runs of ASCII
/// letters and digits become words, a name that would not start with a letter gets a `C`, and
/// a name already taken gets `2`, `3`...
fn variant_names<'a>(codes: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut taken = HashSet::new();
    codes
        .map(|code| {
            let mut name = String::with_capacity(code.len());
            for word in code.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
                let mut chars = word.chars();
                if let Some(first) = chars.next() {
                    name.push(first.to_ascii_uppercase());
                    name.push_str(chars.as_str());
                }
            }
            if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
                name.insert(0, 'C');
            }
            if name == "Self" {
                name.push_str("Code");
            }
            let mut candidate = name.clone();
            let mut n = 2;
            while !taken.insert(candidate.clone()) {
                candidate = format!("{name}{n}");
                n += 1;
            }
            candidate
        })
        .collect()
}

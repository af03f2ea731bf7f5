//! Detectors for what an error body must never show: stack traces, SQL, file paths and
//! framework or server banners.
//!
//! Every detector looks for something that ordinary error prose does not contain: exact
//! markers of runtimes and databases, source locations (`main.rs:42`), SQL keywords in upper
//! case, absolute paths under well-known roots. Anything inside a URL is ignored, so a `type`
//! or `doc_url` such as `https://example.com/src/errors` is never a finding.

use std::fmt;

/// What kind of thing leaked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LeakKind {
    StackTrace,
    Sql,
    FilePath,
    Banner,
}

impl fmt::Display for LeakKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LeakKind::StackTrace => "a stack trace",
            LeakKind::Sql => "SQL",
            LeakKind::FilePath => "a file path",
            LeakKind::Banner => "a framework or server banner",
        })
    }
}

/// One thing found, with the text around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Leak {
    pub(crate) kind: LeakKind,
    pub(crate) excerpt: String,
}

impl fmt::Display for Leak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: `{}`", self.kind, self.excerpt)
    }
}

/// Markers of a stack trace or a runtime's crash report.
const STACK_MARKERS: &[&str] = &[
    "panicked at",
    "stack backtrace:",
    "RUST_BACKTRACE=",
    "Traceback (most recent call last)",
    "Exception in thread \"",
    "at java.",
    "at javax.",
    "at jdk.internal.",
    "at sun.reflect.",
    "at org.springframework.",
    "at org.apache.",
    "at System.",
    "at Microsoft.",
    "--- End of stack trace from previous location",
    "--- End of inner exception stack trace ---",
    "at Object.<anonymous>",
    "at Module._compile",
    "at process.processTicksAndRejections",
    "node:internal/",
    "panic: runtime error",
    "Stack trace:\n#0 ",
    "PHP Fatal error",
    "Fatal error: Uncaught",
];

/// Markers of a database error or driver.
const SQL_MARKERS: &[&str] = &[
    "SQLSTATE",
    "You have an error in your SQL syntax",
    "syntax error at or near",
    "UNIQUE constraint failed",
    "NOT NULL constraint failed",
    "FOREIGN KEY constraint failed",
    "CHECK constraint failed",
    "no such table:",
    "no such column:",
    "duplicate key value violates unique constraint",
    "violates foreign key constraint",
    "violates not-null constraint",
    "Unclosed quotation mark after the character string",
    "psycopg2.",
    "sqlalchemy.exc.",
    "PDOException",
    "SqlException",
    "org.hibernate.",
    "java.sql.",
    "PG::",
    "rusqlite::",
    "sqlx::",
];

/// Markers of a server, proxy or framework's own error page.
const BANNER_MARKERS: &[&str] = &[
    "Whitelabel Error Page",
    "<address>Apache",
    "<center>nginx",
    "Apache Tomcat/",
    "Microsoft-IIS/",
    "Server Error in '/' Application",
    "Werkzeug Debugger",
    "Django Version:",
    "DEBUG = True",
    "Powered by Jetty",
    "Phusion Passenger",
    "Whoops, looks like something went wrong",
    "Action Controller: Exception caught",
    "upstream connect error or disconnect/reset before headers",
    "<pre>Cannot GET /",
    "<pre>Cannot POST /",
    "<pre>Cannot PUT /",
    "<pre>Cannot PATCH /",
    "<pre>Cannot DELETE /",
];

/// Product tokens that end in a version (`nginx/1.25.3`).
const VERSIONED_BANNERS: &[&str] = &["nginx/", "openresty/", "Apache/", "Jetty(", "Kestrel/", "gunicorn/"];

/// Extensions of source files, for `file.ext:LINE` locations.
const SOURCE_EXTENSIONS: &[&str] = &[
    "rs", "py", "go", "java", "kt", "scala", "js", "mjs", "cjs", "ts", "rb", "php", "cs", "ex", "exs", "erl",
    "swift", "cpp", "cxx",
];

/// Roots under which a path is a file system path whatever follows.
const STRONG_ROOTS: &[&str] =
    &["/usr/", "/var/", "/etc/", "/opt/", "/root/", "/tmp/", "/home/", "/Users/", "/proc/", "/private/var/"];

/// Path pieces that name a file system path when the path also ends in a file name.
const WEAK_PIECES: &[&str] =
    &["/src/", "/app/", "/srv/", "/lib/", "/build/", "/workspace/", "/site-packages/"];

/// Finds the first leak in `text`, trying each kind in turn.
pub(crate) fn find(text: &str) -> Option<Leak> {
    stack_trace(text)
        .map(|e| Leak { kind: LeakKind::StackTrace, excerpt: e })
        .or_else(|| sql(text).map(|e| Leak { kind: LeakKind::Sql, excerpt: e }))
        .or_else(|| file_path(text).map(|e| Leak { kind: LeakKind::FilePath, excerpt: e }))
        .or_else(|| banner(text).map(|e| Leak { kind: LeakKind::Banner, excerpt: e }))
}

/// The text worth scanning in a body: for JSON, every key and string value unescaped (so a
/// `C:\\` in JSON is seen as `C:\`), one per line; otherwise the body as text.
pub(crate) fn scannable(body: &[u8], json: Option<&serde_json::Value>) -> String {
    fn walk(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::String(s) => {
                out.push_str(s);
                out.push('\n');
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    out.push_str(k);
                    out.push('\n');
                    walk(v, out);
                }
            }
            _ => {}
        }
    }
    match json {
        Some(v) => {
            let mut out = String::new();
            walk(v, &mut out);
            out
        }
        None => String::from_utf8_lossy(body).into_owned(),
    }
}

fn stack_trace(text: &str) -> Option<String> {
    if let Some(e) = first_marker(text, STACK_MARKERS) {
        return Some(e);
    }
    // Go: `goroutine 1 [running]:`.
    if let Some(at) = find_all(text, "goroutine ").find(|&i| {
        let rest = &text[i + "goroutine ".len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        digits > 0 && rest[digits..].starts_with(" [")
    }) {
        return Some(excerpt(text, at, "goroutine ".len()));
    }
    // Python: `File "/app/x.py", line 12`.
    if let Some(at) = text.find("\", line ")
        && text[..at].rfind("File \"").is_some_and(|f| at - f < 300)
    {
        return Some(excerpt(text, at, 8));
    }
    source_location(text)
}

/// `name.ext:LINE` for a source extension, outside URLs (`src/main.rs:42:9`, `(Foo.java:42)`).
fn source_location(text: &str) -> Option<String> {
    for (start, token) in tokens(text) {
        for (dot, _) in token.match_indices('.') {
            let after = &token[dot + 1..];
            let Some((ext, rest)) = after.split_once(':') else { continue };
            let has_name =
                token[..dot].bytes().last().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
            if has_name
                && SOURCE_EXTENSIONS.contains(&ext)
                && rest.bytes().next().is_some_and(|b| b.is_ascii_digit())
            {
                return Some(excerpt(text, start, token.len()));
            }
        }
    }
    None
}

fn sql(text: &str) -> Option<String> {
    if let Some(e) = first_marker(text, SQL_MARKERS) {
        return Some(e);
    }
    // Oracle: ORA-00942.
    if let Some(at) = find_all(text, "ORA-").find(|&i| {
        let digits = text[i + 4..].bytes().take_while(u8::is_ascii_digit).count();
        digits == 5 && word_start(text, i)
    }) {
        return Some(excerpt(text, at, 9));
    }
    // SQLite result codes: SQLITE_CONSTRAINT, SQLITE_BUSY.
    if let Some(at) = find_all(text, "SQLITE_")
        .find(|&i| text[i + 7..].bytes().next().is_some_and(|b| b.is_ascii_uppercase()))
    {
        return Some(excerpt(text, at, 7));
    }
    // Statements, in upper case as code writes them (prose says "select ... from").
    for (keyword, then, within) in [
        ("SELECT ", " FROM ", 300),
        ("DELETE FROM ", "", 0),
        ("INSERT INTO ", "", 0),
        ("UPDATE ", " SET ", 100),
    ] {
        for at in find_all(text, keyword).filter(|&i| word_start(text, i)) {
            if then.is_empty() {
                return Some(excerpt(text, at, keyword.len()));
            }
            let rest = &text[at + keyword.len()..];
            let window = &rest[..floor_char_boundary(rest, within)];
            if window.contains(then) {
                return Some(excerpt(text, at, keyword.len()));
            }
        }
    }
    for keyword in ["CREATE TABLE ", "DROP TABLE ", "ALTER TABLE "] {
        if let Some(at) = find_all(text, keyword).find(|&i| word_start(text, i)) {
            return Some(excerpt(text, at, keyword.len()));
        }
    }
    None
}

fn file_path(text: &str) -> Option<String> {
    for (start, token) in tokens(text) {
        let token = token.trim_end_matches(['.', ':']);
        if let Some(i) = STRONG_ROOTS.iter().filter_map(|r| token.find(r)).min()
            && token[..i].bytes().all(|b| !b.is_ascii_alphanumeric())
        {
            return Some(excerpt(text, start, token.len()));
        }
        let file_name = token.rsplit('/').next().unwrap_or("");
        let ends_in_file = file_name.rsplit_once('.').is_some_and(|(name, ext)| {
            !name.is_empty() && (1..=5).contains(&ext.len()) && ext.bytes().all(|b| b.is_ascii_alphanumeric())
        });
        if ends_in_file && WEAK_PIECES.iter().any(|p| token.contains(p)) {
            return Some(excerpt(text, start, token.len()));
        }
        // Windows: `C:\Users\...`, `D:\a\...`.
        let b = token.as_bytes();
        if b.len() > 3
            && b[0].is_ascii_alphabetic()
            && b[1] == b':'
            && b[2] == b'\\'
            && b[3].is_ascii_alphanumeric()
        {
            return Some(excerpt(text, start, token.len()));
        }
    }
    None
}

fn banner(text: &str) -> Option<String> {
    if let Some(e) = first_marker(text, BANNER_MARKERS) {
        return Some(e);
    }
    for product in VERSIONED_BANNERS {
        if let Some(at) = find_all(text, product).find(|&i| {
            word_start(text, i)
                && text[i + product.len()..].bytes().next().is_some_and(|b| b.is_ascii_digit())
        }) {
            return Some(excerpt(text, at, product.len() + 1));
        }
    }
    None
}

fn first_marker(text: &str, markers: &[&str]) -> Option<String> {
    markers.iter().find_map(|m| text.find(m).map(|at| excerpt(text, at, m.len())))
}

fn find_all<'a>(text: &'a str, needle: &'a str) -> impl Iterator<Item = usize> + 'a {
    text.match_indices(needle).map(|(i, _)| i)
}

/// Whether `i` starts a word (nothing alphanumeric just before it).
fn word_start(text: &str, i: usize) -> bool {
    text[..i].bytes().last().is_none_or(|b| !b.is_ascii_alphanumeric() && b != b'_')
}

/// Whitespace- and quote-separated tokens with their offsets, leaving out URLs.
fn tokens(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let is_sep = |c: char| c.is_whitespace() || "\"'`()<>[]{},;=|".contains(c);
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (is_sep(c), start) {
            (true, Some(s)) => {
                out.push((s, &text[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &text[s..]));
    }
    out.into_iter().filter(|(_, t)| !t.contains("://"))
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Up to about 70 characters around a match, on one line.
fn excerpt(text: &str, at: usize, len: usize) -> String {
    let start = floor_char_boundary(text, at.saturating_sub(20));
    let end = floor_char_boundary(text, at + len + 50);
    let mut s: String =
        text[start..end].chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>();
    s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if start > 0 {
        s.insert(0, '…');
    }
    if end < text.len() {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> Option<LeakKind> {
        find(text).map(|l| l.kind)
    }

    #[test]
    fn finds_stack_traces() {
        for text in [
            "thread 'tokio-runtime-worker' panicked at src/routes/projects.rs:42:9:\ncalled `Option::unwrap()`",
            "Traceback (most recent call last):\n  File \"app.py\", line 3, in <module>",
            "java.lang.NullPointerException\n\tat com.acme.Api.get(Api.java:42)\n\tat java.base/java.lang.Thread.run",
            "Error: boom\n    at Object.<anonymous> (server.js:3:9)",
            "panic: runtime error: index out of range\n\ngoroutine 1 [running]:\nmain.main()",
            "goroutine 17 [chan receive]:",
            "System.NullReferenceException: x\n   at System.Web.Mvc.Controller.Execute()",
            "Error in handler (handlers.py:88)",
            "undefined method `id' for nil (app/models/user.rb:12:in `name')",
        ] {
            assert_eq!(kind(text), Some(LeakKind::StackTrace), "{text}");
        }
    }

    #[test]
    fn finds_sql() {
        for text in [
            "SQLSTATE[23000]: Integrity constraint violation",
            "ERROR: duplicate key value violates unique constraint \"projects_name_key\"",
            "UNIQUE constraint failed: projects.name",
            "ORA-00942: table or view does not exist",
            "SQLITE_CONSTRAINT: constraint failed",
            "query failed: SELECT id, name FROM projects WHERE id = $1",
            "DELETE FROM sessions WHERE expires < now()",
            "UPDATE projects SET name = 'x'",
            "no such table: projects",
        ] {
            assert_eq!(kind(text), Some(LeakKind::Sql), "{text}");
        }
    }

    #[test]
    fn finds_file_paths() {
        for text in [
            "cannot open /usr/local/share/app/config.toml",
            "failed at /home/deploy/app/server",
            "error in /srv/api/src/handlers/create.ts",
            "missing C:\\Users\\build\\app\\web.config",
            "open /var/lib/app/data.db: permission denied",
            "loading \"/opt/app/site-packages/x.py\"",
        ] {
            assert_eq!(kind(text), Some(LeakKind::FilePath), "{text}");
        }
    }

    #[test]
    fn finds_banners() {
        for text in [
            "<html><head><title>Error</title></head><body><h1>Whitelabel Error Page</h1>",
            "<hr><address>Apache/2.4.41 (Ubuntu) Server at example.com Port 80</address>",
            "<hr><center>nginx/1.18.0</center>",
            "<html><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center>",
            "<pre>Cannot GET /v1/nope</pre>",
            "upstream connect error or disconnect/reset before headers. reset reason: overflow",
        ] {
            assert_eq!(kind(text), Some(LeakKind::Banner), "{text}");
        }
    }

    #[test]
    fn ordinary_error_prose_is_clean() {
        for text in [
            "Project with ID 'prj_0a1b2c3d4e5f' was not found.",
            "https://rebuff.dev/errors#resource_not_found",
            "https://docs.example.com/src/errors/usr/guide.html#not_found",
            "https://example.com/app/v1/errors/validation.json",
            "No route for GET /v1/rebuff-probe-no-such-route",
            "Select a value from the list; the request failed at the update step.",
            "Invalid JSON at line 1, column 9: expected value",
            "/name",
            "/config/batch_size",
            "The request body must be application/json, not text/plain.",
            "Too many requests: retry after 12 seconds.",
            "Version 1.2.3 of the API is not supported. Upgrade to v2.",
            "Use Node.js: version 18 or later.",
            "The field `src` must be a URL.",
            "/src/0",
            "An internal error occurred. Quote request id req_01HX when contacting support.",
            "Bearer realm=\"api\", error=\"invalid_token\"",
            "Missing scope write: this key can read only.",
            "rate limit: 60/minute",
        ] {
            assert_eq!(find(text), None, "{text}");
        }
    }

    #[test]
    fn json_bodies_are_scanned_unescaped() {
        let body = br#"{"detail":"cannot read C:\\app\\secrets.txt"}"#;
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let text = scannable(body, Some(&v));
        assert_eq!(kind(&text), Some(LeakKind::FilePath), "{text}");
    }

    #[test]
    fn excerpts_are_short_and_on_one_line() {
        let text = format!(
            "{}\nthread 'main' panicked at src/main.rs:1:1:\nboom{}",
            "x".repeat(200),
            "y".repeat(200)
        );
        let leak = find(&text).unwrap_or_else(|| panic!("found"));
        assert!(leak.excerpt.contains("panicked at"), "{}", leak.excerpt);
        assert!(!leak.excerpt.contains('\n'));
        assert!(leak.excerpt.chars().count() < 100);
    }
}

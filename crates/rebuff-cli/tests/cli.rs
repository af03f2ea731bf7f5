//! The `rebuff` binary as a user runs it: real catalogs, real files, exit statuses.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use support::rebuff_stdin;

const STANDARD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../rebuff-core/catalog/standard.toml");
const PROFILES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../rebuff-core/catalog/profiles");

fn rebuff(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rebuff")).args(args).output().expect("run rebuff")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn assert_exit(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "stdout:\n{}\nstderr:\n{}", stdout(o), stderr(o));
}

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "rebuff-cli-test-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn write(&self, file: &str, text: &str) -> PathBuf {
        let path = self.0.join(file);
        std::fs::write(&path, text).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn profile(name: &str) -> String {
    format!("{PROFILES}/{name}.toml")
}

const PROFILE_NAMES: [&str; 5] = ["arize", "dataxid", "mlops", "incidents", "apikeys"];

const HEADER: &str =
    "[catalog]\nname = \"broken\"\ndialect = \"rebuff\"\ntype_uri = \"https://e.x/errors#{anchor}\"\n";

fn entry(code: &str, status: u16, extra: &str) -> String {
    format!(
        "\n[[error]]\ncode = \"{code}\"\nstatus = {status}\ncategory = \"c\"\ntitle = \"Title\"\n\
         when = \"w\"\nfix = \"f\"\nretry = \"never\"\n{extra}"
    )
}

/// The 1-based line of the `n`th (0-based) occurrence of `needle`.
fn line_of(text: &str, needle: &str, n: usize) -> usize {
    let (at, _) = text.match_indices(needle).nth(n).expect("needle in text");
    text[..at].lines().count() + 1
}

// ---- lint ---------------------------------------------------------------------------------

#[test]
fn lint_accepts_the_standard_catalog_and_every_profile() {
    let o = rebuff(&["lint", STANDARD]);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("catalog `rebuff` (dialect rebuff, "), "{}", stdout(&o));
    assert!(!stdout(&o).contains("warning"), "{}", stdout(&o));
    for name in PROFILE_NAMES {
        let o = rebuff(&["lint", &profile(name)]);
        assert_exit(&o, 0);
        let out = stdout(&o);
        assert!(out.starts_with("ok: "), "{name}: {out}");
        assert!(out.contains(&format!("catalog `{name}` (dialect {name}, ")), "{out}");
        assert!(out.contains("extends rebuff"), "{out}");
    }
}

/// Lints `text` and checks the error names the file, the line of `needle` and the entry.
#[track_caller]
fn assert_lint_fails(text: &str, needle: (&str, usize), entry: Option<&str>, message: &str) {
    let dir = TempDir::new("lint");
    let path = dir.write("catalog.toml", text);
    let o = rebuff(&["lint", path_str(&path)]);
    assert_exit(&o, 1);
    let err = stderr(&o);
    let at = format!("{}:{}: ", path.display(), line_of(text, needle.0, needle.1));
    assert!(err.contains(&at), "expected `{at}` in: {err}");
    if let Some(entry) = entry {
        assert!(err.contains(&format!("entry `{entry}`")), "{err}");
    }
    assert!(err.contains(message), "expected `{message}` in: {err}");
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
}

#[test]
fn lint_rejects_a_duplicate_code() {
    let text = format!("{HEADER}{}{}", entry("dup_code", 404, ""), entry("dup_code", 409, ""));
    assert_lint_fails(&text, ("[[error]]", 1), Some("dup_code"), "duplicate code");
}

/// Regression: a missing field was reported with a line but no entry.
#[test]
fn lint_names_the_entry_a_required_field_is_missing_from() {
    let text = format!("{HEADER}{}{}", entry("ok_code", 404, ""), entry("untitled", 409, ""))
        .replacen("title = \"Title\"\n", "", 2)
        .replacen("[[error]]\ncode = \"ok_code\"", "[[error]]\ncode = \"ok_code\"\ntitle = \"T\"", 1);
    assert_lint_fails(&text, ("[[error]]", 1), Some("untitled"), "missing field `title`");
}

#[test]
fn lint_rejects_an_unmasked_server_error() {
    let text = format!("{HEADER}{}{}", entry("ok_code", 404, ""), entry("boom", 503, ""));
    assert_lint_fails(&text, ("[[error]]", 1), Some("boom"), "masked = true");
}

#[test]
fn lint_rejects_an_unknown_status() {
    let text = format!("{HEADER}{}{}", entry("ok_code", 404, ""), entry("moved", 302, ""));
    assert_lint_fails(&text, ("[[error]]", 1), Some("moved"), "302 is not an HTTP error status");
}

#[test]
fn lint_rejects_an_override_of_a_missing_code() {
    let text = "[catalog]\nname = \"p\"\nextends = \"standard\"\ndialect = \"rebuff\"\n\n\
                [override.api_key_missing]\ntitle = \"Fine\"\n\n[override.no_such_code]\ntitle = \"Nope\"\n";
    assert_lint_fails(text, ("[override.no_such_code]", 0), Some("no_such_code"), "no such code");
}

#[test]
fn lint_rejects_an_sdk_class_that_is_not_an_identifier() {
    let text = format!(
        "{HEADER}{}{}",
        entry("ok_code", 404, ""),
        entry("bad_class", 409, "sdk_class = \"conflict-error\"\n")
    );
    assert_lint_fails(&text, ("[[error]]", 1), Some("bad_class"), "sdk_class `conflict-error`");
    let text = "[catalog]\nname = \"p\"\nextends = \"standard\"\ndialect = \"rebuff\"\n\n\
                [override.api_key_missing]\nsdk_class = \"Auth Error\"\n";
    assert_lint_fails(
        text,
        ("[override.api_key_missing]", 0),
        Some("api_key_missing"),
        "sdk_class `Auth Error`",
    );
}

#[test]
fn lint_rejects_malformed_toml() {
    let text = format!("{HEADER}{}[[error]\ncode = \"x\"\n", entry("ok_code", 404, ""));
    assert_lint_fails(&text, ("[[error]\n", 0), None, "expected `]`");
}

#[test]
fn lint_warns_about_an_empty_fix_but_passes() {
    let dir = TempDir::new("lint-warn");
    let text = "[catalog]\nname = \"p\"\nextends = \"standard\"\ndialect = \"rebuff\"\n\n\
                [override.api_key_missing]\nfix = \"\"\n";
    let path = dir.write("profile.toml", text);
    let o = rebuff(&["lint", path_str(&path)]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    let line = line_of(text, "[override.api_key_missing]", 0);
    assert!(
        out.contains(&format!("warning: {}:{line}: entry `api_key_missing`: `fix` is empty", path.display()))
    );
    assert!(out.contains("ok with 1 warning: "), "{out}");
}

/// A service's catalog: the standard codes and its own.
const WIDGETS: &str = "[catalog]\nname = \"widgets\"\ndialect = \"rebuff\"\n\
    type_uri = \"https://widgets.example/errors#{anchor}\"\nextends = \"standard\"\n\n\
    [[error]]\ncode = \"widget_not_found\"\nstatus = 404\ncategory = \"invalid_request_error\"\n\
    title = \"Widget not found\"\nwhen = \"No widget has the id.\"\nfix = \"Check the id.\"\nretry = \"never\"\n";

#[test]
fn lint_accepts_a_catalog_that_adds_codes_to_standard_for_layers_and_server() {
    let dir = TempDir::new("lint-widgets");
    let path = dir.write("widgets.toml", WIDGETS);
    let o = rebuff(&["lint", path_str(&path)]);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains("catalog `widgets` (dialect rebuff, 45 codes, extends rebuff)"),
        "{}",
        stdout(&o)
    );
    let o = rebuff(&["lint", "--for", "layers", path_str(&path)]);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("has every code rebuff-axum's layers raise"), "{}", stdout(&o));
    let o = rebuff(&["lint", "--for", "server", path_str(&path)]);
    assert_exit(&o, 0);
    // A profile over it: still presentation only.
    let profile = dir.write(
        "loud.toml",
        "[catalog]\nname = \"loud\"\ndialect = \"incidents\"\nextends = \"widgets.toml\"\ncode_case = \"upper\"\n",
    );
    let o = rebuff(&["lint", "--for", "layers", path_str(&profile)]);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("45 codes, extends widgets"), "{}", stdout(&o));
    let o = rebuff(&["explain", "widget_not_found", "--catalog", path_str(&profile)]);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("WIDGET_NOT_FOUND"), "{}", stdout(&o));
}

#[test]
fn lint_for_layers_names_the_codes_a_catalog_lacks() {
    let dir = TempDir::new("lint-alone");
    let path = dir.write("widgets.toml", &WIDGETS.replace("extends = \"standard\"\n", ""));
    // It is a valid catalog...
    assert_exit(&rebuff(&["lint", path_str(&path)]), 0);
    // ...that cannot serve rebuff-axum's layers.
    let o = rebuff(&["lint", "--for", "layers", path_str(&path)]);
    assert_exit(&o, 1);
    let err = stderr(&o);
    assert!(err.contains(&format!("error: {}: catalog `widgets` lacks ", path.display())), "{err}");
    for code in ["internal_error", "api_key_missing", "rate_limit_exceeded", "idempotency_key_in_use"] {
        assert!(err.contains(code), "{code} in: {err}");
    }
    assert!(err.contains("extends = \"standard\""), "{err}");
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
}

#[test]
fn lint_of_a_missing_file_is_a_usage_error() {
    let o = rebuff(&["lint", "/definitely/not/here.toml"]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("/definitely/not/here.toml: cannot read the file"), "{}", stderr(&o));
}

// ---- explain ------------------------------------------------------------------------------

#[test]
fn explain_finds_stable_and_wire_codes() {
    let o = rebuff(&["explain", "api_key_missing", "--profile", "dataxid"]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    for want in [
        "status:       401 Unauthorized",
        "category:     authentication_error",
        "retry:        after_reauth - ",
        "masked:       no",
        "type URI:     https://docs.dataxid.com/docs/errors#api_key_missing",
        "HTTP/1.1 401 Unauthorized",
        "\"request_id\": \"req_abc123\"",
    ] {
        assert!(out.contains(want), "expected `{want}` in:\n{out}");
    }

    let o = rebuff(&["explain", "RESOURCE_NOT_FOUND", "--profile", "arize"]);
    assert_exit(&o, 0);
    assert!(stdout(&o).starts_with("code:         resource_not_found\n"), "{}", stdout(&o));

    let o = rebuff(&["explain", "internal_error"]);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("masked:       yes"), "{}", stdout(&o));
}

#[test]
fn explain_of_an_unknown_code_lists_close_matches() {
    let o = rebuff(&["explain", "api_key_mising"]);
    assert_exit(&o, 1);
    let err = stderr(&o);
    assert!(err.contains("no code `api_key_mising` in catalog `rebuff`"), "{err}");
    assert!(err.contains("did you mean: api_key_missing"), "{err}");
}

#[test]
fn explain_reads_a_catalog_file() {
    let o = rebuff(&["explain", "model_not_ready", "--catalog", &profile("dataxid")]);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("catalog:      dataxid (dialect dataxid)"), "{}", stdout(&o));
}

// ---- render -------------------------------------------------------------------------------

/// Splits `curl -i` style output into the head and the JSON body.
fn split_response(out: &str) -> (&str, serde_json::Value) {
    let (head, body) = out.split_once("\n\n").expect("blank line after the headers");
    (head, serde_json::from_str(body).expect("JSON body"))
}

#[test]
fn render_reproduces_the_dataxid_seed_example() {
    let o = rebuff(&[
        "render",
        "--profile",
        "dataxid",
        "--code",
        "api_key_missing",
        "--request-id",
        "req_abc123",
    ]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    let (head, body) = split_response(&out);
    let mut lines = head.lines();
    assert_eq!(lines.next(), Some("HTTP/1.1 401 Unauthorized"));
    let headers: Vec<&str> = lines.collect();
    assert!(headers.contains(&"content-type: application/json"), "{head}");
    assert!(headers.contains(&"x-request-id: req_abc123"), "{head}");
    // Seed 001, "api_key_missing": the example response, member for member.
    let seed = serde_json::json!({
        "error": {
            "type": "authentication_error",
            "code": "api_key_missing",
            "message": "Authorization header with Bearer token is required.",
            "doc_url": "https://docs.dataxid.com/docs/errors#api_key_missing"
        },
        "request_id": "req_abc123"
    });
    assert_eq!(body, seed);
}

#[test]
fn render_carries_fields_param_and_retry_after() {
    let o = rebuff(&[
        "render",
        "--code",
        "validation_failed",
        "--detail",
        "Two fields are invalid.",
        "--field",
        "/name=must not be empty",
        "--field",
        "/config/batch_size=must be greater than 0",
        "--request-id",
        "req_1",
    ]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    let (head, body) = split_response(&out);
    assert!(head.starts_with("HTTP/1.1 422 Unprocessable Entity\n"), "{head}");
    assert!(head.contains("content-type: application/problem+json"), "{head}");
    assert_eq!(body["detail"], "Two fields are invalid.");
    assert_eq!(body["errors"][0]["pointer"], "/name");
    assert_eq!(body["errors"][1]["pointer"], "/config/batch_size");
    assert_eq!(body["errors"][1]["reason"], "invalid");

    let o = rebuff(&["render", "--profile", "arize", "--code", "rate_limit_exceeded", "--retry-after", "7"]);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("\nretry-after: 7\n"), "{}", stdout(&o));
}

#[test]
fn render_masks_the_cause_unless_debug() {
    let args = ["render", "--code", "internal_error", "--cause", "SELECT * FROM keys failed"];
    let o = rebuff(&args);
    assert_exit(&o, 0);
    assert!(!stdout(&o).contains("SELECT"), "{}", stdout(&o));
    let o = rebuff(&[&args[..], &["--debug"]].concat());
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("SELECT * FROM keys failed"), "{}", stdout(&o));
}

#[test]
fn render_rejects_a_field_without_a_json_pointer() {
    let o = rebuff(&["render", "--code", "validation_failed", "--field", "name=required"]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("must start with '/'"), "{}", stderr(&o));
}

#[test]
fn render_of_an_unknown_code_is_a_usage_error() {
    let o = rebuff(&["render", "--profile", "mlops", "--code", "no_such_thing"]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("no code `no_such_thing` in catalog `mlops`"), "{}", stderr(&o));
}

// ---- parse --------------------------------------------------------------------------------

/// Seed 000 (arize), the 404 example.
const ARIZE_404: &str = r#"{
  "status": 404,
  "title": "Not Found",
  "type": "https://arize.com/docs/ax/rest-reference/errors#resource-not-found",
  "detail": "Dataset with ID 'ZGF0YXNldC10ZXN0' was not found."
}"#;

#[test]
fn parse_decodes_an_arize_body_from_a_file() {
    let dir = TempDir::new("parse");
    let path = dir.write("body.json", ARIZE_404);
    let o = rebuff(&[
        "parse",
        "--status",
        "404",
        "--header",
        "Content-Type: application/problem+json",
        "--header",
        "X-Request-Id: req_xyz",
        "--profile",
        "arize",
        path_str(&path),
    ]);
    assert_exit(&o, 0);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON output");
    assert_eq!(v["status"], 404);
    assert_eq!(v["title"], "Not Found");
    assert_eq!(v["message"], "Dataset with ID 'ZGF0YXNldC10ZXN0' was not found.");
    assert_eq!(v["type_uri"], "https://arize.com/docs/ax/rest-reference/errors#resource-not-found");
    assert_eq!(v["request_id"], "req_xyz");
    assert_eq!(v["envelope"]["dialect"], "arize");
    assert_eq!(v["stable_code"], "resource_not_found");
}

#[test]
fn parse_reads_stdin_and_survives_non_json() {
    let o = rebuff_stdin(&["parse", "--status", "502", "-"], b"<html><body>Bad Gateway</body></html>");
    assert_exit(&o, 0);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON output");
    assert_eq!(v["status"], 502);
    assert_eq!(v["envelope"]["kind"], "text");
    assert!(v.get("stable_code").is_none(), "no catalog, no stable_code: {v}");

    let o = rebuff_stdin(&["parse"], ARIZE_404.as_bytes());
    assert_exit(&o, 0);
    assert!(stderr(&o).contains("pass --status 404"), "{}", stderr(&o));
}

#[test]
fn parse_of_a_missing_file_or_bad_header_is_a_usage_error() {
    let o = rebuff(&["parse", "/definitely/not/here.json"]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("cannot read /definitely/not/here.json"), "{}", stderr(&o));
    let o = rebuff(&["parse", "--header", "no colon here", "-"]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("expected `Name: value`"), "{}", stderr(&o));
}

// ---- diff ---------------------------------------------------------------------------------

#[test]
fn diff_of_identical_catalogs_is_clean() {
    let o = rebuff(&["diff", STANDARD, STANDARD]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), "no changes\n");
}

#[test]
fn diff_reports_a_removed_code_and_a_status_change() {
    let standard = std::fs::read_to_string(STANDARD).expect("read standard.toml");
    let renamed = "code = \"api_key_expired\"";
    let moved = "code = \"resource_not_found\"\nstatus = 404";
    assert!(standard.contains(renamed) && standard.contains(moved), "the test edits these entries");
    let edited = standard
        .replace(renamed, "code = \"api_key_too_old\"")
        .replace(moved, "code = \"resource_not_found\"\nstatus = 410");
    let dir = TempDir::new("diff");
    let new = dir.write("new.toml", &edited);

    let o = rebuff(&["diff", STANDARD, path_str(&new)]);
    assert_exit(&o, 1);
    let out = stdout(&o);
    assert!(out.contains("BREAKING  `api_key_expired`: code removed\n"), "{out}");
    assert!(out.contains("BREAKING  `resource_not_found`: status changed from 404 to 410\n"), "{out}");
    assert!(out.contains("          `api_key_too_old`: code added\n"), "{out}");
    assert!(out.ends_with("3 changes, 2 breaking\n"), "{out}");
}

#[test]
fn diff_without_breaking_changes_exits_zero() {
    let dir = TempDir::new("diff-ok");
    let old = dir.write("old.toml", &format!("{HEADER}{}", entry("a_code", 404, "")));
    let new =
        dir.write("new.toml", &format!("{HEADER}{}{}", entry("a_code", 404, ""), entry("b_code", 409, "")));
    let o = rebuff(&["diff", path_str(&old), path_str(&new)]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o), "          `b_code`: code added\n1 changes, 0 breaking\n");
}

// ---- docs ---------------------------------------------------------------------------------

#[test]
fn docs_writes_the_requested_format_to_a_file() {
    let dir = TempDir::new("docs");
    let md = dir.0.join("errors.md");
    let o = rebuff(&["docs", &profile("dataxid"), "--format", "md", "--out", path_str(&md)]);
    assert_exit(&o, 0);
    assert!(stdout(&o).is_empty(), "--out keeps stdout empty: {}", stdout(&o));
    let text = std::fs::read_to_string(&md).expect("docs written");
    assert!(text.contains("api_key_missing"), "{text}");

    let json = dir.0.join("errors.json");
    let o = rebuff(&["docs", "arize", "--format", "json", "--out", path_str(&json)]);
    assert_exit(&o, 0);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("docs written")).expect("valid JSON");
    assert!(v.is_object(), "{v}");

    let o = rebuff(&["docs", "standard", "--format", "openapi"]);
    assert_exit(&o, 0);
    let _: serde_json::Value = serde_json::from_slice(&o.stdout).expect("OpenAPI components are JSON");
}

#[test]
fn docs_of_an_unknown_catalog_is_a_usage_error() {
    let o = rebuff(&["docs", "nonesuch"]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("neither a catalog file nor a built-in catalog"), "{}", stderr(&o));
}

// ---- arguments ----------------------------------------------------------------------------

#[test]
fn every_command_has_help() {
    for cmd in ["lint", "explain", "render", "parse", "diff", "docs"] {
        let o = rebuff(&[cmd, "--help"]);
        assert_exit(&o, 0);
        assert!(stdout(&o).contains(&format!("Usage: rebuff {cmd}")), "{}", stdout(&o));
    }
    let o = rebuff(&["--help"]);
    assert_exit(&o, 0);
}

#[test]
fn wrong_arguments_exit_2_with_a_message() {
    for args in [
        &[][..],
        &["frobnicate"],
        &["lint"],
        &["diff", STANDARD],
        &["render", "--code"],
        &["render", "--profile", "nope", "--code", "internal_error"],
        &["explain", "x", "--profile", "arize", "--catalog", STANDARD],
        &["docs", "standard", "--format", "pdf"],
        &["parse", "--status", "abc"],
        &["parse", "--status", "700"],
    ] {
        let o = rebuff(args);
        assert_exit(&o, 2);
        assert!(stderr(&o).contains("rror"), "{args:?}: {}", stderr(&o));
    }
}

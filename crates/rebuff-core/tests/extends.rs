//! Catalogs that grow: a service's catalog extends the standard one with codes of its own,
//! a profile sits on top of it, and `require` names what a catalog lacks.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use rebuff_core::catalog::ErrorKind;
use rebuff_core::{Catalog, Problem};

const WIDGETS: &str = r#"
[catalog]
name = "widgets"
description = "The widgets service."
dialect = "rebuff"
type_uri = "https://widgets.example/errors#{anchor}"
extends = "standard"

[[error]]
code = "widget_not_found"
status = 404
category = "invalid_request_error"
title = "Widget not found"
message = "No widget has this id."
when = "The widget id names no widget."
fix = "List the widgets to find a valid id."
retry = "never"
"#;

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "rebuff-core-extends-{}-{}",
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

#[test]
fn a_service_catalog_adds_its_codes_after_the_standard_ones() {
    let widgets = Catalog::from_toml_str("widgets.toml", WIDGETS).expect("valid catalog");
    let standard = Catalog::standard();
    assert_eq!(widgets.entries().len(), standard.entries().len() + 1);
    for (mine, theirs) in widgets.entries().iter().zip(standard.entries()) {
        assert_eq!(mine.code, theirs.code);
        assert_eq!(mine.status, theirs.status);
    }
    assert_eq!(widgets.name(), "widgets");
    assert_eq!(widgets.extends(), Some("rebuff"));
    let own = widgets.get("widget_not_found").expect("its own code");
    assert_eq!(own.status, 404);
    assert_eq!(own.type_uri, "https://widgets.example/errors#widget_not_found");
    // Inherited codes take the service's type URI too: one error reference for the service.
    let inherited = widgets.get("api_key_missing").expect("an inherited code");
    assert_eq!(inherited.type_uri, "https://widgets.example/errors#api_key_missing");

    let res = widgets.render(&Problem::dynamic("widget_not_found").request_id("req_1")).expect("renders");
    assert_eq!(res.status(), 404);
    let body: serde_json::Value = serde_json::from_slice(res.body()).expect("json");
    assert_eq!(body["code"], "widget_not_found");
    assert_eq!(body["detail"], "No widget has this id.");
    // A bare 404 is still the generic code, not the service's own one.
    assert_eq!(widgets.identify(404, None, None).map(|e| e.code.as_str()), Some("resource_not_found"));
}

#[test]
fn an_inherited_code_cannot_be_redefined() {
    let text = WIDGETS.replace("widget_not_found", "resource_not_found");
    let err = Catalog::from_toml_str("widgets.toml", &text).expect_err("redefines a code");
    assert_eq!(err.kind(), ErrorKind::DuplicateCode);
    assert_eq!(err.entry(), Some("resource_not_found"));
    assert_eq!(err.line(), Some(9), "the line of its `[[error]]`");
    assert!(err.to_string().contains("[override.resource_not_found]"), "{err}");
}

#[test]
fn an_added_code_is_validated_like_any_other() {
    let text = WIDGETS.replace("status = 404", "status = 503");
    let err = Catalog::from_toml_str("widgets.toml", &text).expect_err("an unmasked 5xx");
    assert_eq!(err.kind(), ErrorKind::UnmaskedServerError);
    assert_eq!(err.entry(), Some("widget_not_found"));
}

#[test]
fn a_base_catalog_without_entries_is_refused() {
    let text = "[catalog]\nname = \"empty\"\ndialect = \"rebuff\"\ntype_uri = \"https://e.x/#{anchor}\"\n";
    let err = Catalog::from_toml_str("empty.toml", text).expect_err("nothing in it");
    assert!(err.to_string().contains("at least one `[[error]]` entry"), "{err}");
}

#[test]
fn a_profile_over_a_service_catalog_changes_presentation_only() {
    let dir = TempDir::new();
    let widgets = dir.write("widgets.toml", WIDGETS);
    let profile = dir.write(
        "widgets-upper.toml",
        "[catalog]\nname = \"widgets-upper\"\ndialect = \"incidents\"\nextends = \"widgets.toml\"\n\
         code_case = \"upper\"\n\n[override.widget_not_found]\ntitle = \"No such widget\"\n",
    );
    let catalog = Catalog::from_path(&profile).expect("valid profile");
    assert_eq!(catalog.extends(), Some("widgets"));
    assert_eq!(catalog.source_files(), [profile.clone(), widgets.clone()]);
    let own = catalog.get("widget_not_found").expect("inherited from the service catalog");
    assert_eq!(own.wire_code.as_deref(), Some("WIDGET_NOT_FOUND"));
    assert_eq!(own.title, "No such widget");
    assert_eq!(catalog.get("api_key_missing").and_then(|e| e.wire_code.as_deref()), Some("API_KEY_MISSING"));
    let res = catalog.render(&Problem::dynamic("widget_not_found")).expect("renders");
    let body: serde_json::Value = serde_json::from_slice(res.body()).expect("json");
    assert_eq!(body["code"], "WIDGET_NOT_FOUND");

    // Still presentation only: the status of a service code cannot change either.
    let bad = dir.write(
        "bad.toml",
        "[catalog]\nname = \"bad\"\ndialect = \"rebuff\"\nextends = \"widgets.toml\"\n\n\
         [override.widget_not_found]\nstatus = 410\n",
    );
    let err = Catalog::from_path(&bad).expect_err("changes a status");
    assert_eq!(err.kind(), ErrorKind::NotPresentation);
    assert_eq!(err.entry(), Some("widget_not_found"));
}

#[test]
fn require_names_every_missing_code_once() {
    let text = WIDGETS.replace("extends = \"standard\"\n", "");
    let alone = Catalog::from_toml_str("widgets.toml", &text).expect("a base catalog");
    let err = alone
        .require(["widget_not_found", "api_key_missing", "internal_error", "api_key_missing"], "the layers")
        .expect_err("lacks two");
    assert_eq!(err.codes(), ["api_key_missing", "internal_error"]);
    assert_eq!(err.catalog(), "widgets");
    assert_eq!(
        err.to_string(),
        "catalog `widgets` lacks 2 codes that the layers can raise: api_key_missing, internal_error; \
         extend `standard` (`extends = \"standard\"` in `[catalog]`) or add them as `[[error]]` entries"
    );
    let grown = Catalog::from_toml_str("widgets.toml", WIDGETS).expect("valid");
    assert_eq!(grown.require(["widget_not_found", "api_key_missing"], "the layers"), Ok(()));
}

//! The tables `rebuff docs CATALOG --format rust-client` generates: they compile, they are
//! what the generator gives today, and they identify every response exactly as the catalog
//! does, so a consumer with the table and one with the catalog see the same codes.
//!
//! To regenerate after a catalog change (from the workspace root):
//!
//! ```text
//! for p in rebuff arize dataxid mlops incidents apikeys; do
//!   cargo run -q -p rebuff-cli -- docs $p --format rust-client --out crates/rebuff-client/tests/generated/$p.rs
//! done
//! ```

// The generated items are `pub` for a consumer's crate; here they live in a test binary.
#![allow(unreachable_pub)]

use http::{HeaderMap, StatusCode};
use rebuff::{Catalog, docs};
use rebuff_client::{CodeTable, Contract, ErrorCode};

mod rebuff_api {
    include!("generated/rebuff.rs");
}
mod arize_api {
    include!("generated/arize.rs");
}
mod dataxid_api {
    include!("generated/dataxid.rs");
}
mod mlops_api {
    include!("generated/mlops.rs");
}
mod incidents_api {
    include!("generated/incidents.rs");
}
mod apikeys_api {
    include!("generated/apikeys.rs");
}

fn tables() -> [(&'static str, &'static CodeTable); 6] {
    [
        ("rebuff", &rebuff_api::TABLE),
        ("arize", &arize_api::TABLE),
        ("dataxid", &dataxid_api::TABLE),
        ("mlops", &mlops_api::TABLE),
        ("incidents", &incidents_api::TABLE),
        ("apikeys", &apikeys_api::TABLE),
    ]
}

#[test]
fn the_generated_files_are_current() {
    for (profile, _) in tables() {
        let path = format!("{}/tests/generated/{profile}.rs", env!("CARGO_MANIFEST_DIR"));
        let on_disk = std::fs::read_to_string(&path).expect("generated file");
        let catalog = Catalog::builtin(profile).expect("built in");
        assert!(
            on_disk == docs::rust_client(catalog),
            "{path} is stale: regenerate it (see this file's docs)"
        );
        let from_export = docs::rust_client_json(&docs::json(catalog)).expect("an export");
        assert!(on_disk == from_export, "{profile}: the JSON export gives another table");
    }
}

#[test]
fn tables_identify_exactly_like_catalogs() {
    for (profile, table) in tables() {
        let catalog = Catalog::builtin(profile).expect("built in");
        assert_eq!((table.name(), table.dialect()), (catalog.name(), catalog.dialect()));
        let mut statuses: Vec<u16> = catalog.entries().iter().map(|e| e.status.as_u16()).collect();
        statuses.extend([418, 501, 599]);
        let mut wires: Vec<Option<&str>> = catalog.entries().iter().map(|e| e.wire_code.as_deref()).collect();
        wires.extend([None, Some("NOT_A_CODE")]);
        let mut types: Vec<Option<&str>> =
            catalog.entries().iter().map(|e| Some(e.type_uri.as_str())).collect();
        types.extend([None, Some("about:blank")]);
        let mut checked = 0;
        for &status in &statuses {
            for &wire in &wires {
                for &type_uri in &types {
                    let want = catalog.identify(status, wire, type_uri).map(|e| e.code.as_str());
                    let got = table.identify(status, wire, type_uri).map(|r| r.code());
                    assert_eq!(got, want, "{profile}: status {status}, wire {wire:?}, type {type_uri:?}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 1000, "{profile}: {checked}");
        for (row, entry) in table.rows().iter().zip(catalog.entries()) {
            assert_eq!(row.code(), entry.code);
            assert_eq!(row.retry(), entry.retry);
            assert_eq!(row.status(), entry.status.as_u16());
        }
    }
}

/// Every variant of a generated enum against its catalog entry.
macro_rules! check_enum {
    ($module:ident, $profile:literal) => {{
        use $module::Code;
        let catalog = Catalog::builtin($profile).expect("built in");
        assert_eq!(Code::ALL.len(), catalog.entries().len());
        for (&code, entry) in Code::ALL.iter().zip(catalog.entries()) {
            assert_eq!(code.as_str(), entry.code);
            assert_eq!(code.to_string(), entry.code);
            assert_eq!(code.wire_code(), entry.wire_code.as_deref());
            assert_eq!(code.status(), entry.status.as_u16());
            assert_eq!(code.retry(), entry.retry);
            assert_eq!(Code::from_code(&entry.code), Some(code));
            let identified = catalog.identify(code.status(), code.wire_code(), None).map(|e| e.code.as_str());
            assert_eq!(Code::identify(code.status(), code.wire_code()).map(Code::as_str), identified);
        }
    }};
}

#[test]
fn generated_enums_match_their_catalogs() {
    check_enum!(rebuff_api, "rebuff");
    check_enum!(arize_api, "arize");
    check_enum!(dataxid_api, "dataxid");
    check_enum!(mlops_api, "mlops");
    check_enum!(incidents_api, "incidents");
    check_enum!(apikeys_api, "apikeys");
}

#[test]
fn typed_codes_from_a_generated_table() {
    use dataxid_api::{Code, TABLE};

    assert_eq!(Code::ALL.len(), TABLE.rows().len());
    assert_eq!(Code::QuotaExceeded.as_str(), "quota_exceeded");
    assert_eq!(Code::QuotaExceeded.status(), 402);
    assert_eq!(ErrorCode::as_str(&Code::RateLimitExceeded), "rate_limit_exceeded");
    assert_eq!("model_not_ready".parse::<Code>(), Ok(Code::ModelNotReady));
    assert_eq!("nope".parse::<Code>().map_err(|e| e.code().to_owned()), Err("nope".to_owned()));
    assert_eq!(Code::identify(429, Some("rate_limit_exceeded")), Some(Code::RateLimitExceeded));
    assert_eq!(Code::identify(500, None), Some(Code::InternalError));

    let contract = Contract::table(&TABLE);
    let body = br#"{"error":{"type":"rate_limit_error","code":"rate_limit_exceeded","message":"Slow down."},"request_id":"req_1"}"#;
    let e = contract.decode(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), body);
    assert_eq!(e.code_as::<Code>(), Some(Code::RateLimitExceeded));
    assert!(e.is_retryable());
    // The facade's typed codes name the same stable codes.
    assert_eq!(e.code_as::<rebuff::standard::Code>(), Some(rebuff::standard::Code::RateLimitExceeded));

    // Arize sends no code on 5xx: a plain problem body is still Arize's, identified by status.
    let arize = Contract::table(&arize_api::TABLE);
    let body = br#"{"status":503,"title":"Service Unavailable","type":"https://arize.com/docs/api-reference/errors#503"}"#;
    let e = arize.decode(StatusCode::SERVICE_UNAVAILABLE, &HeaderMap::new(), body);
    assert_eq!(e.dialect(), Some(rebuff::Dialect::Arize));
    assert_eq!(e.code_as::<arize_api::Code>(), Some(arize_api::Code::ServiceUnavailable));
}

#[test]
fn an_export_from_outside_cannot_break_the_generated_source() {
    let export = serde_json::json!({
        "name": "evil\"api",
        "dialect": "apikeys",
        "errors": [
            {"code": "self", "status": 400, "retry": "never", "title": "x\n} fn pwned() {", "when": "a\r\nb */"},
            {"code": "self", "status": 400, "retry": "never"},
            {"code": "9lives", "status": 404, "retry": "backoff", "wire_code": "\"; panic!(); \""},
            {"code": "a-b", "status": 500, "retry": "retry_after", "title": "`unclosed <b>[link]"},
            {"code": "AB", "status": 500, "retry": "after_fix"},
        ]
    });
    let source = docs::rust_client_json(&export).expect("an export");
    for line in source.lines() {
        let t = line.trim_start();
        assert!(!t.starts_with("fn pwned") && !t.starts_with("b */"), "{line}");
    }
    for variant in ["SelfCode,", "SelfCode2,", "C9lives,", "AB,", "AB2,"] {
        assert!(source.contains(&format!("    {variant}\n")), "{variant} in\n{source}");
    }
    assert!(source.contains(r#"Some("\"; panic!(); \"")"#));
    assert!(source.contains(r#""evil\"api""#));

    for bad in [
        serde_json::json!({}),
        serde_json::json!({"name": "x", "dialect": "klingon", "errors": []}),
        serde_json::json!({"name": "x", "dialect": "rebuff", "errors": []}),
        serde_json::json!({"name": "x", "dialect": "rebuff", "errors": [{"code": "a", "status": 200, "retry": "never"}]}),
        serde_json::json!({"name": "x", "dialect": "rebuff", "errors": [{"code": "a", "status": 400, "retry": "often"}]}),
    ] {
        assert!(docs::rust_client_json(&bad).is_err(), "{bad}");
    }
}

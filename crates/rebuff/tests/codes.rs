//! The generated standard codes agree with the standard catalog.

use std::str::FromStr;

use rebuff::standard::Code;
use rebuff::{Catalog, ErrorCode, Problem, RetryClass, UnknownCode};

// A profile through the macro, with a restricted visibility: the codes are the stable ones.
mod apikeys {
    rebuff::catalog!(pub(crate) Code = "builtin:apikeys");
}

// A service's catalog that extends the standard one: its codes and the inherited ones.
mod widgets {
    rebuff::catalog!(pub(crate) Code = "tests/widgets.toml");
}

#[test]
fn a_catalog_that_extends_standard_generates_the_inherited_codes_too() {
    use widgets::Code;
    assert_eq!(Code::ALL.len(), Catalog::standard().entries().len() + 1);
    assert_eq!(Code::ALL.last(), Some(&Code::WidgetNotFound));
    assert_eq!(Code::WidgetNotFound.as_str(), "widget_not_found");
    assert_eq!(Code::WidgetNotFound.status(), 404);
    assert_eq!(Code::WidgetNotFound.retry(), RetryClass::Never);
    // Inherited, with the standard spelling, so the layers' codes are the service's too.
    assert_eq!(Code::ApiKeyMissing.as_str(), rebuff::standard::Code::ApiKeyMissing.as_str());
    assert_eq!(Code::from_code("rate_limit_exceeded"), Some(Code::RateLimitExceeded));
    let catalog = Catalog::from_path(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/widgets.toml"))
        .expect("the catalog loads at run time too");
    let res = catalog.render(&Code::WidgetNotFound.problem()).expect("renders");
    assert_eq!(res.status(), 404);
}

#[test]
fn all_matches_the_catalog_in_order() {
    let entries = Catalog::standard().entries();
    assert_eq!(Code::ALL.len(), entries.len());
    for (code, entry) in Code::ALL.iter().zip(entries) {
        assert_eq!(code.as_str(), entry.code);
        assert_eq!(code.status(), entry.status.as_u16(), "{code}");
        assert_eq!(code.retry(), entry.retry, "{code}");
    }
}

#[test]
fn codes_round_trip() {
    for &code in Code::ALL {
        assert_eq!(Code::from_code(code.as_str()), Some(code));
        assert_eq!(Code::from_str(code.as_str()), Ok(code));
        assert_eq!(code.to_string(), code.as_str());
        assert_eq!(ErrorCode::as_str(&code), code.as_str());
        assert_eq!(code.problem().code(), code.as_str());
        assert_eq!(Problem::from(code).code(), code.as_str());
    }
    assert_eq!(Code::from_code("no_such_code"), None);
    let err = "no_such_code".parse::<Code>().expect_err("not a code");
    assert_eq!(err, UnknownCode::new("no_such_code"));
    assert_eq!(err.code(), "no_such_code");
    assert_eq!(err.to_string(), "`no_such_code` is not a code of the catalog");
}

#[test]
fn variants_are_upper_camel_case_of_the_codes() {
    assert_eq!(Code::ApiKeyMissing.as_str(), "api_key_missing");
    assert_eq!(Code::ApiKeyMissing.status(), 401);
    assert_eq!(Code::ApiKeyMissing.retry(), RetryClass::AfterReauth);
    assert_eq!(format!("{:?}", Code::ApiKeyMissing), "ApiKeyMissing");
    assert!(Code::ALL.windows(2).all(|w| w[0] < w[1]), "Ord follows catalog order");
}

#[test]
fn every_code_renders_in_the_standard_catalog_and_its_profiles() {
    for name in Catalog::PROFILES {
        let catalog = Catalog::builtin(name).expect("built in");
        for &code in Code::ALL {
            let res = catalog.render(&code.problem()).unwrap_or_else(|e| panic!("{name}: {code}: {e}"));
            assert!(res.status().as_u16() >= 400, "{name}: {code}");
        }
    }
}

#[test]
fn a_profile_has_the_stable_codes() {
    let standard: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
    let profile: Vec<&str> = apikeys::Code::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(profile, standard);
    let entry = Catalog::builtin("apikeys").and_then(|c| c.get("api_key_missing")).expect("entry");
    assert_eq!(apikeys::Code::ApiKeyMissing.status(), entry.status.as_u16());
}

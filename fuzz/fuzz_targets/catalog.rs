//! Catalog loading: any text is a catalog or a `CatalogError`, never a panic; a catalog that
//! loads renders every one of its entries with the entry's status.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rebuff::{Catalog, Problem};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Catalog::from_toml_str("fuzz.toml", text) {
        Ok(catalog) => {
            for e in catalog.entries() {
                assert!((400..=599).contains(&e.status.as_u16()), "{}: status {}", e.code, e.status);
                let problem = Problem::dynamic(e.code.clone()).detail("fuzz").request_id("req_fuzz");
                let res = catalog.render(&problem).expect("every entry of a loaded catalog renders");
                assert_eq!(res.status(), e.status);
                assert!(!res.body().is_empty());
            }
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
        }
    }
});

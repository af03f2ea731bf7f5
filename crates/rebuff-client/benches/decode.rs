//! Decoding an error answer of each of the six envelopes into an `ApiError` (identified against
//! the profile's catalog, and without a contract), next to the core parser alone and a plain
//! `serde_json::from_slice` of the same body into a struct: the floor any client pays to read
//! the body at all.
//!
//! `cargo bench -p rebuff-client --bench decode -- --warm-up-time 1 --measurement-time 3`

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rebuff::{Catalog, Problem};
use rebuff_client::Contract;
use serde::Deserialize;

/// What a hand-written client would deserialize: the members of every envelope, owned.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Plain {
    #[serde(rename = "type")]
    type_: Option<String>,
    title: Option<String>,
    status: Option<u16>,
    detail: Option<serde_json::Value>,
    code: Option<String>,
    error_code: Option<String>,
    message: Option<String>,
    request_id: Option<String>,
    error: Option<PlainInner>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PlainInner {
    #[serde(rename = "type")]
    type_: Option<String>,
    code: Option<String>,
    message: Option<String>,
    doc_url: Option<String>,
    param: Option<String>,
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode_404");
    for profile in Catalog::PROFILES {
        let catalog = Catalog::builtin(profile).expect("built in");
        let problem = Problem::dynamic("resource_not_found")
            .detail("Dataset with ID 'ZGF0YXNldC10ZXN0' was not found.")
            .request_id("req_7f3a9c2e1b4d");
        let res = catalog.render(&problem).expect("renders");
        let (status, headers, body) = (res.status(), res.headers().clone(), res.body().clone());
        let contract = Contract::builtin(profile).expect("built in");
        g.bench_function(format!("client/{profile}"), |b| {
            b.iter(|| black_box(contract.decode(status, &headers, black_box(&body))))
        });
        g.bench_function(format!("core_parse/{profile}"), |b| {
            b.iter(|| black_box(rebuff::parse(status.as_u16(), &headers, black_box(&body))))
        });
        let none = Contract::none();
        g.bench_function(format!("client_no_contract/{profile}"), |b| {
            b.iter(|| black_box(none.decode(status, &headers, black_box(&body))))
        });
        g.bench_function(format!("serde_json_struct/{profile}"), |b| {
            b.iter(|| black_box(serde_json::from_slice::<Plain>(black_box(&body)).ok()))
        });
    }
    g.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);

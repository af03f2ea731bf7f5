//! Cursor pagination: every list can be read to its end, page by page, while items are being
//! created, and a cursor this server did not make is a clear 400.

mod support;

use std::collections::BTreeSet;

use serde_json::{Value, json};
use support::{Opts, start};

/// Reads one page; returns its ids and the cursor of the next, if any.
async fn page(s: &support::Server, path: &str) -> (Vec<String>, Option<String>) {
    let res = s.get(path, &s.admin).send().await.expect("list");
    assert_eq!(res.status(), 200, "{path}");
    let body: Value = res.json().await.expect("json");
    let ids: Vec<String> = body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|p| p["id"].as_str().expect("id").to_owned())
        .collect();
    let has_more = body["has_more"].as_bool().expect("has_more");
    let next = body["next_cursor"].as_str().map(str::to_owned);
    assert_eq!(has_more, next.is_some(), "has_more and next_cursor disagree: {body}");
    (ids, next)
}

/// 300 projects exist; a walk in pages of 7 runs while 120 more are created alongside it.
/// Every one of the 300 is seen exactly once, nothing is seen twice, and the walk ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_walk_sees_every_item_once_while_others_are_created() {
    let s = start("rebuff", Opts::default()).await;
    let mut before = BTreeSet::new();
    for i in 0..300 {
        let res = s.post_json("/v1/projects", &s.admin, json!({"name": format!("p{i:03}")})).send().await;
        let body: Value = res.expect("create").json().await.expect("json");
        before.insert(body["id"].as_str().expect("id").to_owned());
    }
    let creator = {
        let (http, url, key) = (s.http.clone(), s.url("/v1/projects"), s.admin.clone());
        tokio::spawn(async move {
            for i in 0..120 {
                let res =
                    http.post(&url).bearer_auth(&key).json(&json!({"name": format!("q{i:03}")})).send().await;
                assert_eq!(res.expect("create").status(), 201);
            }
        })
    };
    let mut seen = Vec::new();
    let mut path = "/v1/projects?limit=7".to_owned();
    let mut pages = 0;
    loop {
        let (ids, next) = page(&s, &path).await;
        assert!(ids.len() <= 7);
        seen.extend(ids);
        pages += 1;
        assert!(pages < 1000, "the walk does not end");
        match next {
            Some(c) => path = format!("/v1/projects?limit=7&cursor={c}"),
            None => break,
        }
    }
    creator.await.expect("creator");
    let unique: BTreeSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "an item was listed twice");
    let missing: Vec<_> = before.difference(&unique).collect();
    assert!(missing.is_empty(), "{} items were never listed: {missing:?}", missing.len());

    // A walk after the creation sees all 420, in creation order, each once.
    let mut all = Vec::new();
    let mut path = "/v1/projects?limit=100".to_owned();
    loop {
        let (ids, next) = page(&s, &path).await;
        all.extend(ids);
        match next {
            Some(c) => path = format!("/v1/projects?limit=100&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(all.len(), 420);
    assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), 420);
}

/// A cursor survives the deletion of the item it was taken after.
#[tokio::test]
async fn a_cursor_outlives_its_item() {
    let s = start("rebuff", Opts::default()).await;
    for i in 0..5 {
        s.create("/v1/projects", json!({"name": format!("d{i}")})).await;
    }
    // Creation order is by time, then id, within one second.
    let ids = page(&s, "/v1/projects?limit=100").await.0;
    assert_eq!(ids.len(), 5);
    let (first, next) = page(&s, "/v1/projects?limit=2").await;
    assert_eq!(first, ids[..2]);
    let cursor = next.expect("more");
    let res = s.http.delete(s.url(&format!("/v1/projects/{}", ids[1]))).bearer_auth(&s.admin).send().await;
    assert_eq!(res.expect("delete").status(), 204);
    let (rest, next) = page(&s, &format!("/v1/projects?limit=10&cursor={cursor}")).await;
    assert_eq!(rest, ids[2..]);
    assert!(next.is_none());
}

/// API keys are paged the same way.
#[tokio::test]
async fn api_keys_are_paged() {
    let s = start("rebuff", Opts::default()).await;
    for i in 0..4 {
        let res = s
            .post_json("/v1/api-keys", &s.admin, json!({"name": format!("k{i}"), "scopes": ["read"]}))
            .send()
            .await
            .expect("create key");
        assert_eq!(res.status(), 201);
    }
    let mut seen = Vec::new();
    let mut path = "/v1/api-keys?limit=2".to_owned();
    loop {
        let (ids, next) = page(&s, &path).await;
        assert!(ids.len() <= 2);
        seen.extend(ids);
        match next {
            Some(c) => path = format!("/v1/api-keys?limit=2&cursor={c}"),
            None => break,
        }
    }
    let all = page(&s, "/v1/api-keys?limit=100").await.0;
    assert_eq!(seen, all);
    assert!(all.len() >= 5, "the test's own keys and the four new ones: {all:?}");
}

/// A cursor the server did not make, or a limit out of range, is `invalid_query_parameter`
/// naming the parameter.
#[tokio::test]
async fn bad_cursors_and_limits_are_invalid_query_parameters() {
    let s = start("rebuff", Opts::default()).await;
    for (query, param) in [
        ("cursor=nope", "cursor"),
        ("cursor=c1zz", "cursor"),
        ("cursor=", "cursor"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
    ] {
        for list in ["/v1/projects", "/v1/api-keys"] {
            let res = s.get(&format!("{list}?{query}"), &s.admin).send().await.expect("list");
            assert_eq!(res.status(), 400, "{list}?{query}");
            let body: Value = res.json().await.expect("problem");
            assert_eq!(body["code"], "invalid_query_parameter", "{body}");
            assert_eq!(body["param"], param, "{body}");
        }
    }
}

//! API keys: created, listed, found and revoked, with only hashes on disk.

mod support;

use ipnet::IpNet;
use rebuff_sqlite::{Error, NewKey};
use rebuff_store::key;
use rebuff_store::{AccountStore, KeyStore};

fn new_key(org_id: &str) -> NewKey {
    NewKey {
        org_id: org_id.to_owned(),
        name: "ci".to_owned(),
        scopes: vec!["read".to_owned(), "write".to_owned()],
        expires_at: Some(4_102_444_800),
        allowed_ips: vec!["10.0.0.0/8".parse::<IpNet>().expect("cidr"), "::1/128".parse().expect("cidr")],
        live: false,
    }
}

#[tokio::test]
async fn a_created_key_is_found_by_its_id_and_its_text_is_never_stored() {
    let (dir, store) = support::fresh("keys-create");
    let org = store.create_org("acme").await.expect("org");
    let (info, text) = store.create_key(new_key(&org.id)).await.expect("key");

    let parsed = key::parse(&text).expect("the key text is well-formed");
    assert_eq!(parsed.id, info.id);
    assert!(!parsed.live);
    assert!(text.starts_with(&info.prefix()), "{text} / {}", info.prefix());
    assert_eq!(info.org_id, org.id);
    assert_eq!(info.revoked_at, None);

    let record = store.find_key(&info.id).await.expect("find").expect("the key exists");
    assert!(key::hashes_match(&record.secret_hash, &parsed.secret_hash));
    assert_eq!(*record.org_id, org.id);
    assert_eq!(record.scopes[..], ["read", "write"]);
    assert_eq!(record.expires_at, Some(4_102_444_800));
    assert_eq!(record.allowed_ips, info.allowed_ips);
    assert!(record.allows("10.1.2.3".parse().expect("ip")));
    assert!(!record.allows("192.168.0.1".parse().expect("ip")));
    assert_eq!(store.find_key("nosuchkey000").await.expect("find"), None);

    // Neither the whole key nor its secret is anywhere in the files SQLite wrote.
    let (_, secret) = text.rsplit_once('_').expect("id_secret");
    let bytes = support::all_bytes(&dir.db());
    assert!(support::contains(&bytes, info.id.as_bytes()), "the id is stored (sanity check)");
    assert!(!support::contains(&bytes, text.as_bytes()), "the key text is in the database");
    assert!(!support::contains(&bytes, secret.as_bytes()), "the secret is in the database");
    drop(store);
    let bytes = support::all_bytes(&dir.db());
    assert!(!support::contains(&bytes, secret.as_bytes()), "the secret is in the checkpointed database");
}

#[tokio::test]
async fn keys_are_listed_per_organisation_and_revoked_only_by_their_own() {
    let (_dir, store) = support::fresh("keys-list");
    let acme = store.create_org("acme").await.expect("org");
    let other = store.create_org("other").await.expect("org");
    let (first, _) = store.create_key(new_key(&acme.id)).await.expect("key");
    let (second, _) = store.create_key(NewKey { live: true, ..new_key(&acme.id) }).await.expect("key");
    let (foreign, _) = store.create_key(new_key(&other.id)).await.expect("key");
    assert!(second.prefix().starts_with(key::LIVE_PREFIX));

    let listed = store.list_keys(&acme.id).await.expect("list");
    assert_eq!(listed, [first.clone(), second.clone()]);
    assert_eq!(store.list_keys(&other.id).await.expect("list"), std::slice::from_ref(&foreign));
    assert_eq!(store.list_keys("org_nosuchorg000").await.expect("list"), []);

    // Another organisation's key is treated like a missing one.
    assert_eq!(store.get_key(&acme.id, &foreign.id).await.expect("get"), None);
    assert!(!store.revoke_key(&acme.id, &foreign.id).await.expect("revoke"));
    assert_eq!(store.find_key(&foreign.id).await.expect("find").expect("key").revoked_at, None);
    assert!(!store.revoke_key(&acme.id, "nosuchkey000").await.expect("revoke"));

    assert!(store.revoke_key(&acme.id, &first.id).await.expect("revoke"));
    let revoked_at = store.find_key(&first.id).await.expect("find").expect("key").revoked_at;
    assert!(revoked_at.is_some());
    // Revoking again is harmless and keeps the first time.
    assert!(store.revoke_key(&acme.id, &first.id).await.expect("revoke"));
    let info = store.get_key(&acme.id, &first.id).await.expect("get").expect("key");
    assert_eq!(info.revoked_at, revoked_at);
    assert_eq!(store.find_key(&second.id).await.expect("find").expect("key").revoked_at, None);

    store.record_key_use(&second.id, 1_700_000_000).await.expect("use");
    store.record_key_use(&second.id, 1_600_000_000).await.expect("an older use");
    let info = store.get_key(&acme.id, &second.id).await.expect("get").expect("key");
    assert_eq!(info.last_used_at, Some(1_700_000_000));
}

#[tokio::test]
async fn bad_key_requests_are_typed_errors() {
    let (_dir, store) = support::fresh("keys-errors");
    let err = store.create_key(new_key("org_nosuchorg000")).await.expect_err("unknown org");
    assert_eq!(err, Error::OrgNotFound);
    assert!(err.is_not_found());
    let org = store.create_org("acme").await.expect("org");
    for scope in ["", "read write", "a\tb"] {
        let err = store
            .create_key(NewKey { scopes: vec![scope.to_owned()], ..new_key(&org.id) })
            .await
            .expect_err("bad scope");
        assert_eq!(err, Error::Invalid("scope"), "{scope:?}");
    }
    assert_eq!(store.list_keys(&org.id).await.expect("list"), []);
}

/// The generation a key cache polls moves when a key is revoked or removed, not when one is
/// created or used, and is shared by every handle on the file.
#[tokio::test]
async fn the_key_generation_moves_on_revocation_only() {
    use rebuff_store::KeyChanges;

    let (dir, store) = support::fresh("keys-generation");
    let other = rebuff_sqlite::SqliteStore::open(dir.db()).expect("second handle");
    let org = store.create_org("acme").await.expect("org");
    let start = other.key_generation().await.expect("generation");
    let (info, _) = store.create_key(new_key(&org.id)).await.expect("key");
    store.record_key_use(&info.id, 1_700_000_000).await.expect("use");
    assert_eq!(other.key_generation().await.expect("generation"), start, "creation and use are not changes");
    assert!(store.revoke_key(&org.id, &info.id).await.expect("revoke"));
    let revoked = other.key_generation().await.expect("generation");
    assert_ne!(revoked, start, "a revocation is a change");
    store.with_conn(|c| c.execute("DELETE FROM api_keys", [])).await.expect("delete");
    assert_ne!(other.key_generation().await.expect("generation"), revoked, "a removal is a change");
}

//! The database file: created and migrated once, durable across reopening, and a file that
//! cannot be used gives a `StoreError`, never a panic.

mod support;

use std::time::Duration;

use rebuff_sqlite::{LoginOutcome, NewKey, SqliteStore};
use rebuff_store::key::hash_secret;
use rebuff_store::{AccountStore, KeyStore, QuotaStore, RateLimitStore, SessionStore};
use rebuff_store::{Quota, StoreErrorKind};

#[tokio::test]
async fn reopening_the_file_keeps_everything() {
    let dir = support::TempDir::new("durable");
    let store = SqliteStore::open(dir.db()).expect("create");
    assert!(store.was_created());
    assert_eq!(store.path(), Some(dir.db().as_path()));
    let org = store.create_org("acme").await.expect("org");
    let new = NewKey {
        org_id: org.id.clone(),
        name: "admin".into(),
        scopes: vec!["admin".into()],
        expires_at: None,
        allowed_ips: Vec::new(),
        live: true,
    };
    let (key, _) = store.create_key(new).await.expect("key");
    let user = store.create_user(&org.id, "ann@example.com", "pw", false).await.expect("user");
    let (token, _) = store.create_session(&user.id, Duration::from_secs(600)).await.expect("session");
    let quota = Quota { limit: 2, period: Duration::from_secs(3600) };
    let now = 1_800_000_000_000_000_000u128;
    assert!(store.check("org:acme", quota, now).await.expect("check").allowed);
    assert!(store.consume(&org.id, "2026-01", 7, 100).await.expect("consume").granted);
    drop(store);

    let store = SqliteStore::open(dir.db()).expect("reopen");
    assert!(!store.was_created(), "the schema was created again");
    assert_eq!(store.find_org("acme").await.expect("find"), Some(org.clone()));
    assert_eq!(store.list_keys(&org.id).await.expect("list"), std::slice::from_ref(&key));
    assert!(store.find_key(&key.id).await.expect("find").is_some());
    assert!(matches!(store.verify_login("ann@example.com", "pw").await.expect("login"), LoginOutcome::Ok(_)));
    assert!(store.find_session(&hash_secret(&token)).await.expect("find").is_some());
    let second = store.check("org:acme", quota, now).await.expect("check");
    assert_eq!((second.allowed, second.remaining), (true, 0), "the rate-limit state was lost");
    assert!(!store.check("org:acme", quota, now).await.expect("check").allowed);
    assert_eq!(store.consume(&org.id, "2026-01", 0, 100).await.expect("consume").used, 7);
}

#[test]
fn a_file_that_is_not_a_database_is_an_error() {
    let dir = support::TempDir::new("not-a-db");
    let path = dir.db();
    std::fs::write(
        &path,
        b"this is a text file, not an SQLite database; it is long enough to have a header.\n".repeat(20),
    )
    .expect("write");
    let err = SqliteStore::open(&path).expect_err("a text file opened as a database");
    assert_eq!(err.kind(), StoreErrorKind::Backend, "{err}");
    // The file is left alone.
    assert!(std::fs::read(&path).expect("read").starts_with(b"this is a text file"));
}

#[test]
fn a_corrupt_database_is_an_error() {
    let dir = support::TempDir::new("corrupt");
    let path = dir.db();
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend(std::iter::repeat_n(0xA5u8, 8192));
    std::fs::write(&path, bytes).expect("write");
    assert!(SqliteStore::open(&path).is_err());
}

#[test]
fn a_path_that_cannot_hold_a_database_is_an_error() {
    let dir = support::TempDir::new("bad-path");
    // A directory.
    let err = SqliteStore::open(dir.path()).expect_err("a directory opened as a database");
    assert!(err.to_string().contains(&*dir.path().to_string_lossy()), "the message names the path: {err}");
    // A missing parent directory.
    assert!(SqliteStore::open(dir.path().join("missing").join("rebuff.db")).is_err());
    // A parent that is a file.
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").expect("write");
    let err = SqliteStore::open(file.join("rebuff.db")).expect_err("a path under a file");
    assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
}

/// Holds for root too: nobody can create files in `/proc`.
#[cfg(target_os = "linux")]
#[test]
fn a_database_on_a_read_only_file_system_is_an_error() {
    let err = SqliteStore::open("/proc/rebuff-sqlite-test.db").expect_err("a database created in /proc");
    assert!(err.to_string().starts_with("/proc/rebuff-sqlite-test.db: SQLite: "), "{err}");
    // An existing file there is readable but not a database.
    assert!(SqliteStore::open("/proc/version").is_err());
}

/// Permissions do not bind root, so this checks only "no panic" when run as root.
#[cfg(unix)]
#[test]
fn an_unreadable_or_read_only_database_is_an_error() {
    use std::os::unix::fs::PermissionsExt;

    let dir = support::TempDir::new("unreadable");
    let path = dir.db();
    drop(SqliteStore::open(&path).expect("create"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    let privileged = std::fs::read(&path).is_ok();
    let result = SqliteStore::open(&path);
    if !privileged {
        assert!(result.is_err(), "an unreadable file opened");
    }
    drop(result);
    // Read-only: readable, but the WAL and the migration need to write.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).expect("chmod");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).expect("chmod");
    let result = SqliteStore::open(&path);
    let _ = std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755));
    if !privileged {
        assert!(result.is_err(), "a read-only file in a read-only directory opened for writing");
    }
}

/// Issue 14, finding 2: the database and its WAL and SHM files were created world-readable
/// (0644), and they hold key hashes, sessions and stored responses.
#[cfg(unix)]
#[tokio::test]
async fn the_database_and_its_wal_and_shm_files_are_created_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = support::TempDir::new("private");
    let store = SqliteStore::open(dir.db()).expect("create");
    store.create_org("acme").await.expect("a write, so that the WAL exists");
    for suffix in ["", "-wal", "-shm"] {
        let mut path = dir.db().into_os_string();
        path.push(suffix);
        let mode = std::fs::metadata(&path).expect("the file exists").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}: {mode:o}", std::path::Path::new(&path).display());
    }
}

//! Schema migrations, numbered by `PRAGMA user_version`.
//!
//! Each entry of [`MIGRATIONS`] takes the schema from version `i` to `i + 1`. Entries are
//! never edited once released; a change is a new entry.

use rebuff_store::StoreError;
use rusqlite::Connection;

use crate::{immediate, map_err};

/// The migrations, in order.
const MIGRATIONS: &[&str] = &[
    // 1: everything a single instance keeps.
    r#"
    CREATE TABLE orgs (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE users (
        id            TEXT PRIMARY KEY,
        org_id        TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        email         TEXT NOT NULL,
        -- the email folded to lower case: uniqueness and login ignore case
        email_key     TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        disabled      INTEGER NOT NULL DEFAULT 0,
        created_at    INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX users_org ON users(org_id);

    CREATE TABLE api_keys (
        id           TEXT PRIMARY KEY,
        org_id       TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        name         TEXT NOT NULL,
        secret_hash  BLOB NOT NULL CHECK (length(secret_hash) = 32),
        scopes       TEXT NOT NULL,
        expires_at   INTEGER,
        revoked_at   INTEGER,
        allowed_ips  TEXT NOT NULL,
        live         INTEGER NOT NULL,
        created_at   INTEGER NOT NULL,
        last_used_at INTEGER
    ) STRICT;
    CREATE INDEX api_keys_org ON api_keys(org_id, created_at);

    CREATE TABLE sessions (
        token_hash BLOB PRIMARY KEY CHECK (length(token_hash) = 32),
        user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        csrf_hash  BLOB NOT NULL CHECK (length(csrf_hash) = 32),
        expires_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX sessions_user ON sessions(user_id);
    CREATE INDEX sessions_expiry ON sessions(expires_at);

    -- GCRA: one theoretical arrival time per key, in nanoseconds (text: it is a u128)
    CREATE TABLE rate_limits (
        key       TEXT PRIMARY KEY,
        tat_nanos TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE usage (
        org    TEXT NOT NULL,
        period TEXT NOT NULL,
        used   INTEGER NOT NULL,
        PRIMARY KEY (org, period)
    ) STRICT, WITHOUT ROWID;

    -- times in nanoseconds since the Unix epoch; a lock expires at locked_until, and
    -- expires_at is when the row may be forgotten (= locked_until while locked)
    CREATE TABLE idempotency (
        key          TEXT PRIMARY KEY,
        fingerprint  BLOB NOT NULL,
        state        TEXT NOT NULL CHECK (state IN ('locked', 'done')),
        locked_until INTEGER,
        status       INTEGER,
        headers      TEXT,
        body         BLOB,
        expires_at   INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX idempotency_expiry ON idempotency(expires_at);
    "#,
    // 2: a generation bumped whenever a key changes in a way that matters to authentication
    // (not its creation, nor its last use), read by instances that cache keys.
    r#"
    CREATE TABLE key_changes (
        id         INTEGER PRIMARY KEY CHECK (id = 0),
        generation INTEGER NOT NULL
    ) STRICT;
    INSERT INTO key_changes (id, generation) VALUES (0, 0);
    CREATE TRIGGER api_keys_changed
        AFTER UPDATE OF id, org_id, secret_hash, scopes, expires_at, revoked_at, allowed_ips, live
        ON api_keys
    BEGIN
        UPDATE key_changes SET generation = generation + 1 WHERE id = 0;
    END;
    CREATE TRIGGER api_keys_removed AFTER DELETE ON api_keys
    BEGIN
        UPDATE key_changes SET generation = generation + 1 WHERE id = 0;
    END;
    "#,
    // 3: the outcomes of idempotent writes, each recorded in its write's own transaction
    // (`outcomes::record`; key creations through `AccountStore::create_key_once`): one exists
    // exactly when its side effect does, and the primary key makes a second run of one
    // idempotency key impossible. Never a key's text. Expiry in nanoseconds since the Unix epoch.
    r#"
    CREATE TABLE outcomes (
        key         TEXT PRIMARY KEY,
        fingerprint BLOB NOT NULL CHECK (length(fingerprint) = 32),
        status      INTEGER NOT NULL,
        headers     TEXT NOT NULL,
        body        BLOB NOT NULL,
        expires_at  INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX outcomes_expiry ON outcomes(expires_at);
    "#,
    // 4: charges made at most once (`QuotaStore::consume_once`): the id of a granted charge,
    // remembered until expires_at (nanoseconds since the Unix epoch).
    r#"
    CREATE TABLE quota_charges (
        org        TEXT NOT NULL,
        charge     TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (org, charge)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX quota_charges_expiry ON quota_charges(expires_at);
    "#,
];

/// Brings the schema up to date; returns whether it was created (version 0 before).
pub(crate) fn migrate(conn: &mut Connection) -> Result<bool, StoreError> {
    let target = MIGRATIONS.len();
    // Read again under the write lock: another process may be migrating the same file.
    let tx = immediate(conn)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0)).map_err(map_err)?;
    let version = usize::try_from(version)
        .map_err(|_| StoreError::backend(format!("SQLite schema version {version} is not valid")))?;
    if version > target {
        return Err(StoreError::backend(format!(
            "SQLite schema version {version} is newer than this build supports ({target})"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.execute_batch(sql).map_err(map_err)?;
        // `PRAGMA` does not take parameters; `i + 1` is a number of ours.
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1)).map_err(map_err)?;
        tracing::info!(version = i + 1, "migrated the SQLite schema");
    }
    tx.commit().map_err(map_err)?;
    Ok(version == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().expect("memory database");
        assert!(migrate(&mut conn).expect("first"));
        assert!(!migrate(&mut conn).expect("second"));
        let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("version");
        assert_eq!(v, MIGRATIONS.len() as i64);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().expect("memory database");
        conn.execute_batch("PRAGMA user_version = 999").expect("set version");
        let err = migrate(&mut conn).expect_err("newer schema");
        assert!(err.to_string().contains("newer"), "{err}");
    }
}

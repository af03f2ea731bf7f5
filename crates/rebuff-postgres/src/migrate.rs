//! Schema migrations, numbered in `rebuff_migrations`.
//!
//! Each entry of [`MIGRATIONS`] takes the schema from version `i` to `i + 1`. Entries are
//! never edited once released; a change is a new entry.

use rebuff_store::StoreError;

use crate::{Client, pg};

/// The migrations, in order.
const MIGRATIONS: &[&str] = &[
    // 1: accounts and request state.
    r#"
    CREATE TABLE orgs (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE,
        created_at BIGINT NOT NULL
    );

    CREATE TABLE users (
        id            TEXT PRIMARY KEY,
        org_id        TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        email         TEXT NOT NULL,
        -- the email folded to lower case: uniqueness and login ignore case
        email_key     TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        disabled      BOOLEAN NOT NULL DEFAULT false,
        created_at    BIGINT NOT NULL
    );
    CREATE INDEX users_org ON users(org_id);

    CREATE TABLE api_keys (
        id           TEXT PRIMARY KEY,
        seq          BIGSERIAL NOT NULL,
        org_id       TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        name         TEXT NOT NULL,
        secret_hash  BYTEA NOT NULL CHECK (length(secret_hash) = 32),
        scopes       TEXT[] NOT NULL,
        expires_at   BIGINT,
        revoked_at   BIGINT,
        allowed_ips  TEXT[] NOT NULL,
        live         BOOLEAN NOT NULL,
        created_at   BIGINT NOT NULL,
        last_used_at BIGINT
    );
    CREATE INDEX api_keys_org ON api_keys(org_id, seq);

    CREATE TABLE sessions (
        token_hash BYTEA PRIMARY KEY CHECK (length(token_hash) = 32),
        user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        csrf_hash  BYTEA NOT NULL CHECK (length(csrf_hash) = 32),
        expires_at BIGINT NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE INDEX sessions_user ON sessions(user_id);
    CREATE INDEX sessions_expiry ON sessions(expires_at);

    -- GCRA: one theoretical arrival time per key, microseconds since the Unix epoch
    CREATE TABLE rate_limits (
        key    TEXT PRIMARY KEY,
        tat_us BIGINT NOT NULL
    );

    CREATE TABLE usage (
        org    TEXT NOT NULL,
        period TEXT NOT NULL,
        used   BIGINT NOT NULL CHECK (used >= 0),
        PRIMARY KEY (org, period)
    );

    -- expires_at is on the database's clock: the lock's end while locked, the record's after
    CREATE TABLE idempotency (
        key           TEXT PRIMARY KEY,
        fingerprint   BYTEA NOT NULL,
        state         TEXT NOT NULL CHECK (state IN ('locked', 'done')),
        status        INTEGER,
        header_names  TEXT[],
        header_values TEXT[],
        body          BYTEA,
        expires_at    TIMESTAMPTZ NOT NULL
    );
    CREATE INDEX idempotency_expiry ON idempotency(expires_at);

    -- One GCRA decision under the key's row lock. Returns retry_after = -1 when admitted.
    CREATE FUNCTION rebuff_gcra(p_key TEXT, p_limit BIGINT, p_period BIGINT, p_now BIGINT,
        OUT allowed BOOLEAN, OUT remaining BIGINT, OUT reset_after BIGINT, OUT retry_after BIGINT)
    LANGUAGE plpgsql AS $$
    #variable_conflict use_column
    DECLARE
        step    BIGINT := greatest(p_period / p_limit, 1);
        horizon BIGINT := p_now + p_period;
        tat     BIGINT;
        new_tat BIGINT;
    BEGIN
        INSERT INTO rate_limits (key, tat_us) VALUES (p_key, 0) ON CONFLICT (key) DO NOTHING;
        SELECT greatest(r.tat_us, p_now) INTO tat FROM rate_limits r WHERE r.key = p_key FOR UPDATE;
        new_tat := tat + step;
        IF new_tat <= horizon THEN
            UPDATE rate_limits SET tat_us = new_tat WHERE key = p_key;
            allowed := true;
            remaining := least(greatest((horizon - new_tat) / step, 0), p_limit);
            reset_after := new_tat - p_now;
            retry_after := -1;
        ELSE
            allowed := false;
            remaining := least(greatest((horizon - tat) / step, 0), p_limit);
            reset_after := tat - p_now;
            retry_after := new_tat - horizon;
        END IF;
    END $$;

    -- Takes the lock of an idempotency key, or reads its live record. outcome: 0 started,
    -- 1 in flight, 2 completed (with the response), 3 another payload.
    CREATE FUNCTION rebuff_idempotency_begin(p_key TEXT, p_fingerprint BYTEA, p_lock_ms BIGINT,
        OUT outcome INTEGER, OUT status INTEGER, OUT header_names TEXT[],
        OUT header_values TEXT[], OUT body BYTEA)
    LANGUAGE plpgsql AS $$
    #variable_conflict use_column
    DECLARE
        r idempotency%ROWTYPE;
    BEGIN
        INSERT INTO idempotency AS i (key, fingerprint, state, expires_at)
        VALUES (p_key, p_fingerprint, 'locked', now() + p_lock_ms * interval '1 millisecond')
        ON CONFLICT (key) DO UPDATE SET fingerprint = excluded.fingerprint, state = 'locked',
            status = NULL, header_names = NULL, header_values = NULL, body = NULL,
            expires_at = excluded.expires_at
        WHERE i.expires_at <= now();
        IF FOUND THEN
            outcome := 0;
            RETURN;
        END IF;
        -- A new snapshot: sees the row that made the insert conflict.
        SELECT * INTO r FROM idempotency i WHERE i.key = p_key;
        IF NOT FOUND THEN
            outcome := 1;
        ELSIF r.fingerprint <> p_fingerprint THEN
            outcome := 3;
        ELSIF r.state = 'locked' THEN
            outcome := 1;
        ELSE
            outcome := 2;
            status := r.status;
            header_names := r.header_names;
            header_values := r.header_values;
            body := r.body;
        END IF;
    END $$;
    "#,
    // 2: the rate-limit decision and the idempotency lookup in one call.
    r#"
    -- rebuff_gcra, then, only when admitted, rebuff_idempotency_begin: one round trip. The
    -- idempotency columns are NULL when the request is refused.
    CREATE FUNCTION rebuff_check_and_begin(p_key TEXT, p_limit BIGINT, p_period BIGINT,
        p_now BIGINT, p_idem_key TEXT, p_fingerprint BYTEA, p_lock_ms BIGINT,
        OUT allowed BOOLEAN, OUT remaining BIGINT, OUT reset_after BIGINT, OUT retry_after BIGINT,
        OUT outcome INTEGER, OUT status INTEGER, OUT header_names TEXT[],
        OUT header_values TEXT[], OUT body BYTEA)
    LANGUAGE plpgsql AS $$
    BEGIN
        SELECT g.allowed, g.remaining, g.reset_after, g.retry_after
            INTO allowed, remaining, reset_after, retry_after
            FROM rebuff_gcra(p_key, p_limit, p_period, p_now) g;
        IF allowed THEN
            SELECT b.outcome, b.status, b.header_names, b.header_values, b.body
                INTO outcome, status, header_names, header_values, body
                FROM rebuff_idempotency_begin(p_idem_key, p_fingerprint, p_lock_ms) b;
        END IF;
    END $$;
    "#,
    // 3: the deadline of a call. A statement that starts after its caller's deadline (the
    // server was paused or stalled, and the caller has answered its request meanwhile) must
    // change nothing: this raises instead, before the call it guards runs.
    r#"
    CREATE FUNCTION rebuff_in_time(p_deadline BIGINT) RETURNS BOOLEAN
    LANGUAGE plpgsql VOLATILE AS $$
    BEGIN
        IF (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT > p_deadline THEN
            RAISE EXCEPTION 'started after its deadline' USING ERRCODE = 'RBLTE';
        END IF;
        RETURN true;
    END $$;
    "#,
    // 4: a generation bumped whenever a key changes in a way that matters to authentication
    // (not its creation, nor its last use), read by instances that cache keys; each change
    // is also announced on the channel `rebuff_keys_<schema>` (`LISTEN/NOTIFY`).
    r#"
    CREATE TABLE key_changes (
        id         INTEGER PRIMARY KEY CHECK (id = 0),
        generation BIGINT NOT NULL
    );
    INSERT INTO key_changes (id, generation) VALUES (0, 0);
    -- The schema is fixed at creation, so that a change made outside rebuff bumps it too.
    CREATE FUNCTION rebuff_key_changed() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
    BEGIN
        UPDATE key_changes SET generation = generation + 1 WHERE id = 0;
        PERFORM pg_notify('rebuff_keys_' || TG_TABLE_SCHEMA, '');
        RETURN NULL;
    END $$;
    CREATE TRIGGER api_keys_changed
        AFTER UPDATE OF id, org_id, secret_hash, scopes, expires_at, revoked_at, allowed_ips, live
        ON api_keys FOR EACH STATEMENT EXECUTE FUNCTION rebuff_key_changed();
    CREATE TRIGGER api_keys_removed
        AFTER DELETE ON api_keys FOR EACH STATEMENT EXECUTE FUNCTION rebuff_key_changed();
    "#,
    // 5: the response of an idempotent key creation, recorded in the creation's own
    // transaction (`AccountStore::create_key_once`): it exists exactly when the key does, and
    // the primary key makes a second creation under one idempotency key impossible. Never the
    // key's text. Expiry on the database's clock.
    r#"
    CREATE TABLE outcomes (
        key           TEXT PRIMARY KEY,
        fingerprint   BYTEA NOT NULL CHECK (length(fingerprint) = 32),
        status        INTEGER NOT NULL,
        header_names  TEXT[] NOT NULL,
        header_values TEXT[] NOT NULL,
        body          BYTEA NOT NULL,
        expires_at    TIMESTAMPTZ NOT NULL
    );
    CREATE INDEX outcomes_expiry ON outcomes(expires_at);
    "#,
    // 6: charges made at most once (`QuotaStore::consume_once`), in one statement: the charge
    // id's marker is taken first (a concurrent repeat waits on its row, then finds it), the
    // usage charged, and the marker given back if the charge is refused.
    r#"
    CREATE TABLE quota_charges (
        org        TEXT NOT NULL,
        charge     TEXT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (org, charge)
    );
    CREATE INDEX quota_charges_expiry ON quota_charges (expires_at);
    CREATE FUNCTION rebuff_consume_once(
        p_org TEXT, p_period TEXT, p_amount BIGINT, p_limit BIGINT, p_charge TEXT,
        p_ttl_ms BIGINT, p_deadline BIGINT,
        OUT o_granted BOOLEAN, OUT o_used BIGINT
    ) LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
    BEGIN
        PERFORM rebuff_in_time(p_deadline);
        INSERT INTO quota_charges AS c (org, charge, expires_at)
        VALUES (p_org, p_charge, clock_timestamp() + p_ttl_ms * interval '1 millisecond')
        ON CONFLICT (org, charge) DO UPDATE SET expires_at = excluded.expires_at
        WHERE c.expires_at <= clock_timestamp();
        IF NOT FOUND THEN
            -- Remembered: charged before; nothing new is recorded.
            o_granted := true;
            SELECT coalesce(max(u.used), 0) INTO o_used
            FROM usage u WHERE u.org = p_org AND u.period = p_period;
            RETURN;
        END IF;
        -- `used <= limit - amount` cannot overflow, unlike `used + amount <= limit`.
        INSERT INTO usage AS u (org, period, used)
        SELECT p_org, p_period, p_amount WHERE p_amount <= p_limit
        ON CONFLICT (org, period) DO UPDATE SET used = u.used + excluded.used
        WHERE u.used <= p_limit - excluded.used
        RETURNING u.used INTO o_used;
        o_granted := FOUND;
        IF NOT o_granted THEN
            DELETE FROM quota_charges c WHERE c.org = p_org AND c.charge = p_charge;
            SELECT coalesce(max(u.used), 0) INTO o_used
            FROM usage u WHERE u.org = p_org AND u.period = p_period;
            RETURN;
        END IF;
        -- Forgotten ids go a bounded batch at a time.
        DELETE FROM quota_charges c WHERE (c.org, c.charge) IN (
            SELECT d.org, d.charge FROM quota_charges d
            WHERE d.expires_at <= clock_timestamp() LIMIT 100
        );
    END $$;
    "#,
    // 7: `rebuff_gcra` when its row is deleted between making it and locking it. A purge
    // (`PgStore::purge_expired`, which every instance runs at start and then now and then)
    // deletes a time in the past, as it may: it is the same as none. But between the insert of
    // a missing row and the `SELECT ... FOR UPDATE` the row could go, and the decision was made
    // from no row at all: a refusal with NULL times, which the caller cannot read (a 500 for a
    // request that was within its limit). Now a row that is gone by then is made again.
    r#"
    CREATE OR REPLACE FUNCTION rebuff_gcra(p_key TEXT, p_limit BIGINT, p_period BIGINT, p_now BIGINT,
        OUT allowed BOOLEAN, OUT remaining BIGINT, OUT reset_after BIGINT, OUT retry_after BIGINT)
    LANGUAGE plpgsql AS $$
    #variable_conflict use_column
    DECLARE
        step    BIGINT := greatest(p_period / p_limit, 1);
        horizon BIGINT := p_now + p_period;
        tat     BIGINT;
        new_tat BIGINT;
    BEGIN
        LOOP
            INSERT INTO rate_limits (key, tat_us) VALUES (p_key, 0) ON CONFLICT (key) DO NOTHING;
            SELECT greatest(r.tat_us, p_now) INTO tat FROM rate_limits r WHERE r.key = p_key FOR UPDATE;
            -- Not found: deleted (and committed) since the insert; the lock is taken on a new row.
            EXIT WHEN FOUND;
        END LOOP;
        new_tat := tat + step;
        IF new_tat <= horizon THEN
            UPDATE rate_limits SET tat_us = new_tat WHERE key = p_key;
            allowed := true;
            remaining := least(greatest((horizon - new_tat) / step, 0), p_limit);
            reset_after := new_tat - p_now;
            retry_after := -1;
        ELSE
            allowed := false;
            remaining := least(greatest((horizon - tat) / step, 0), p_limit);
            reset_after := tat - p_now;
            retry_after := new_tat - horizon;
        END IF;
    END $$;
    "#,
];

/// Creates `schema` if missing and brings it up to date, under an advisory lock so that
/// instances starting together migrate once.
pub(crate) async fn migrate(client: &mut Client, schema: &str) -> Result<(), StoreError> {
    let target = MIGRATIONS.len();
    let tx = client.transaction().await.map_err(pg)?;
    // Held until the transaction ends; the key is fixed, so all rebuff schemas of one database
    // migrate one at a time, which costs nothing at start-up.
    tx.execute("SELECT pg_advisory_xact_lock(7307155116734910341)", &[]).await.map_err(pg)?;
    // `schema` was checked to be a plain identifier.
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.rebuff_migrations (
             version    INTEGER PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         );"
    ))
    .await
    .map_err(pg)?;
    let row = tx
        .query_one(&format!("SELECT coalesce(max(version), 0) FROM {schema}.rebuff_migrations"), &[])
        .await
        .map_err(pg)?;
    let version: i32 = row.try_get(0).map_err(pg)?;
    let version = usize::try_from(version)
        .map_err(|_| StoreError::backend(format!("PostgreSQL schema version {version} is not valid")))?;
    if version > target {
        return Err(StoreError::backend(format!(
            "PostgreSQL schema version {version} is newer than this build supports ({target})"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.batch_execute(&format!("SET LOCAL search_path = {schema}; {sql}")).await.map_err(pg)?;
        let applied = i32::try_from(i + 1).unwrap_or(i32::MAX);
        tx.execute(&format!("INSERT INTO {schema}.rebuff_migrations (version) VALUES ($1)"), &[&applied])
            .await
            .map_err(pg)?;
        tracing::info!(schema, version = i + 1, "migrated the PostgreSQL schema");
    }
    tx.commit().await.map_err(pg)?;
    Ok(())
}

//! The reference API's own tables (projects, datasets, models, jobs) next to the account
//! tables of `rebuff-sqlite`, in the same file.

use rand::Rng;
use rebuff::json;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use utoipa::ToSchema;

use crate::limits;

/// Creates the domain tables. Idempotent: `rebuff-sqlite` owns `PRAGMA user_version`, so
/// these use `IF NOT EXISTS` and never change shape in place.
pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS projects (
            id TEXT PRIMARY KEY,
            org_id TEXT NOT NULL,
            name TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            UNIQUE (org_id, name)
        );
        CREATE TABLE IF NOT EXISTS datasets (
            id TEXT PRIMARY KEY,
            org_id TEXT NOT NULL,
            project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            format TEXT NOT NULL,
            rows INTEGER NOT NULL,
            created_at INTEGER NOT NULL
        );
        CREATE TABLE IF NOT EXISTS models (
            id TEXT PRIMARY KEY,
            org_id TEXT NOT NULL,
            name TEXT NOT NULL,
            model_type TEXT NOT NULL,
            config TEXT NOT NULL,
            status TEXT NOT NULL,
            error TEXT,
            created_at INTEGER NOT NULL,
            ready_at INTEGER
        );
        CREATE TABLE IF NOT EXISTS jobs (
            id TEXT PRIMARY KEY,
            org_id TEXT NOT NULL,
            model_id TEXT NOT NULL REFERENCES models(id) ON DELETE CASCADE,
            n_samples INTEGER NOT NULL,
            status TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            done_at INTEGER
        );
        -- Lists read a page of an organisation's projects in creation order straight off
        -- this index: no sort per request.
        CREATE INDEX IF NOT EXISTS projects_by_org_created ON projects (org_id, created_at, id);
        -- The recovery point of an idempotent operation of several steps (a generation:
        -- charge the quota, then write the job): the id its first attempt chose for what it
        -- creates, which is also the quota charge's id. A retry resumes with the same id, so a
        -- step that ran already is not done again; the outcome's commit deletes the row.
        CREATE TABLE IF NOT EXISTS idempotency_progress (
            key TEXT PRIMARY KEY,
            fingerprint BLOB NOT NULL,
            resource_id TEXT NOT NULL,
            started_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS idempotency_progress_expiry ON idempotency_progress (expires_at);",
    )?;
    // Outcomes were once kept in a table of this schema; they now live in `rebuff-sqlite`'s
    // `outcomes`, shared with key creations. Unexpired ones are carried over, once.
    let old: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'idempotency_outcomes')",
        [],
        |r| r.get(0),
    )?;
    if old {
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT OR IGNORE INTO outcomes (key, fingerprint, status, headers, body, expires_at)
             SELECT key, fingerprint, status, json_array(json_array('content-type', content_type)), body,
                    expires_at * 1000000000
             FROM idempotency_outcomes WHERE expires_at > ?1 AND length(fingerprint) = 32",
            [now()],
        )?;
        tx.execute_batch("DROP TABLE idempotency_outcomes")?;
        tx.commit()?;
    }
    Ok(())
}

/// A new id: a prefix and 12 lowercase hex digits (`mdl_a1b2c3d4e5f6`, as the references show).
pub(crate) fn new_id(prefix: &str) -> String {
    let n: u64 = rand::rng().random::<u64>() & 0xffff_ffff_ffff;
    format!("{prefix}_{n:012x}")
}

/// Whether `id` has the shape `new_id` makes, so malformed ids are 400, not 404.
pub(crate) fn is_id(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix).and_then(|r| r.strip_prefix('_')).is_some_and(|hex| {
        hex.len() == 12 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A project.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Project {
    /// Id (`prj_...`).
    #[schema(schema_with = limits::project_id)]
    pub(crate) id: String,
    /// Unique per organisation.
    #[schema(schema_with = limits::stored_name)]
    pub(crate) name: String,
    /// Unix seconds.
    #[schema(minimum = 0, maximum = 9223372036854775807_i64)]
    pub(crate) created_at: i64,
}

/// A dataset.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Dataset {
    /// Id (`dst_...`).
    #[schema(schema_with = limits::dataset_id)]
    pub(crate) id: String,
    /// Its project.
    #[schema(schema_with = limits::project_id)]
    pub(crate) project_id: String,
    /// Name.
    #[schema(schema_with = limits::stored_name)]
    pub(crate) name: String,
    /// `csv` or `parquet`.
    #[schema(schema_with = crate::routes::datasets::formats)]
    pub(crate) format: String,
    /// Row count.
    #[schema(minimum = 0, maximum = 9223372036854775807_i64)]
    pub(crate) rows: i64,
    /// Unix seconds.
    #[schema(minimum = 0, maximum = 9223372036854775807_i64)]
    pub(crate) created_at: i64,
}

/// A model.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Model {
    /// Id (`mdl_...`).
    #[schema(schema_with = limits::model_id)]
    pub(crate) id: String,
    /// Name.
    #[schema(schema_with = limits::stored_name)]
    pub(crate) name: String,
    /// One of the fixed model types.
    #[schema(schema_with = crate::routes::models::model_types)]
    pub(crate) model_type: String,
    /// Training configuration.
    #[schema(value_type = Object)]
    pub(crate) config: serde_json::Value,
    /// `created`, `training`, `ready` or `failed`.
    #[schema(schema_with = crate::routes::models::model_statuses)]
    pub(crate) status: String,
    /// Why training failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = limits::text, required = false)]
    pub(crate) error: Option<String>,
    /// Unix seconds.
    #[schema(minimum = 0, maximum = 9223372036854775807_i64)]
    pub(crate) created_at: i64,
}

/// A generation job.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Job {
    /// Id (`job_...`).
    #[schema(schema_with = limits::job_id)]
    pub(crate) id: String,
    /// The model generating.
    #[schema(schema_with = limits::model_id)]
    pub(crate) model_id: String,
    /// Rows requested.
    #[schema(minimum = 1, maximum = 1000000)]
    pub(crate) n_samples: i64,
    /// `running` or `done`.
    #[schema(schema_with = crate::routes::models::job_statuses)]
    pub(crate) status: String,
    /// Unix seconds.
    #[schema(minimum = 0, maximum = 9223372036854775807_i64)]
    pub(crate) created_at: i64,
}

pub(crate) enum Insert<T> {
    Created(T),
    Duplicate,
}

pub(crate) fn insert_project(conn: &Connection, org: &str, name: &str) -> rusqlite::Result<Insert<Project>> {
    let p = Project { id: new_id("prj"), name: name.to_owned(), created_at: now() };
    match conn.execute(
        "INSERT INTO projects (id, org_id, name, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![p.id, org, p.name, p.created_at],
    ) {
        Ok(_) => Ok(Insert::Created(p)),
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            Ok(Insert::Duplicate)
        }
        Err(e) => Err(e),
    }
}

/// A page of the organisation's projects as the list body
/// `{"data":[...],"has_more":...,"next_cursor":...}` (see [`crate::routes::Page`]), written
/// straight from SQLite's rows into one buffer: no `Project` (two strings each) per row, no
/// second pass. Up to `limit` projects in creation order after the place `after`; one more row
/// is read to tell whether another page follows.
pub(crate) fn list_projects_json(
    conn: &Connection,
    org: &str,
    limit: u32,
    after: Option<&(i64, String)>,
) -> rusqlite::Result<Vec<u8>> {
    let mut st = match after {
        None => conn.prepare_cached(
            "SELECT id, name, created_at FROM projects WHERE org_id = ?1 ORDER BY created_at, id",
        )?,
        Some(_) => conn.prepare_cached(
            "SELECT id, name, created_at FROM projects WHERE org_id = ?1 AND (created_at, id) > (?2, ?3)
             ORDER BY created_at, id",
        )?,
    };
    let mut rows = match after {
        None => st.query(params![org])?,
        Some((at, id)) => st.query(params![org, at, id])?,
    };
    // About a hundred bytes a project, and the cursor: a page is nearly always written
    // without growing the buffer (up to 4 KiB reserved, whatever the limit).
    let mut out = Vec::with_capacity((128 + 112 * limit as usize).min(4096));
    out.extend_from_slice(b"{\"data\":[");
    let mut n = 0;
    let (mut last_at, mut last_id) = (0_i64, String::new());
    while n < limit
        && let Some(row) = rows.next()?
    {
        if n > 0 {
            out.push(b',');
        }
        let text = |i: usize| row.get_ref(i)?.as_str().map_err(rusqlite::Error::from);
        let created_at: i64 = row.get(2)?;
        let id = text(0)?;
        // The keys are written as they are (they need no escaping), the strings as
        // serde_json writes them, the number with itoa.
        out.extend_from_slice(b"{\"id\":");
        json::write_str(&mut out, id);
        out.extend_from_slice(b",\"name\":");
        json::write_str(&mut out, text(1)?);
        out.extend_from_slice(b",\"created_at\":");
        out.extend_from_slice(itoa::Buffer::new().format(created_at).as_bytes());
        out.push(b'}');
        last_at = created_at;
        last_id.clear();
        last_id.push_str(id);
        n += 1;
    }
    let has_more = n == limit && rows.next()?.is_some();
    if has_more {
        out.extend_from_slice(b"],\"has_more\":true,\"next_cursor\":\"");
        out.extend_from_slice(crate::routes::encode_cursor(last_at, &last_id).as_bytes());
        out.extend_from_slice(b"\"}");
    } else {
        out.extend_from_slice(b"],\"has_more\":false,\"next_cursor\":null}");
    }
    Ok(out)
}

/// Every lookup is scoped to the caller's organisation, so a resource of another one is
/// indistinguishable from a missing one.
pub(crate) fn get_project(conn: &Connection, org: &str, id: &str) -> rusqlite::Result<Option<Project>> {
    conn.prepare_cached("SELECT id, name, created_at FROM projects WHERE org_id = ?1 AND id = ?2")?
        .query_row(params![org, id], |r| {
            Ok(Project { id: r.get(0)?, name: r.get(1)?, created_at: r.get(2)? })
        })
        .optional()
}

pub(crate) fn delete_project(conn: &Connection, org: &str, id: &str) -> rusqlite::Result<bool> {
    Ok(conn.execute("DELETE FROM projects WHERE org_id = ?1 AND id = ?2", params![org, id])? > 0)
}

pub(crate) fn insert_dataset(
    conn: &Connection,
    org: &str,
    project_id: &str,
    name: &str,
    format: &str,
    rows: i64,
) -> rusqlite::Result<Option<Dataset>> {
    if get_project(conn, org, project_id)?.is_none() {
        return Ok(None);
    }
    let d = Dataset {
        id: new_id("dst"),
        project_id: project_id.to_owned(),
        name: name.to_owned(),
        format: format.to_owned(),
        rows,
        created_at: now(),
    };
    conn.execute(
        "INSERT INTO datasets (id, org_id, project_id, name, format, rows, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![d.id, org, d.project_id, d.name, d.format, d.rows, d.created_at],
    )?;
    Ok(Some(d))
}

pub(crate) fn get_dataset(conn: &Connection, org: &str, id: &str) -> rusqlite::Result<Option<Dataset>> {
    conn.prepare_cached(
        "SELECT id, project_id, name, format, rows, created_at FROM datasets WHERE org_id = ?1 AND id = ?2",
    )?
    .query_row(params![org, id], |r| {
        Ok(Dataset {
            id: r.get(0)?,
            project_id: r.get(1)?,
            name: r.get(2)?,
            format: r.get(3)?,
            rows: r.get(4)?,
            created_at: r.get(5)?,
        })
    })
    .optional()
}

fn model_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Model> {
    let config: String = r.get(3)?;
    Ok(Model {
        id: r.get(0)?,
        name: r.get(1)?,
        model_type: r.get(2)?,
        config: serde_json::from_str(&config).unwrap_or(serde_json::Value::Null),
        status: r.get(4)?,
        error: r.get(5)?,
        created_at: r.get(6)?,
    })
}

pub(crate) fn insert_model(
    conn: &Connection,
    org: &str,
    name: &str,
    model_type: &str,
    config: &serde_json::Value,
) -> rusqlite::Result<Model> {
    let m = Model {
        id: new_id("mdl"),
        name: name.to_owned(),
        model_type: model_type.to_owned(),
        config: config.clone(),
        status: "created".to_owned(),
        error: None,
        created_at: now(),
    };
    conn.execute(
        "INSERT INTO models (id, org_id, name, model_type, config, status, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'created', ?6)",
        params![m.id, org, m.name, m.model_type, m.config.to_string(), m.created_at],
    )?;
    Ok(m)
}

pub(crate) fn get_model(conn: &Connection, org: &str, id: &str) -> rusqlite::Result<Option<Model>> {
    conn.prepare_cached(
        "SELECT id, name, model_type, config, status, error, created_at FROM models WHERE org_id = ?1 AND id = ?2")?
    .query_row(
        params![org, id],
        model_row,
    )
    .optional()
}

/// Moves a model from `from` to `to`; false when it was not in `from`.
pub(crate) fn transition_model(
    conn: &Connection,
    org: &str,
    id: &str,
    from: &[&str],
    to: &str,
    error: Option<&str>,
) -> rusqlite::Result<bool> {
    let mut n = 0;
    for f in from {
        n += conn.execute(
            "UPDATE models SET status = ?1, error = ?2 WHERE org_id = ?3 AND id = ?4 AND status = ?5",
            params![to, error, org, id, f],
        )?;
    }
    Ok(n > 0)
}

/// Writes a running job with the id chosen for it (see [`begin_progress`]).
pub(crate) fn insert_job(
    conn: &Connection,
    id: String,
    org: &str,
    model_id: &str,
    n_samples: i64,
) -> rusqlite::Result<Job> {
    let j =
        Job { id, model_id: model_id.to_owned(), n_samples, status: "running".to_owned(), created_at: now() };
    conn.execute(
        "INSERT INTO jobs (id, org_id, model_id, n_samples, status, created_at) VALUES (?1, ?2, ?3, ?4, 'running', ?5)",
        params![j.id, org, j.model_id, j.n_samples, j.created_at],
    )?;
    Ok(j)
}

pub(crate) fn get_job(conn: &Connection, org: &str, id: &str) -> rusqlite::Result<Option<Job>> {
    conn.prepare_cached(
        "SELECT id, model_id, n_samples, status, created_at FROM jobs WHERE org_id = ?1 AND id = ?2",
    )?
    .query_row(params![org, id], |r| {
        Ok(Job {
            id: r.get(0)?,
            model_id: r.get(1)?,
            n_samples: r.get(2)?,
            status: r.get(3)?,
            created_at: r.get(4)?,
        })
    })
    .optional()
}

pub(crate) fn finish_job(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.execute("UPDATE jobs SET status = 'done', done_at = ?1 WHERE id = ?2", params![now(), id])?;
    Ok(())
}

/// Where an idempotent operation of several steps stands.
pub(crate) enum Progress {
    /// Its outcome is recorded: it finished.
    Finished(rebuff_axum::idempotency::Outcome),
    /// Its recovery point: the id chosen for what it creates, when it first started, and the
    /// payload's fingerprint.
    At { resource_id: String, started_at: i64, fingerprint: [u8; 32] },
}

/// The recovery point of `record`'s operation, made now (with a new `prefix` id) on its first
/// attempt; or its outcome, if it finished.
pub(crate) fn begin_progress(
    conn: &mut Connection,
    record: &rebuff_axum::idempotency::IdempotencyRecord,
    prefix: &str,
) -> rusqlite::Result<Progress> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    if let Some(outcome) = rebuff_sqlite::outcomes::find(&tx, &record.key)? {
        return Ok(Progress::Finished(outcome));
    }
    let now = now();
    let found = tx
        .prepare_cached(
            "SELECT resource_id, started_at, fingerprint FROM idempotency_progress WHERE key = ?1 AND expires_at > ?2",
        )?
        .query_row(params![record.key, now], |r| {
            let fingerprint: Vec<u8> = r.get(2)?;
            Ok(Progress::At {
                resource_id: r.get(0)?,
                started_at: r.get(1)?,
                fingerprint: fingerprint.try_into().unwrap_or([0; 32]),
            })
        })
        .optional()?;
    let progress = match found {
        Some(progress) => progress,
        None => {
            let resource_id = new_id(prefix);
            let ttl = i64::try_from(record.ttl.as_secs()).unwrap_or(i64::MAX);
            tx.execute(
                "INSERT OR REPLACE INTO idempotency_progress (key, fingerprint, resource_id, started_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![record.key, &record.fingerprint[..], resource_id, now, now.saturating_add(ttl)],
            )?;
            Progress::At { resource_id, started_at: now, fingerprint: record.fingerprint }
        }
    };
    tx.commit()?;
    Ok(progress)
}

/// Forgets an operation's recovery point: inside the transaction that records its outcome.
pub(crate) fn end_progress(conn: &Connection, key: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM idempotency_progress WHERE key = ?1")?.execute([key])?;
    Ok(())
}

/// Deletes expired recovery points (the store purges outcomes); returns how many.
pub(crate) fn purge_expired(conn: &Connection) -> rusqlite::Result<u64> {
    let now = now();
    let n = conn.execute("DELETE FROM idempotency_progress WHERE expires_at <= ?1", [now])?;
    Ok(u64::try_from(n).unwrap_or(u64::MAX))
}

/// Work that runs after its request was answered and that a stopped instance left unfinished.
pub(crate) struct Unfinished {
    /// Models in training: organisation, id, whether the training is to fail.
    pub(crate) models: Vec<(String, String, bool)>,
    /// Running jobs' ids.
    pub(crate) jobs: Vec<String>,
}

/// What a stopped instance left running.
pub(crate) fn unfinished(conn: &Connection) -> rusqlite::Result<Unfinished> {
    let models = conn
        .prepare("SELECT org_id, id, config FROM models WHERE status = 'training'")?
        .query_map([], |r| {
            let config: String = r.get(2)?;
            let fail = serde_json::from_str::<serde_json::Value>(&config)
                .ok()
                .and_then(|c| c.get("simulate_failure").and_then(serde_json::Value::as_bool))
                .unwrap_or(false);
            Ok((r.get(0)?, r.get(1)?, fail))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let jobs = conn
        .prepare("SELECT id FROM jobs WHERE status = 'running'")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Unfinished { models, jobs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::Page;

    /// The list body written by hand is what serde writes for the same page, names that need
    /// escaping included.
    #[test]
    fn a_page_of_projects_is_written_as_serde_writes_it() {
        let mut conn = Connection::open_in_memory().expect("SQLite in memory");
        migrate(&mut conn).expect("schema");
        let names = ["plain", "quote \" and \\ backslash", "control \u{1}\t\n", "é, 漢字 and 🦀", ""];
        let mut made = Vec::new();
        for name in names {
            match insert_project(&conn, "org_1", name).expect("insert") {
                Insert::Created(p) => made.push(p),
                Insert::Duplicate => unreachable!("distinct names"),
            }
        }
        // Another organisation's project is not listed.
        insert_project(&conn, "org_2", "plain").expect("insert");
        made.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));

        let all = list_projects_json(&conn, "org_1", 10, None).expect("list");
        let expected = Page { data: made.clone(), has_more: false, next_cursor: None };
        assert_eq!(String::from_utf8(all).expect("UTF-8"), serde_json::to_string(&expected).expect("JSON"));

        let first = list_projects_json(&conn, "org_1", 2, None).expect("list");
        let cursor = crate::routes::encode_cursor(made[1].created_at, &made[1].id);
        let expected = Page { data: made[..2].to_vec(), has_more: true, next_cursor: Some(cursor) };
        assert_eq!(String::from_utf8(first).expect("UTF-8"), serde_json::to_string(&expected).expect("JSON"));

        let after = (made[1].created_at, made[1].id.clone());
        let rest = list_projects_json(&conn, "org_1", 10, Some(&after)).expect("list");
        let expected = Page { data: made[2..].to_vec(), has_more: false, next_cursor: None };
        assert_eq!(String::from_utf8(rest).expect("UTF-8"), serde_json::to_string(&expected).expect("JSON"));
    }
}

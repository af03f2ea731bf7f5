//! `rebuff keys` and `rebuff users` as an operator runs them: on the SQLite file by default,
//! in PostgreSQL with `--postgres`; keys printed once, never again, and honoured by
//! `rebuff serve`; bad input refused with a clear message and exit status 2 (usage) or 1 (the
//! thing asked for does not exist).
//!
//! The PostgreSQL test needs a server (`REBUFF_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and makes a database of its own: in CI a
//! missing server fails it; elsewhere it prints a notice and passes without running.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use support::{get, rebuff_stdin, serve};

#[track_caller]
fn ok(o: &Output) -> String {
    assert!(o.status.success(), "stdout:\n{}\nstderr:\n{}", text(&o.stdout), text(&o.stderr));
    text(&o.stdout)
}

#[track_caller]
fn fails(o: &Output, code: i32, says: &str) {
    assert_eq!(o.status.code(), Some(code), "stdout:\n{}\nstderr:\n{}", text(&o.stdout), text(&o.stderr));
    assert!(text(&o.stderr).contains(says), "expected `{says}` in:\n{}", text(&o.stderr));
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A database path in a fresh directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("rebuff-cli-accounts-{}-{nanos}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        Scratch(dir)
    }

    fn db(&self) -> String {
        self.0.join("rebuff.db").display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The status line of `GET /v1/projects` with `key` from the server at `addr`.
fn status(addr: &str, key: &str) -> String {
    get(addr, "/v1/projects", Some(key)).lines().next().unwrap_or_default().to_owned()
}

/// Creates, lists and revokes keys and creates users with the store options `store`; returns
/// the ids of a key left active and of one revoked, and their texts.
fn exercise(store: &[&str]) -> [(String, String); 2] {
    let with = |args: &[&str]| -> Vec<String> { args.iter().chain(store).map(|a| (*a).to_owned()).collect() };
    let created = ok(&rebuff_stdin(
        &with(&[
            "keys",
            "create",
            "--org",
            "acme",
            "--scope",
            "read",
            "--scope",
            "write",
            "--allow-ip",
            "127.0.0.1/32",
            "--allow-ip",
            "::1",
            "--expires-at",
            "2099-01-31T00:00:00Z",
            "--name",
            "ci",
            "--json",
        ]),
        b"",
    ));
    let created: Value = serde_json::from_str(&created).expect("JSON");
    let key = created["key"].as_str().expect("the key text").to_owned();
    let id = created["id"].as_str().expect("the id").to_owned();
    assert!(key.starts_with(&format!("rb_test_{id}_")) && key.len() == 8 + 12 + 1 + 32, "{key}");
    assert_eq!(created["scopes"], serde_json::json!(["read", "write"]));
    assert_eq!(created["allowed_ips"], serde_json::json!(["127.0.0.1/32", "::1/128"]));
    assert_eq!(created["expires_at"], 4_073_500_800_i64);
    assert_eq!(created["name"], "ci");

    let plain = ok(&rebuff_stdin(&with(&["keys", "create", "--org", "acme", "--live"]), b""));
    let live = plain.lines().next().expect("the key on the first line").to_owned();
    assert!(live.starts_with("rb_live_"), "{plain}");
    assert!(plain.contains("shown once"), "{plain}");
    let live_id = live["rb_live_".len()..].split('_').next().unwrap_or_default().to_owned();

    // Listing never shows a secret again.
    let listed = ok(&rebuff_stdin(&with(&["keys", "list", "--org", "acme", "--json"]), b""));
    for secret in [&key, &live] {
        let tail = &secret[secret.len() - 32..];
        assert!(!listed.contains(tail), "a secret was listed:\n{listed}");
    }
    let listed: Value = serde_json::from_str(&listed).expect("JSON");
    let ids: Vec<&str> = listed.as_array().expect("a list").iter().filter_map(|k| k["id"].as_str()).collect();
    assert_eq!(ids, [id.as_str(), live_id.as_str()]);
    assert!(listed.as_array().expect("a list").iter().all(|k| k.get("key").is_none()));
    let listed = ok(&rebuff_stdin(&with(&["keys", "list", "--org", "acme"]), b""));
    assert!(!listed.contains(&key[key.len() - 32..]), "{listed}");
    // Regression: prefix and id were printed run together (`rb_test_ID` + `ID`), which looked
    // like a key and was not what `keys revoke` takes. Now: a header, then one column each.
    let rows: Vec<Vec<&str>> = listed.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0], ["ID", "PREFIX", "STATE", "SCOPES", "EXPIRES", "NAME"], "{listed}");
    assert_eq!(
        rows[1],
        [id.as_str(), &format!("rb_test_{id}_…"), "active", "read,write", "2099-01-31T00:00:00Z", "ci"],
        "{listed}"
    );
    assert_eq!(
        rows[2],
        [live_id.as_str(), &format!("rb_live_{live_id}_…"), "active", "read", "-", "cli"],
        "{listed}"
    );
    assert_eq!(rows.len(), 3, "{listed}");
    let columns = |line: &str| line.find("PREFIX").or_else(|| line.find("rb_"));
    assert!(
        listed.lines().map(columns).all(|c| c == columns(listed.lines().next().unwrap_or_default())),
        "{listed}"
    );

    // The first column is what `keys revoke` takes.
    ok(&rebuff_stdin(&with(&["keys", "revoke", "--org", "acme", rows[2][0]]), b""));
    let listed = ok(&rebuff_stdin(&with(&["keys", "list", "--org", "acme"]), b""));
    assert!(
        listed.lines().nth(2).is_some_and(|l| l.split_whitespace().nth(2) == Some("revoked")),
        "{listed}"
    );
    let listed: Value =
        serde_json::from_str(&ok(&rebuff_stdin(&with(&["keys", "list", "--org", "acme", "--json"]), b"")))
            .expect("JSON");
    assert!(listed[1]["revoked_at"].is_i64() && listed[0]["revoked_at"].is_null(), "{listed}");

    // Bad input: usage errors (2) name the argument; missing things (1) say what is missing.
    fails(&rebuff_stdin(&with(&["keys", "create", "--org", "acme", "--scope", "root"]), b""), 2, "root");
    fails(
        &rebuff_stdin(&with(&["keys", "create", "--org", "acme", "--expires-at", "tomorrow"]), b""),
        2,
        "RFC 3339",
    );
    fails(
        &rebuff_stdin(&with(&["keys", "create", "--org", "acme", "--allow-ip", "300.1.1.1"]), b""),
        2,
        "300.1.1.1",
    );
    fails(
        &rebuff_stdin(&with(&["keys", "list", "--org", "nobody"]), b""),
        1,
        "no organisation named `nobody`",
    );
    fails(
        &rebuff_stdin(&with(&["keys", "revoke", "--org", "acme", "AAAAAAAAAAAA"]), b""),
        1,
        "no key `AAAAAAAAAAAA`",
    );
    fails(
        &rebuff_stdin(&with(&["keys", "revoke", "--org", "nobody", &id]), b""),
        1,
        "no organisation named `nobody`",
    );

    let user = ["users", "create", "--org", "acme", "--email", "ada@acme.test"];
    let made = ok(&rebuff_stdin(&with(&user), b"correct horse battery\n"));
    assert!(made.contains("created user ada@acme.test"), "{made}");
    fails(&rebuff_stdin(&with(&user), b"correct horse battery\n"), 1, "already exists");
    let other = ["users", "create", "--org", "acme", "--email", "bob@acme.test"];
    fails(&rebuff_stdin(&with(&other), b"short\n"), 2, "at least 8 characters");
    fails(
        &rebuff_stdin(
            &with(&["users", "create", "--org", "acme", "--email", "not-an-email"]),
            b"long enough\n",
        ),
        2,
        "not an email",
    );
    let disabled = ["users", "create", "--org", "acme", "--email", "eve@acme.test", "--disabled"];
    assert!(ok(&rebuff_stdin(&with(&disabled), b"long enough pw\n")).contains("disabled"));

    [(id, key), (live_id, live)]
}

#[test]
fn keys_and_users_on_the_sqlite_file_are_honoured_by_the_server() {
    let scratch = Scratch::new("sqlite");
    let db = scratch.db();
    let [(_, active), (_, revoked)] = exercise(&["--db", &db]);
    let (_server, _, addr) = serve(Path::new(&db), &[]);
    assert!(status(&addr, &active).contains("200"), "{}", status(&addr, &active));
    assert!(status(&addr, &revoked).contains("401"), "{}", status(&addr, &revoked));
}

/// `keys revoke --redis` announces the revocation to the servers that share the Redis: one
/// that keeps its keys in the SQLite file, and here looks for changes to them only once an
/// hour, refuses the key at once.
#[test]
fn a_key_revoked_with_the_redis_option_is_refused_by_a_running_server_at_once() {
    let url = std::env::var("REBUFF_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
    let authority = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
    let host = authority.split('/').next().unwrap_or_default().rsplit('@').next().unwrap_or_default();
    let host = if host.contains(':') { host.to_owned() } else { format!("{host}:6379") };
    if let Err(e) = std::net::TcpStream::connect(&host) {
        assert!(!in_ci(), "Redis is required in CI (run scripts/services.sh): {host}: {e}");
        eprintln!("SKIPPED: no Redis at {host} ({e}); run scripts/services.sh to start it");
        return;
    }
    let scratch = Scratch::new("redis");
    let db = scratch.db();
    let created = ok(&rebuff_stdin(&["keys", "create", "--db", &db, "--org", "acme"], b""));
    let key = created.lines().next().unwrap_or_default().to_owned();
    let id = key.get(8..20).expect("a key id").to_owned();
    let (_server, lines, addr) = serve(Path::new(&db), &["--redis", &url, "--key-cache-ms", "3600000"]);
    let state = lines.iter().find(|l| l.starts_with("State: ")).expect("the state line");
    assert!(state.contains("keys and sessions: SQLite (revocations announced over Redis)"), "{state}");
    // The server verifies the key, and would keep it for the hour.
    assert!(status(&addr, &key).contains("200"), "{}", status(&addr, &key));
    let revoked =
        ok(&rebuff_stdin(&["keys", "revoke", "--db", &db, "--org", "acme", "--redis", &url, &id], b""));
    assert_eq!(revoked.trim(), format!("revoked {id}"));
    let since = std::time::Instant::now();
    while !status(&addr, &key).contains("401") {
        assert!(
            since.elapsed() < std::time::Duration::from_secs(2),
            "the server still accepts the revoked key"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// A Redis that cannot be reached does not undo a revocation: the key is revoked, and the
/// operator is told that running servers see it within their bound instead.
#[test]
fn a_revocation_that_cannot_be_announced_still_stands() {
    let scratch = Scratch::new("no-redis");
    let db = scratch.db();
    let created = ok(&rebuff_stdin(&["keys", "create", "--db", &db, "--org", "acme"], b""));
    let id = created.lines().next().and_then(|key| key.get(8..20)).expect("a key id").to_owned();
    // Port 1 on loopback: refused at once.
    let out = rebuff_stdin(
        &["keys", "revoke", "--db", &db, "--org", "acme", "--redis", "redis://127.0.0.1:1/", &id],
        b"",
    );
    assert_eq!(ok(&out).trim(), format!("revoked {id}"));
    assert!(text(&out.stderr).contains("not announced"), "{}", text(&out.stderr));
    let listed: Value = serde_json::from_str(&ok(&rebuff_stdin(
        &["keys", "list", "--db", &db, "--org", "acme", "--json"],
        b"",
    )))
    .expect("JSON");
    assert!(listed[0]["revoked_at"].is_i64(), "{listed}");
}

fn postgres_url() -> String {
    std::env::var("REBUFF_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// `url` with its database replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{database}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A database of its own on the test server, dropped at the end.
struct OwnDatabase {
    admin: tokio_postgres::Client,
    name: String,
    url: String,
}

impl OwnDatabase {
    async fn create() -> Option<OwnDatabase> {
        let admin = match tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls).await {
            Ok((client, conn)) => {
                tokio::spawn(conn);
                client
            }
            Err(e) if in_ci() => panic!("PostgreSQL is required in CI (run scripts/services.sh): {e}"),
            Err(e) => {
                eprintln!("SKIPPED: no PostgreSQL ({e}); run scripts/services.sh to start it");
                return None;
            }
        };
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let name = format!("rebuff_cli_test_{}_{}", std::process::id(), nanos % 1_000_000_000);
        admin.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create the test database");
        let url = with_database(&postgres_url(), &name);
        Some(OwnDatabase { admin, name, url })
    }

    async fn drop_it(self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        self.admin.batch_execute(&sql).await.expect("drop the test database");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_and_users_go_to_postgres_with_the_postgres_option() {
    let Some(pg) = OwnDatabase::create().await else {
        return;
    };
    let scratch = Scratch::new("postgres");
    let db = scratch.db();
    let (url, db2) = (pg.url.clone(), db.clone());
    let [(id, active), (revoked_id, revoked)] =
        tokio::task::spawn_blocking(move || exercise(&["--db", &db2, "--postgres", &url]))
            .await
            .expect("exercise");

    // The keys and the user are in PostgreSQL, and not in the SQLite file.
    use rebuff_sqlite::AccountStore as _;
    let store = rebuff_server::PgStore::connect(pg.url.as_str()).await.expect("connect");
    let org = store.find_org("acme").await.expect("find").expect("acme in PostgreSQL");
    let keys = store.list_keys(&org.id).await.expect("keys");
    let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(ids, [id.as_str(), revoked_id.as_str()]);
    assert!(keys[1].revoked_at.is_some() && keys[0].revoked_at.is_none());
    let login = store.verify_login("ada@acme.test", "correct horse battery").await.expect("login");
    assert!(format!("{login:?}").starts_with("Ok("), "{login:?}");
    let sqlite = rebuff_sqlite::SqliteStore::open(&db).expect("open SQLite");
    assert!(sqlite.find_org("acme").await.expect("find").is_none(), "the organisation went to SQLite");

    // A server on the same PostgreSQL honours them.
    let url = pg.url.clone();
    let statuses = tokio::task::spawn_blocking(move || {
        let (_server, _, addr) = serve(Path::new(&db), &["--postgres", &url]);
        (status(&addr, &active), status(&addr, &revoked))
    })
    .await
    .expect("server");
    assert!(statuses.0.contains("200"), "{}", statuses.0);
    assert!(statuses.1.contains("401"), "{}", statuses.1);
    drop(store);
    pg.drop_it().await;
}

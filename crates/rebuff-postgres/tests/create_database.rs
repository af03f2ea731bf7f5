//! A URL naming a database that does not exist yet: created when the role may, and a clear
//! error naming `createdb` when it may not.
//!
//! Needs PostgreSQL (`REBUFF_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`, a role that may create databases and roles):
//! in CI a missing one fails these tests; elsewhere they print a notice and pass without
//! running. Each test drops what it created.

use rebuff_postgres::AccountStore;
use rebuff_postgres::PgStore;

mod support;

use support::{in_ci, postgres_url};

/// `url` with its user replaced by `user` (when given) and its database by `database`.
fn url_for(user: Option<&str>, database: &str) -> String {
    let url = postgres_url();
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let rest = rest.split(['?']).next().unwrap_or_default();
    let authority = rest.split('/').next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let userinfo = match (user, authority.rsplit_once('@')) {
        (Some(u), _) => format!("{u}@"),
        (None, Some((info, _))) => format!("{info}@"),
        (None, None) => String::new(),
    };
    format!("{scheme}://{userinfo}{host}/{database}")
}

fn unique(prefix: &str) -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{prefix}_{}_{}", std::process::id(), nanos % 1_000_000_000)
}

/// A client on the maintenance database, or `None` (after a notice) outside CI without one.
async fn admin() -> Option<tokio_postgres::Client> {
    match tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls).await {
        Ok((client, conn)) => {
            tokio::spawn(conn);
            Some(client)
        }
        Err(e) if in_ci() => panic!("PostgreSQL is required in CI (run scripts/services.sh): {e}"),
        Err(e) => {
            eprintln!("SKIPPED: no PostgreSQL ({e}); run scripts/services.sh to start it");
            None
        }
    }
}

async fn exists(admin: &tokio_postgres::Client, database: &str) -> bool {
    let row = admin
        .query_one("SELECT count(*) FROM pg_database WHERE datname = $1", &[&database])
        .await
        .expect("pg_database");
    row.get::<_, i64>(0) == 1
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_database_is_created_and_used() {
    let Some(admin) = admin().await else { return };
    let name = unique("rebuff_created");
    assert!(!exists(&admin, &name).await);

    let store = PgStore::connect(url_for(None, &name)).await.expect("connects, creating the database");
    assert!(exists(&admin, &name).await, "database {name} was not created");
    let org = store.get_or_create_org("acme").await.expect("the schema is migrated");
    assert_eq!(store.find_org("acme").await.expect("find").map(|o| o.id), Some(org.id));

    // A second connect finds it there.
    let again = PgStore::connect(url_for(None, &name)).await.expect("connects to the existing database");
    assert!(again.find_org("acme").await.expect("find").is_some());

    drop((store, again));
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.expect("drop");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_that_may_not_create_it_is_told_to_run_createdb() {
    let Some(admin) = admin().await else { return };
    let role = unique("rebuff_nocreate");
    let name = unique("rebuff_never");
    admin.batch_execute(&format!("CREATE ROLE {role} LOGIN NOCREATEDB")).await.expect("create role");

    let err = PgStore::connect(url_for(Some(&role), &name)).await.expect_err("may not create a database");
    let message = err.to_string();
    assert!(message.contains(&format!("`createdb {name}`")), "{message}");
    assert!(message.contains("permission denied"), "{message}");
    assert!(!exists(&admin, &name).await);

    admin.batch_execute(&format!("DROP ROLE IF EXISTS {role}")).await.expect("drop role");
}

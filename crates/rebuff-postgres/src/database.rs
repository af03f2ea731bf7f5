//! Creating the database a URL names when it does not exist yet.
//!
//! A new user's first `--postgres postgres://…/rebuff` would otherwise stop at "database
//! \"rebuff\" does not exist" and need a `createdb` the server can do itself when its role may
//! (`CREATEDB`, or a superuser as in a local development cluster). Schemas and tables are
//! created by the migrations; only the database needs this step, because a connection cannot
//! be opened to a database that is not there.

use tokio_postgres::error::SqlState;
use tokio_postgres::{Config, NoTls};

use rebuff_store::StoreError;

/// Whether the pool's first connection failed because the database does not exist.
pub(crate) fn is_missing(e: &deadpool_postgres::PoolError) -> bool {
    matches!(e, deadpool_postgres::PoolError::Backend(e) if e.code() == Some(&SqlState::INVALID_CATALOG_NAME))
}

/// Connects to the `postgres` maintenance database with the same host, user and password, and
/// creates the database `config` names. Another instance creating it at the same moment is
/// not an error.
pub(crate) async fn create(config: &Config, shown_url: &str) -> Result<(), StoreError> {
    // libpq's rule: without a database name, the user's name is the database.
    let Some(name) = config.get_dbname().or(config.get_user()).map(str::to_owned) else {
        return Ok(());
    };
    let mut admin = config.clone();
    admin.dbname("postgres");
    let (client, connection) = admin.connect(NoTls).await.map_err(|e| {
        StoreError::unavailable(format!(
            "database `{name}` does not exist at {shown_url}, and the `postgres` database to create it \
             from cannot be reached: {}",
            describe(&e)
        ))
    })?;
    let driver = tokio::spawn(connection);
    // Quoted, with `"` doubled: the name comes from the URL and may be any identifier.
    let sql = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
    let created = client.batch_execute(&sql).await;
    drop(client);
    let _ = driver.await;
    match created {
        Ok(()) => {
            tracing::info!(database = %name, "created the PostgreSQL database");
            Ok(())
        }
        Err(e) if e.code() == Some(&SqlState::DUPLICATE_DATABASE) => Ok(()),
        Err(e) => Err(StoreError::backend(format!(
            "database `{name}` does not exist at {shown_url} and cannot be created ({}); create it with \
             `createdb {name}` or give the role CREATEDB",
            describe(&e)
        ))),
    }
}

/// The server's own message when there is one (`tokio_postgres::Error`'s `Display` says only
/// "db error").
fn describe(e: &tokio_postgres::Error) -> String {
    e.as_db_error().map_or_else(|| e.to_string(), |db| db.message().to_owned())
}

//! What the PostgreSQL test binaries share: where the database is, whether it must be there,
//! and dropping a test's schema.

/// The test database: `REBUFF_TEST_POSTGRES_URL`, or the local server's `postgres` database.
pub(crate) fn postgres_url() -> String {
    std::env::var("REBUFF_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// In CI a missing database fails the tests; elsewhere they print a notice and pass.
pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Drops `schema` and everything in it; whether that worked. From a thread of its own: it is
/// called from `Drop`, which cannot await and may run inside the test's runtime.
#[allow(dead_code, reason = "create_database makes databases, not schemas")]
pub(crate) fn drop_schema(schema: &str) -> bool {
    let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
    let dropped = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
        runtime.block_on(async {
            let (client, conn) =
                tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls).await.ok()?;
            tokio::spawn(conn);
            client.batch_execute(&sql).await.ok()
        })
    })
    .join();
    matches!(dropped, Ok(Some(())))
}

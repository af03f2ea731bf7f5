//! Shared state of the reference API.

use std::sync::Arc;

use rebuff_axum::quota::Quotas;
use rebuff_axum::store::StoreError;
use rebuff_sqlite::SqliteStore;

use crate::config::Config;

/// What every handler can reach. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) store: SqliteStore,
    pub(crate) quotas: Quotas,
    pub(crate) errors_html: String,
    pub(crate) errors_json: String,
    pub(crate) openapi: String,
}

impl AppState {
    /// State over an opened store; creates the API's own tables.
    ///
    /// # Errors
    /// The store could not be migrated.
    pub async fn new(config: Config, store: SqliteStore) -> Result<Self, StoreError> {
        store.with_conn(crate::db::migrate).await?;
        let quotas = Quotas::new(Arc::new(store.clone()), config.monthly_rows);
        let catalog = &config.catalog;
        let errors_html = rebuff::docs::html(catalog);
        let errors_json = rebuff::docs::json(catalog).to_string();
        let openapi = crate::openapi::document(catalog).to_string();
        Ok(AppState { inner: Arc::new(Inner { config, store, quotas, errors_html, errors_json, openapi }) })
    }

    /// The store.
    pub fn store(&self) -> &SqliteStore {
        &self.inner.store
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }
}

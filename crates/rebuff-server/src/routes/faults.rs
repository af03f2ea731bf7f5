//! Routes that fail on purpose, compiled only with the `fault-routes` feature, to test that
//! failures are masked.

use axum::extract::State;
use rebuff_axum::ApiError;

use crate::state::AppState;

pub(crate) async fn panic() -> &'static str {
    panic!("fault route: secret=hunter2 at /srv/rebuff/src/routes/faults.rs");
}

pub(crate) async fn database(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    super::db(&state, |c| {
        c.execute("SELECT * FROM no_such_table WHERE password = 'hunter2'", []).map(|_| ())
    })
    .await?;
    Ok("unreachable")
}

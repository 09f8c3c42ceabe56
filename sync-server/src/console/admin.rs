//! Administration in the console: staff accounts, device enrollment codes, the audit log.

use axum::Router;

use crate::http::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
}

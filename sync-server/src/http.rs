//! HTTP: a router per area (sync, staff API) merged in [`app`], shared [`AppState`], the
//! staff identity as an extractor, and one mapping from [`Error`] to a response: client
//! mistakes are answered with their short message, internals are logged and hidden.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, State};
use axum::http::header::CONTENT_TYPE as CONTENT_TYPE_HEADER;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use agent_core::domain::event::EventDraft;
use agent_core::sync::wire::{CONTENT_TYPE, MAX_WIRE_BYTES};

use crate::error::Error;
use crate::staff::{self, Staff};
use crate::store::ServerStore;
use crate::sync::{self, ServerInfo};

/// Largest staff API request body.
const MAX_JSON_BYTES: usize = 64 << 10;

/// What every handler shares. One SQLite writer: the store is behind a mutex and used from
/// blocking tasks.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Mutex<ServerStore>>,
    pub info: Arc<ServerInfo>,
}

impl AppState {
    pub fn new(store: ServerStore, info: ServerInfo) -> Self {
        Self {
            store: Arc::new(Mutex::new(store)),
            info: Arc::new(info),
        }
    }

    /// Run `f` with the store on a blocking thread.
    async fn with_store<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut ServerStore, &ServerInfo) -> Result<T, Error> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        let info = Arc::clone(&self.info);
        tokio::task::spawn_blocking(move || {
            let mut guard = store
                .lock()
                .map_err(|_| Error::Internal("store lock poisoned".into()))?;
            f(&mut guard, &info)
        })
        .await
        .map_err(|e| Error::Internal(format!("task failed: {e}")))?
    }
}

/// The whole server.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(sync_router())
        .merge(api_router())
        .with_state(state)
}

fn sync_router() -> Router<AppState> {
    Router::new()
        .route("/v1/sync", post(sync_handler))
        .layer(DefaultBodyLimit::max(MAX_WIRE_BYTES))
}

fn api_router() -> Router<AppState> {
    Router::new()
        .route("/api/tickets", get(list_handler))
        .route("/api/tickets/{number}", get(view_handler))
        .route("/api/tickets/{number}/events", post(append_handler))
        .layer(DefaultBodyLimit::max(MAX_JSON_BYTES))
}

/// Errors of the sync endpoint: short plain text (the tablet shows it).
struct SyncFailure(Error);

impl IntoResponse for SyncFailure {
    fn into_response(self) -> Response {
        let (status, text) = classify(&self.0);
        (status, text).into_response()
    }
}

/// Errors of the staff API: `{"error": "..."}`.
pub struct ApiError(Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, text) = classify(&self.0);
        (status, Json(serde_json::json!({ "error": text }))).into_response()
    }
}

/// The one place that decides what a client sees and what is logged.
fn classify(e: &Error) -> (StatusCode, String) {
    let status = match e {
        Error::BadRequest(_) => StatusCode::BAD_REQUEST,
        Error::StaleCounter => StatusCode::CONFLICT,
        Error::Unauthorized => StatusCode::UNAUTHORIZED,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => {
            tracing::error!(error = %e, "request failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal server error; the request can be retried".into(),
            );
        }
    };
    tracing::debug!(%status, error = %e, "request refused");
    (status, e.to_string())
}

async fn sync_handler(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let typed = headers
        .get(CONTENT_TYPE_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == CONTENT_TYPE);
    if !typed {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content type must be {CONTENT_TYPE}"),
        )
            .into_response();
    }
    let now = crate::now();
    let result = state
        .with_store(move |store, info| sync::handle(store, info, &body, now))
        .await;
    match result {
        Ok(bytes) => (
            [(CONTENT_TYPE_HEADER, HeaderValue::from_static(CONTENT_TYPE))],
            bytes,
        )
            .into_response(),
        Err(e) => SyncFailure(e).into_response(),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        Staff::from_headers(header("x-daiban-staff"), header("x-daiban-role"))
            .ok_or(ApiError(Error::Unauthorized))
    }
}

async fn append_handler(
    State(state): State<AppState>,
    staff: Staff,
    Path(number): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    // Own JSON parsing: serde's messages can quote values; say where, not what.
    let draft: EventDraft = serde_json::from_slice(&body).map_err(|e| {
        Error::BadRequest(match e.classify() {
            serde_json::error::Category::Data => {
                "事件格式不正确：kind 须为已知事件，只允许 kind、note、payload 字段".into()
            }
            _ => format!("请求不是有效的JSON（第{}行第{}列）", e.line(), e.column()),
        })
    })?;
    let now = crate::now();
    let view = state
        .with_store(move |store, _| staff::append(store, &number, &staff, &draft, now))
        .await?;
    Ok(Json(view).into_response())
}

async fn view_handler(
    State(state): State<AppState>,
    _staff: Staff,
    Path(number): Path<String>,
) -> Result<Response, ApiError> {
    let now = crate::now();
    let view = state
        .with_store(move |store, _| staff::view(store, &number, now))
        .await?;
    Ok(Json(view).into_response())
}

async fn list_handler(State(state): State<AppState>, _staff: Staff) -> Result<Response, ApiError> {
    let rows = state.with_store(|store, _| staff::list(store)).await?;
    Ok(Json(rows).into_response())
}

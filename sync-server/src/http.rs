//! HTTP: a router per area (sync, staff API) merged in [`app`], shared [`AppState`], the
//! staff identity as an extractor, one mapping from [`Error`] to a response (client
//! mistakes are answered with their short message, internals are logged and hidden), and
//! [`serve`] (plain HTTP) / [`serve_tls`] (HTTPS, rustls).
//!
//! On GPRS the headers of a sync round trip cost more than a no-op's bodies, so `/v1/sync`
//! answers with the status line and `content-length` only: no `content-type` (the path names
//! the body) and, on every route, no `date`.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_core::sync::enroll::ENROLL_PATH;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Path, RawQuery, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Extension;
use axum::{Json, Router};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::Layer;

use agent_core::domain::event::{EventDraft, Role};
use agent_core::sync::client::{Endpoint, SyncReport};
use agent_core::sync::wire::MAX_WIRE_BYTES;

use crate::accounts::{self, SignedIn};
use crate::error::Error;
use crate::staff::{self, Staff};
use crate::store::ServerStore;
use crate::sync::{self, ServerInfo};
use crate::upstream::Upstream;

/// Largest staff API request body.
const MAX_JSON_BYTES: usize = 64 << 10;

/// What every handler shares. One SQLite writer: the store is behind a mutex and used from
/// blocking tasks.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Mutex<ServerStore>>,
    pub info: Arc<ServerInfo>,
    /// A township's link to its district, if configured.
    parent: Option<Arc<ParentLink>>,
    /// Served over HTTPS: console cookies are marked Secure.
    pub https: bool,
    /// Failed sign-ins by address.
    throttle: Arc<crate::throttle::Throttle>,
    /// The SMS gateway's settings, when this server runs one (inbound callbacks need them).
    pub sms: Option<Arc<crate::sms::service::SmsConfig>>,
}

/// A township's district: where to sync, one sync at a time, and a nudge when something
/// changed here so it goes up soon rather than at the next scheduled time.
struct ParentLink {
    url: String,
    /// The district's CA certificate (PEM) for an `https://` parent.
    ca: Option<Vec<u8>>,
    township: String,
    running: tokio::sync::Mutex<()>,
    changed: tokio::sync::Notify,
}

/// How long after a change the township waits before syncing upward, so that a burst of
/// tablet syncs and staff actions goes up in one request.
const NUDGE_DELAY: Duration = Duration::from_secs(2);

/// How often an idle server looks for tickets to index (pages refresh the index themselves).
const INDEX_IDLE: Duration = Duration::from_secs(2);

impl AppState {
    pub fn new(store: ServerStore, info: ServerInfo) -> Self {
        Self {
            store: Arc::new(Mutex::new(store)),
            info: Arc::new(info),
            parent: None,
            https: false,
            throttle: Arc::default(),
            sms: None,
        }
    }

    /// Run (and take callbacks for) this SMS gateway.
    pub fn with_sms(mut self, sms: Option<crate::sms::service::SmsConfig>) -> Self {
        self.sms = sms.map(Arc::new);
        self
    }

    /// Served over HTTPS (console cookies are then Secure).
    pub fn with_https(mut self, https: bool) -> Self {
        self.https = https;
        self
    }

    /// Link a township server to its district at `url`.
    pub fn with_parent(mut self, url: Option<String>) -> Self {
        self.parent = match (url, self.info.township.clone()) {
            (Some(url), Some(township)) => Some(Arc::new(ParentLink {
                url,
                ca: None,
                township,
                running: tokio::sync::Mutex::new(()),
                changed: tokio::sync::Notify::new(),
            })),
            _ => None,
        };
        self
    }

    /// Pin the district's CA certificate (PEM) for an `https://` parent; after
    /// [`with_parent`](Self::with_parent).
    pub fn with_parent_ca(mut self, ca: Option<Vec<u8>>) -> Self {
        if let Some(link) = self.parent.as_mut().and_then(Arc::get_mut) {
            link.ca = ca;
        }
        self
    }

    /// Check a sign-in (lockout and the address's throttle included) and open a session: its
    /// token and the account. The slow password check runs outside the store's lock.
    pub(crate) async fn sign_in(
        &self,
        login: &str,
        password: String,
        peer: PeerIp,
    ) -> Result<(String, SignedIn), Error> {
        let started = std::time::Instant::now();
        if let Some(ip) = peer.0 {
            if !self.throttle.allows(ip, started) {
                return Err(Error::Throttled);
            }
        }
        let now = crate::now();
        let login = login.trim().to_owned();
        let lookup = login.clone();
        let credentials = self
            .with_store(move |store, _| accounts::credentials(store, &lookup, now))
            .await?;
        let matched =
            tokio::task::spawn_blocking(move || accounts::check_password(&credentials, &password))
                .await
                .unwrap_or(false);
        if !matched {
            if let Some(ip) = peer.0 {
                self.throttle.failed(ip, started);
            }
        }
        self.with_store(move |store, _| accounts::record_sign_in(store, &login, matched, now))
            .await
    }

    /// Something here changed that the district should get.
    pub(crate) fn nudge(&self) {
        if let Some(parent) = &self.parent {
            parent.changed.notify_one();
        }
    }

    /// One sync with the district now (waits for a running one to finish first).
    pub async fn sync_upward(&self) -> Result<SyncReport, Error> {
        let Some(parent) = self.parent.clone() else {
            return Err(Error::BadRequest("这个服务器没有上级（区县）服务器".into()));
        };
        let _one = parent.running.lock().await;
        let store = Arc::clone(&self.store);
        let link = Arc::clone(&parent);
        let report = tokio::task::spawn_blocking(move || {
            let district = Endpoint {
                url: &link.url,
                ca_pem: link.ca.as_deref(),
            };
            Upstream::new(store, link.township.clone()).sync(district)
        })
        .await
        .map_err(|e| Error::Internal(format!("task failed: {e}")))??;
        Ok(report)
    }

    /// Sync with the district every `every`, and shortly after local changes. Without this
    /// loop running (interval 0) nudges wait unheard and syncs happen only when asked.
    pub async fn sync_upward_forever(self, every: Duration) {
        let Some(parent) = self.parent.clone() else {
            return;
        };
        loop {
            match self.sync_upward().await {
                Ok(r) => tracing::debug!(?r, "synced with the district"),
                Err(e) => tracing::warn!(error = %e, "sync with the district failed; will retry"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = parent.changed.notified() => tokio::time::sleep(NUDGE_DELAY).await,
            }
        }
    }

    /// Keep the ticket index current: a batch at a time, the store free between batches, so
    /// a large upload is indexed without holding up syncs or pages.
    pub async fn index_forever(self) {
        loop {
            match self
                .with_store(|store, _| crate::index::refresh(store))
                .await
            {
                Ok(0) => tokio::time::sleep(INDEX_IDLE).await,
                Ok(_) => tokio::task::yield_now().await,
                Err(e) => {
                    tracing::error!(error = %e, "indexing tickets failed; will retry");
                    tokio::time::sleep(INDEX_IDLE).await;
                }
            }
        }
    }

    /// Run `f` with the store on a blocking thread.
    pub(crate) async fn with_store<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut ServerStore, &ServerInfo) -> Result<T, Error> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        let info = Arc::clone(&self.info);
        tokio::task::spawn_blocking(move || {
            // A request that panicked (e.g. Automerge on hostile bytes) rolled its SQLite
            // transaction back as it unwound: the store is intact, so serve on.
            let mut guard = store
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut guard, &info)
        })
        .await
        .map_err(|e| Error::Internal(format!("task failed: {e}")))?
    }
}

/// The address a request came from, when the server knows it (the connection's peer, set by
/// [`serve`]; in-process routers without it skip address throttling).
#[derive(Debug, Clone, Copy)]
pub struct PeerIp(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(PeerIp(
            parts
                .extensions
                .get::<ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// The whole server.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(sync_router())
        .merge(api_router())
        .merge(crate::console::router())
        .merge(crate::public::router())
        .merge(crate::sms::callback::router())
        .with_state(state)
}

/// `/v1/sync` takes a body whatever its content type and labels none of its answers
/// (success, refusal or axum's own rejections): the path names the body, and each label
/// would cost the tablet bytes on every round trip.
fn sync_router() -> Router<AppState> {
    Router::new()
        .route("/v1/sync", post(sync_handler))
        .layer(DefaultBodyLimit::max(MAX_WIRE_BYTES))
        .layer(axum::middleware::map_response(unlabelled))
        .route(
            ENROLL_PATH,
            post(enroll_handler).layer(DefaultBodyLimit::max(4096)),
        )
}

/// `POST /v1/enroll`: JSON in and out; refusals as plain text like the sync endpoint's.
async fn enroll_handler(State(state): State<AppState>, body: Bytes) -> Response {
    let now = crate::now();
    let result = state
        .with_store(move |store, info| crate::enroll::enroll(store, info, &body, now))
        .await;
    match result {
        Ok(enrolled) => {
            // The new directory entry goes up to the district soon.
            state.nudge();
            Json(enrolled).into_response()
        }
        Err(e) => SyncFailure(e).into_response(),
    }
}

async fn unlabelled(mut response: Response) -> Response {
    response.headers_mut().remove(CONTENT_TYPE);
    response
}

/// Longest a TLS handshake may take (a GPRS link needs a few seconds at worst); it also
/// bounds how long a connection still in its handshake holds up a graceful shutdown.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Serve `router` on `listener` (HTTP/1.1) until `shutdown` resolves, then stop accepting and
/// wait for the connections open then to finish their requests. As `axum::serve`, but
/// without the `date` header, which it cannot turn off and no client of ours reads.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()>,
) {
    serve_with(listener, router, None, shutdown).await;
}

/// As [`serve`], over TLS (rustls): each connection's handshake runs in its own task, so a
/// slow one holds up no other.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    router: Router,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    serve_with(listener, router, Some(acceptor), shutdown).await;
}

async fn serve_with(
    listener: tokio::net::TcpListener,
    router: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.auto_date_header(false);
    let connections = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(Extension(ConnectInfo(peer)).layer(router.clone()));
        let Some(acceptor) = &tls else {
            let connection =
                connections.watch(http.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            });
            continue;
        };
        let handshake = acceptor.accept(stream);
        let (watcher, http) = (connections.watcher(), http.clone());
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!("TLS handshake timed out");
                    return;
                }
            };
            let connection = watcher.watch(http.serve_connection(TokioIo::new(stream), service));
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.shutdown().await;
}

/// A failed accept: a connection that went away before it was accepted is nobody's
/// problem; anything else (e.g. out of file descriptors) is logged and waited out for a
/// second, as axum and hyper do.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

fn api_router() -> Router<AppState> {
    Router::new()
        .route("/api/login", post(login_handler))
        .route("/api/tickets", get(list_handler))
        .route("/api/tickets/{number}", get(view_handler))
        .route("/api/tickets/{number}/events", post(append_handler))
        .route("/api/tickets/{number}/unmask", post(unmask_handler))
        .route("/api/upstream/sync", post(upstream_handler))
        .layer(DefaultBodyLimit::max(MAX_JSON_BYTES))
}

/// Errors of the sync endpoint: short plain text, UTF-8 (the tablet shows it).
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
pub(crate) fn classify(e: &Error) -> (StatusCode, String) {
    let status = match e {
        Error::BadRequest(_) => StatusCode::BAD_REQUEST,
        Error::StaleCounter => StatusCode::CONFLICT,
        Error::Unauthorized | Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        Error::Revoked(_) => StatusCode::GONE,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Throttled => StatusCode::TOO_MANY_REQUESTS,
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

async fn sync_handler(State(state): State<AppState>, body: Bytes) -> Response {
    crate::fault::point("sync-received");
    let now = crate::now();
    let result = state
        .with_store(move |store, info| sync::handle(store, info, &body, now))
        .await;
    crate::fault::point("sync-before-response");
    match result {
        Ok(handled) => {
            if handled.stored {
                state.nudge();
            }
            handled.body.into_response()
        }
        Err(e) => SyncFailure(e).into_response(),
    }
}

/// The staff API's caller: a live session named by `Authorization: Bearer TOKEN` (a token
/// from `POST /api/login`). The API takes no cookie, so a page elsewhere cannot make a
/// signed-in browser call it.
impl FromRequestParts<AppState> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_owned())
            .ok_or(ApiError(Error::Unauthorized))?;
        let now = crate::now();
        state
            .with_store(move |store, _| accounts::session(store, &token, now))
            .await?
            .ok_or(ApiError(Error::Unauthorized))
    }
}

/// Refuse an account that neither handles nor reads tickets.
fn sees_tickets(who: &SignedIn) -> Result<(), ApiError> {
    if who.account.role.sees_tickets() {
        Ok(())
    } else {
        Err(Error::Forbidden("本账号不办理办件".into()).into())
    }
}

#[derive(serde::Deserialize)]
struct LoginRequest {
    login: String,
    password: String,
}

/// `POST /api/login` `{"login", "password"}` → `{"token", "expires_in", "account"}`.
async fn login_handler(
    State(state): State<AppState>,
    peer: PeerIp,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: LoginRequest = serde_json::from_slice(&body)
        .map_err(|_| Error::BadRequest("请求须为 {\"login\": …, \"password\": …}".into()))?;
    let (token, signed_in) = state.sign_in(&req.login, req.password, peer).await?;
    Ok(Json(serde_json::json!({
        "token": token,
        "expires_in": accounts::SESSION_HOURS * 3600,
        "account": signed_in.account,
    }))
    .into_response())
}

async fn append_handler(
    State(state): State<AppState>,
    who: SignedIn,
    Path(number): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let staff = Staff::from_account(&who.account)
        .ok_or_else(|| Error::Forbidden("本账号不能办理办件".into()))?;
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
        .with_store(move |store, info| staff::append(store, info, &number, &staff, &draft, now))
        .await?;
    state.nudge();
    Ok(Json(staff::masked(view)).into_response())
}

/// Sync with the district now (township staff; the console's 立即同步).
async fn upstream_handler(
    State(state): State<AppState>,
    who: SignedIn,
) -> Result<Response, ApiError> {
    if who.account.role.event_role() != Some(Role::Township) {
        return Err(Error::Forbidden("只有乡镇中心工作人员可以发起同步".into()).into());
    }
    let report = state.sync_upward().await?;
    Ok(Json(report).into_response())
}

async fn view_handler(
    State(state): State<AppState>,
    who: SignedIn,
    Path(number): Path<String>,
) -> Result<Response, ApiError> {
    sees_tickets(&who)?;
    let now = crate::now();
    let view = state
        .with_store(move |store, _| staff::view(store, &who.account, &number, now))
        .await?;
    Ok(Json(staff::masked(view)).into_response())
}

#[derive(serde::Deserialize)]
struct UnmaskRequest {
    reason: String,
}

/// `POST /api/tickets/{n}/unmask` `{"reason"}`: the ticket with its applicant in full, the
/// viewing recorded in the audit log with its reason (as the console's 查看完整个人信息).
async fn unmask_handler(
    State(state): State<AppState>,
    who: SignedIn,
    Path(number): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    sees_tickets(&who)?;
    let req: UnmaskRequest = serde_json::from_slice(&body)
        .map_err(|_| Error::BadRequest("请求须为 {\"reason\": …}".into()))?;
    let now = crate::now();
    let view = state
        .with_store(move |store, _| staff::unmask(store, &who.account, &number, &req.reason, now))
        .await?;
    Ok(Json(view).into_response())
}

/// `GET /api/tickets?q=&status=&item=&light=&point=&from=&to=&review=1&after=`: a page of
/// the tickets the caller may see, newest first (see [`crate::index::Search`]).
async fn list_handler(
    State(state): State<AppState>,
    who: SignedIn,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    sees_tickets(&who)?;
    let fields: Vec<(String, String)> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let search = crate::index::Search::from_fields(&fields);
    let page = state
        .with_store(move |store, _| staff::list(store, &who.account, &search))
        .await?;
    Ok(Json(page).into_response())
}

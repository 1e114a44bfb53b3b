//! The mirror's HTTP side: git smart HTTP, read-only, through git's own
//! `upload-pack --stateless-rpc` (protocol v0, v1 and v2, gzip request bodies), plus
//! `/healthz`, `/readyz`, `/status`, `/metrics` and `POST /hook`.
//!
//! Limits, so that no client can exhaust the host: at most [`MAX_CONNECTIONS`] connections
//! ([`MAX_PER_CLIENT`] from one address) and [`MAX_UPLOAD_PACKS`] upload-packs at once (others
//! wait up to [`SLOT_WAIT`], then get 503); request bodies, streamed into upload-pack, up to
//! [`MAX_REQUEST`] after decompression; request headers within [`HEADER_TIMEOUT`], bodies
//! within [`BODY_TIMEOUT`]; a client that stops reading a response for [`WRITE_STALL`] is
//! disconnected, which ends its upload-pack.

use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::cycle::Trigger;
use crate::layout::Layout;
use crate::status::Shared;
use crate::webhook::{self, Credentials, Secret};
use crate::{Config, MirrorError};

/// Path names the mirror answers itself, which `--name` cannot take.
pub const RESERVED: &[&str] = &["healthz", "readyz", "status", "metrics", "hook"];

/// Connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 512;
/// Connections one client address may hold at once; more are closed at once, so that one
/// client cannot take every connection (and with them the probes' way in).
pub const MAX_PER_CLIENT: usize = 128;
/// `git upload-pack` processes at once (git daemon's default `--max-connections` is 32).
pub const MAX_UPLOAD_PACKS: usize = 32;
/// Upload-packs one client address may run at once: half, so that one client holding its
/// slots (a slow reader, say) leaves the other half to everyone else.
pub const MAX_UPLOAD_PACKS_PER_CLIENT: usize = 16;
/// The longest one upload-pack response may take, whatever the client's pace: a client that
/// reads just fast enough to dodge [`WRITE_STALL`] still gives its slot back.
pub const UPLOAD_PACK_DEADLINE: Duration = Duration::from_secs(15 * 60);
/// How long a request waits for an upload-pack slot before a 503.
pub const SLOT_WAIT: Duration = Duration::from_secs(60);
/// The largest upload-pack request body, after gzip decompression.
pub const MAX_REQUEST: usize = 16 * 1024 * 1024;
/// The time a client has to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// The time a client has to send a request's body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a response may wait for the client to read before the connection is closed.
pub const WRITE_STALL: Duration = Duration::from_secs(120);
/// How long in-flight requests get to finish at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What every handler shares.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    clients: std::sync::Mutex<HashMap<std::net::IpAddr, Arc<Semaphore>>>,
    shared: Arc<Shared>,
    name: String,
    served: PathBuf,
    slots: Arc<Semaphore>,
    trigger: Trigger,
    secret: Option<Secret>,
}

impl App {
    /// The handlers' state.
    pub fn new(config: &Config, layout: &Layout, shared: Arc<Shared>, trigger: Trigger) -> App {
        App {
            inner: Arc::new(Inner {
                clients: std::sync::Mutex::new(HashMap::new()),
                shared,
                name: config.name.clone(),
                served: layout.served.clone(),
                slots: Arc::new(Semaphore::new(MAX_UPLOAD_PACKS)),
                trigger,
                secret: config.webhook_secret.clone(),
            }),
        }
    }

    /// One of `ip`'s [`MAX_UPLOAD_PACKS_PER_CLIENT`] upload-pack slots, waiting up to
    /// [`SLOT_WAIT`].
    async fn client_slot(&self, ip: std::net::IpAddr) -> Option<ClientSlot> {
        let semaphore = {
            let mut map = self
                .inner
                .clients
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            map.entry(ip)
                .or_insert_with(|| Arc::new(Semaphore::new(MAX_UPLOAD_PACKS_PER_CLIENT)))
                .clone()
        };
        let permit = tokio::time::timeout(SLOT_WAIT, semaphore.acquire_owned())
            .await
            .ok()?
            .ok()?;
        Some(ClientSlot {
            permit: Some(permit),
            app: self.clone(),
            ip,
        })
    }

    /// The routes.
    pub fn router(self) -> Router {
        let name = self.inner.name.clone();
        Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/status", get(status))
            .route("/metrics", get(metrics))
            .route("/hook", post(hook))
            .route(&format!("/{name}/info/refs"), get(info_refs))
            .route(&format!("/{name}/git-upload-pack"), post(upload_pack))
            .route(&format!("/{name}/git-receive-pack"), post(receive_pack))
            .fallback(not_found)
            .with_state(self)
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then gives in-flight requests
/// [`SHUTDOWN_GRACE`] to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), MirrorError> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let router = app.router();
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let clients: Arc<std::sync::Mutex<HashMap<std::net::IpAddr, usize>>> = Arc::default();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            p = connections.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, typically: wait a little rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some(client) = PerClient::admit(&clients, peer.ip()) else {
            tracing::warn!(peer = %peer, "connection refused: the client already holds {MAX_PER_CLIENT}");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let ip = peer.ip();
        let service =
            hyper_util::service::TowerToHyperService::new(tower::ServiceExt::map_request(
                router.clone(),
                move |mut request: axum::http::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(Client(ip));
                    request
                },
            ));
        let mut stop = stop_rx.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let _client = client;
            let io = TokioIo::new(Stalled::new(stream, WRITE_STALL));
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(64 * 1024);
            let conn = builder.serve_connection(io, service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(peer = %peer, error = %e, "connection ended");
                    }
                }
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
        // Reap finished connection tasks as we go.
        while tasks.try_join_next().is_some() {}
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

/// One connection of a client address, counted while it lives.
struct PerClient {
    clients: Arc<std::sync::Mutex<HashMap<std::net::IpAddr, usize>>>,
    ip: std::net::IpAddr,
}

impl PerClient {
    fn admit(
        clients: &Arc<std::sync::Mutex<HashMap<std::net::IpAddr, usize>>>,
        ip: std::net::IpAddr,
    ) -> Option<PerClient> {
        let mut map = clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = map.entry(ip).or_insert(0);
        if *count >= MAX_PER_CLIENT {
            return None;
        }
        *count += 1;
        Some(PerClient {
            clients: clients.clone(),
            ip,
        })
    }
}

impl Drop for PerClient {
    fn drop(&mut self) {
        let mut map = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = map.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

// ---- endpoints ------------------------------------------------------------------------------

async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n".to_owned())
}

async fn readyz(State(app): State<App>) -> Response {
    let status = app.inner.shared.status();
    if status.ready() {
        text(StatusCode::OK, "ready\n".to_owned())
    } else {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: no verified revision served yet for {}; see /status\n",
                status.waiting().join(", ")
            ),
        )
    }
}

async fn status(State(app): State<App>) -> Response {
    let json = app.inner.shared.status().to_json(jiff::Timestamp::now());
    let mut body = serde_json::to_string_pretty(&json).unwrap_or_default();
    body.push('\n');
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    no_cache(&mut r);
    r
}

async fn metrics(State(app): State<App>, headers: HeaderMap) -> Response {
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let status = app.inner.shared.status();
    let body = app
        .inner
        .shared
        .metrics
        .encode(&status, jiff::Timestamp::now(), openmetrics);
    let kind = if openmetrics {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        "text/plain; version=0.0.4; charset=utf-8"
    };
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    r
}

async fn hook(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    let answer = authenticate(&app, &headers, body).await;
    let code = match &answer {
        Ok(()) => StatusCode::ACCEPTED,
        Err((code, _)) => *code,
    };
    app.inner.shared.metrics.webhook(code.as_u16());
    match answer {
        Ok(()) => {
            let fresh = app.inner.trigger.now();
            tracing::debug!(coalesced = !fresh, "webhook: cycle requested");
            text(
                StatusCode::ACCEPTED,
                if fresh {
                    "cycle requested\n"
                } else {
                    "cycle already requested\n"
                }
                .to_owned(),
            )
        }
        Err((code, message)) => {
            tracing::warn!(code = code.as_u16(), "webhook refused: {}", message.trim());
            text(code, message)
        }
    }
}

/// Whether a webhook request may trigger a cycle: anyone may without `--webhook-secret`.
async fn authenticate(
    app: &App,
    headers: &HeaderMap,
    body: Body,
) -> Result<(), (StatusCode, String)> {
    let Some(secret) = &app.inner.secret else {
        return Ok(());
    };
    let value = |name: &str| headers.get(name).map(|v| v.as_bytes().to_vec());
    let credentials = Credentials {
        hub: value("x-hub-signature-256"),
        gitea: value("x-gitea-signature").or_else(|| value("x-forgejo-signature")),
        gitlab: value("x-gitlab-token"),
    };
    let unauthorized = || {
        (
            StatusCode::UNAUTHORIZED,
            "webhook signature missing or wrong: send X-Hub-Signature-256 (GitHub), X-Gitea-Signature (Gitea, Forgejo) or X-Gitlab-Token (GitLab) made with the secret given to --webhook-secret\n".to_owned(),
        )
    };
    if credentials.verify(secret, None) {
        return Ok(());
    }
    if !credentials.signed() {
        return Err(unauthorized());
    }
    let mut hasher = secret.hasher();
    let mut stream = body.into_data_stream();
    let mut read = 0usize;
    let hashing = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                (
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the request body: {e}\n"),
                )
            })?;
            read += chunk.len();
            if read > webhook::MAX_BODY {
                return Err((
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("webhook body over {} bytes\n", webhook::MAX_BODY),
                ));
            }
            hasher.update(&chunk);
        }
        Ok(())
    };
    tokio::time::timeout(BODY_TIMEOUT, hashing)
        .await
        .map_err(|_| {
            (
                StatusCode::REQUEST_TIMEOUT,
                "webhook body not received in time\n".to_owned(),
            )
        })??;
    if credentials.verify(secret, Some(hasher)) {
        Ok(())
    } else {
        Err(unauthorized())
    }
}

async fn info_refs(
    State(app): State<App>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let answer = match query.get("service").map(String::as_str) {
        Some("git-upload-pack") => advertise(&app, &headers).await,
        Some("git-receive-pack") => read_only(),
        _ => text(
            StatusCode::FORBIDDEN,
            "this mirror serves git's smart HTTP protocol only; use a git client (git clone <URL>)\n"
                .to_owned(),
        ),
    };
    app.inner
        .shared
        .metrics
        .git_request("info_refs", answer.status().as_u16());
    answer
}

async fn receive_pack(State(app): State<App>) -> Response {
    app.inner.shared.metrics.git_request("receive_pack", 403);
    read_only()
}

fn read_only() -> Response {
    text(
        StatusCode::FORBIDDEN,
        "this is a read-only tally mirror: it serves verified commits only; push to the upstream repository, whose hooks judge the push\n"
            .to_owned(),
    )
}

async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "not found\n".to_owned())
}

/// `GET /<name>/info/refs?service=git-upload-pack`.
async fn advertise(app: &App, headers: &HeaderMap) -> Response {
    let protocol = git_protocol(headers);
    let Some(slot) = slot(app).await else {
        return busy();
    };
    let mut cmd = upload_pack_command(protocol.as_deref());
    cmd.arg("--advertise-refs").arg(&app.inner.served);
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    let output = tokio::time::timeout(BODY_TIMEOUT, cmd.output()).await;
    drop(slot);
    let output = match output {
        Ok(Ok(o)) if o.status.success() => o,
        Ok(Ok(o)) => return git_failed(&String::from_utf8_lossy(&o.stderr)),
        Ok(Err(e)) => return git_failed(&e.to_string()),
        Err(_) => return git_failed("timed out"),
    };
    let mut body = Vec::with_capacity(output.stdout.len() + 40);
    // Protocol v2 starts with its own capability advertisement; v0 and v1 with the service
    // line, as git http-backend writes it.
    if protocol_version(protocol.as_deref()) < 2 {
        body.extend_from_slice(b"001e# service=git-upload-pack\n0000");
    }
    body.extend_from_slice(&output.stdout);
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-git-upload-pack-advertisement"),
    );
    no_cache(&mut r);
    r
}

/// `POST /<name>/git-upload-pack`.
async fn upload_pack(
    State(app): State<App>,
    client: Option<axum::Extension<Client>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let client = client.map(|axum::Extension(c)| c);
    let answer = upload_pack_response(&app, client, &headers, body).await;
    app.inner
        .shared
        .metrics
        .git_request("upload_pack", answer.status().as_u16());
    answer
}

async fn upload_pack_response(
    app: &App,
    client: Option<Client>,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    if headers.get(header::CONTENT_TYPE).map(HeaderValue::as_bytes)
        != Some(b"application/x-git-upload-pack-request")
    {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type: application/x-git-upload-pack-request\n".to_owned(),
        );
    }
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .map(HeaderValue::as_bytes)
    {
        None | Some(b"identity") => false,
        Some(b"gzip" | b"x-gzip") => true,
        Some(_) => {
            return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Encoding must be gzip or none\n".to_owned(),
            );
        }
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_REQUEST as u64) {
        return text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body over {MAX_REQUEST} bytes\n"),
        );
    }
    let protocol = git_protocol(headers);
    // The slots first (the client's, then the mirror's): the body is read only by a request
    // that holds them, so at most MAX_UPLOAD_PACKS bodies are in flight, each through
    // fixed-size buffers.
    let client_slot = match client {
        Some(c) => match app.client_slot(c.0).await {
            Some(s) => Some(s),
            None => return busy(),
        },
        None => None,
    };
    let Some(slot) = slot(app).await else {
        return busy();
    };
    let mut cmd = upload_pack_command(protocol.as_deref());
    cmd.arg(&app.inner.served)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return git_failed(&e.to_string()),
    };
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return git_failed("upload-pack has no pipes");
    };
    tokio::spawn(feed(body, gzip, stdin));
    tokio::spawn(async move {
        let mut text = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(
            &mut tokio::io::AsyncReadExt::take(stderr, 64 * 1024),
            &mut text,
        )
        .await;
        if !text.is_empty() {
            tracing::debug!("git upload-pack: {}", String::from_utf8_lossy(&text).trim());
        }
    });
    app.inner.shared.metrics.upload_pack(1);
    let guard = UploadPack {
        _slot: slot,
        _client_slot: client_slot,
        _child: child,
        shared: app.inner.shared.clone(),
    };
    let stream = tokio_util::io::ReaderStream::with_capacity(stdout, 64 * 1024)
        .take_until(tokio::time::sleep(UPLOAD_PACK_DEADLINE))
        .map(move |chunk| {
            // The guard lives as long as the response body: dropping it (the client went away,
            // or the body ended) kills upload-pack and frees the slot.
            let _ = &guard;
            chunk
        });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-git-upload-pack-result"),
    );
    no_cache(&mut r);
    r
}

/// A client address, as the connection it came on says.
#[derive(Debug, Clone, Copy)]
struct Client(std::net::IpAddr);

/// One of a client's upload-pack slots; the client's entry goes once it holds none.
struct ClientSlot {
    permit: Option<OwnedSemaphorePermit>,
    app: App,
    ip: std::net::IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut map = self
            .app
            .inner
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map
            .get(&self.ip)
            .is_some_and(|s| s.available_permits() == MAX_UPLOAD_PACKS_PER_CLIENT)
        {
            map.remove(&self.ip);
        }
    }
}

/// The upload-pack slot and process of one response.
struct UploadPack {
    _slot: OwnedSemaphorePermit,
    _client_slot: Option<ClientSlot>,
    _child: tokio::process::Child,
    shared: Arc<Shared>,
}

impl Drop for UploadPack {
    fn drop(&mut self) {
        self.shared.metrics.upload_pack(-1);
    }
}

/// Streams a request body into upload-pack's stdin, gunzipped on the way if the client
/// compressed it (git does for large negotiations): at most [`MAX_REQUEST`] bytes after
/// decompression, within [`BODY_TIMEOUT`]. A body that breaks a limit, or does not
/// decompress, is cut off: upload-pack reads a truncated request and ends the response with
/// an error, which is all a client sending one deserves.
async fn feed(body: Body, gzip: bool, mut stdin: tokio::process::ChildStdin) {
    let stream = body
        .into_data_stream()
        .map(|chunk| chunk.map_err(std::io::Error::other));
    let reader = tokio_util::io::StreamReader::new(stream);
    let limit = MAX_REQUEST as u64 + 1;
    let mut source: Pin<Box<dyn AsyncRead + Send>> = if gzip {
        let decoder = async_compression::tokio::bufread::GzipDecoder::new(reader);
        Box::pin(tokio::io::AsyncReadExt::take(decoder, limit))
    } else {
        Box::pin(tokio::io::AsyncReadExt::take(reader, limit))
    };
    match tokio::time::timeout(BODY_TIMEOUT, tokio::io::copy(&mut source, &mut stdin)).await {
        Ok(Ok(n)) if n > MAX_REQUEST as u64 => {
            tracing::warn!("upload-pack request over {MAX_REQUEST} bytes: cut off");
        }
        Ok(Ok(_)) => {
            let _ = stdin.shutdown().await;
        }
        // upload-pack may stop reading early (an error it reports on stdout).
        Ok(Err(e)) => tracing::debug!(error = %e, "upload-pack request not read whole"),
        Err(_) => tracing::warn!("upload-pack request body not received in time: cut off"),
    }
}

fn upload_pack_command(protocol: Option<&str>) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("git");
    cmd.args(["upload-pack", "--stateless-rpc"])
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_OBJECT_DIRECTORY")
        .env_remove("GIT_ALTERNATE_OBJECT_DIRECTORIES")
        .env_remove("GIT_PROTOCOL")
        .env("GIT_NO_REPLACE_OBJECTS", "1");
    if let Some(p) = protocol {
        cmd.env("GIT_PROTOCOL", p);
    }
    cmd
}

/// The client's `Git-Protocol` header, if it is a well-formed one (`version=2`,
/// `version=1:key=value`); anything else is ignored, as protocol v0.
fn git_protocol(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("git-protocol")?.to_str().ok()?;
    let ok = !value.is_empty()
        && value.len() <= 256
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"=:._-".contains(&b));
    ok.then(|| value.to_owned())
}

/// The protocol version git would use for `GIT_PROTOCOL`: the highest `version=` given.
fn protocol_version(protocol: Option<&str>) -> u32 {
    protocol
        .unwrap_or("")
        .split(':')
        .filter_map(|item| item.strip_prefix("version="))
        .filter_map(|v| v.parse::<u32>().ok())
        .max()
        .unwrap_or(0)
}

async fn slot(app: &App) -> Option<OwnedSemaphorePermit> {
    tokio::time::timeout(SLOT_WAIT, app.inner.slots.clone().acquire_owned())
        .await
        .ok()?
        .ok()
}

fn busy() -> Response {
    let mut r = text(
        StatusCode::SERVICE_UNAVAILABLE,
        "too many clients at once; retry shortly\n".to_owned(),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

fn git_failed(message: &str) -> Response {
    tracing::error!("git upload-pack failed: {}", message.trim());
    text(
        StatusCode::INTERNAL_SERVER_ERROR,
        "git upload-pack failed on the mirror; see its log\n".to_owned(),
    )
}

fn text(code: StatusCode, body: String) -> Response {
    let mut r = (code, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn no_cache(r: &mut Response) {
    let h = r.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, max-age=0, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::EXPIRES,
        HeaderValue::from_static("Fri, 01 Jan 1980 00:00:00 GMT"),
    );
}

// ---- a write deadline for connections -------------------------------------------------------

/// A connection that fails a write the client has not taken for `stall`: a client that stops
/// reading cannot hold an upload-pack (and its slot) forever.
struct Stalled<T> {
    io: T,
    stall: Duration,
    waiting: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> Stalled<T> {
    fn new(io: T, stall: Duration) -> Stalled<T> {
        Stalled {
            io,
            stall,
            waiting: None,
        }
    }

    fn pending<R>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<R>> {
        let stall = self.stall;
        let sleep = self
            .waiting
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.waiting = None;
                Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the client stopped reading",
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Stalled<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Stalled<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write(cx, buf) {
            Poll::Ready(r) => {
                self.waiting = None;
                Poll::Ready(r)
            }
            Poll::Pending => self.pending(cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                self.waiting = None;
                Poll::Ready(r)
            }
            Poll::Pending => self.pending(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match Pin::new(&mut self.io).poll_flush(cx) {
            Poll::Ready(r) => {
                self.waiting = None;
                Poll::Ready(r)
            }
            Poll::Pending => self.pending(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_protocol_version_is_the_highest_asked_for() {
        assert_eq!(protocol_version(None), 0);
        assert_eq!(protocol_version(Some("version=2")), 2);
        assert_eq!(protocol_version(Some("version=1:version=2")), 2);
        assert_eq!(protocol_version(Some("object-format=sha1:version=1")), 1);
        assert_eq!(protocol_version(Some("version=x")), 0);
    }

    #[test]
    fn only_well_formed_protocol_headers_reach_git() {
        let mut h = HeaderMap::new();
        h.insert("git-protocol", HeaderValue::from_static("version=2"));
        assert_eq!(git_protocol(&h).as_deref(), Some("version=2"));
        h.insert(
            "git-protocol",
            HeaderValue::from_static("version=2 ;rm -rf"),
        );
        assert_eq!(git_protocol(&h), None);
    }
}

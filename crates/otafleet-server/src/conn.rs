//! Connections: accepting them, timing out the ones that send nothing, and capping how many are
//! open, so that a crowd of idle sockets can neither exhaust the open-files limit nor lock
//! devices and the UI out.
//!
//! - **Header-read timeout** ([`ConnLimits::header_timeout`]): hyper's HTTP/1 timer. A
//!   connection must deliver a complete request head within it, counted from when the server
//!   starts waiting for one: right after accept, and again after each response on a keep-alive
//!   connection. So it is also the keep-alive idle timeout. It never runs while a request is
//!   being answered: a long download to a slow device and the event stream are not cut.
//! - **Connection cap** ([`ConnLimits::max_connections`]): when a new connection would exceed it,
//!   the oldest *idle* connection (no request in flight: it has sent nothing yet, or sits
//!   between requests) is closed to make room, so a crowd of idle sockets cannot keep a device's
//!   fresh connection out. When every connection is busy answering a request, the new one gets
//!   a minimal `503` and is closed at once, instead of waiting in the accept queue.
//! - **Accept errors**: `EMFILE`/`ENFILE` (out of file descriptors) close the oldest idle
//!   connection and back off briefly; the loop keeps going. Errors about the one connection
//!   (reset before accept) are skipped.
//! - **Open-files limit**: [`raise_open_files_limit`] lifts the soft limit to the hard one; the
//!   default cap ([`default_max_connections`]) is derived from the result, leaving room for the
//!   database, blob files, the folder watcher and mDNS.
//!
//! Only HTTP/1.x is spoken (what ESP devices and browsers use over plain HTTP).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tower::Service;

use crate::blob_cache::send::SendfileStream;

/// File descriptors kept free of connections by the default cap: the database and its WAL
/// (one set per pooled connection), blob files held open by the image cache, images being
/// streamed from disk, the folder watcher, mDNS sockets, the runtime's own descriptors.
pub const RESERVED_FDS: u64 = 256;

/// The default cap never goes above this, even with a huge open-files limit: each idle
/// connection costs memory too.
pub const MAX_DEFAULT_CONNECTIONS: usize = 16_384;

/// Default header-read (and keep-alive idle) timeout.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(15);

/// How many connections beyond the cap may be open while the ones told to close finish closing
/// (taken from [`RESERVED_FDS`]).
const CLOSING_SLACK: usize = 32;

/// How long the accept loop rests after running out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Limits on connections (module docs).
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// A connection that does not deliver a complete request head within this long after the
    /// server starts waiting for one is closed.
    pub header_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            max_connections: default_max_connections(),
        }
    }
}

/// The open-files limit as (soft, hard); `None` where it cannot be read (not Unix).
pub fn open_files_limit() -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `lim` is a valid, exclusively borrowed rlimit.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            return None;
        }
        #[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux, not on every Unix
        Some((lim.rlim_cur as u64, lim.rlim_max as u64))
    }
    #[cfg(not(unix))]
    None
}

/// Raise the open-files soft limit to the hard limit; returns (soft before, soft after, hard).
/// Idle sockets are cheap for the kernel, and the common default soft limit of 1024 is far too
/// low for a server that devices and browsers keep connections open to.
pub fn raise_open_files_limit() -> io::Result<(u64, u64, u64)> {
    #[cfg(unix)]
    {
        let (soft, hard) = open_files_limit().ok_or_else(io::Error::last_os_error)?;
        // macOS refuses RLIM_INFINITY for RLIMIT_NOFILE; OPEN_MAX is its real ceiling.
        #[cfg(target_os = "macos")]
        let hard = hard.min(libc::OPEN_MAX as u64);
        if soft >= hard {
            return Ok((soft, soft, hard));
        }
        let lim = libc::rlimit {
            rlim_cur: hard as libc::rlim_t,
            rlim_max: hard as libc::rlim_t,
        };
        // SAFETY: `lim` is a valid rlimit; raising the soft limit up to the hard one is allowed.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((soft, hard, hard))
    }
    #[cfg(not(unix))]
    Err(io::Error::other("no open-files limit on this system"))
}

/// The cap derived from the current open-files soft limit: what is left after
/// [`RESERVED_FDS`], at least 32, at most [`MAX_DEFAULT_CONNECTIONS`].
pub fn default_max_connections() -> usize {
    match open_files_limit() {
        Some((soft, _)) => {
            (soft.saturating_sub(RESERVED_FDS) as usize).clamp(32, MAX_DEFAULT_CONNECTIONS)
        }
        None => 1024,
    }
}

/// Serve `router` on `listener` until `stop` is cancelled, then let requests in flight finish.
pub(crate) async fn run(
    listener: TcpListener,
    router: crate::orgs::OrgRouter,
    limits: ConnLimits,
    tls: Option<Arc<crate::tls::Tls>>,
    stop: CancellationToken,
) {
    let open = Arc::new(Registry::default());
    let tracker = tokio_util::task::TaskTracker::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let max = limits.max_connections.max(1);
    let mut next_id = 0u64;
    let mut emfile_logged = false;
    'accept: loop {
        // Connections told to close go on their own tasks; under a flood the accept loop must
        // not run ahead of them by more than a few, or the descriptors run out after all.
        while open.len() >= max + CLOSING_SLACK {
            tokio::select! {
                _ = open.closed.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
                _ = stop.cancelled() => break 'accept,
            }
        }
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.cancelled() => break,
        };
        let (tcp, addr) = match accepted {
            Ok(c) => {
                emfile_logged = false;
                c
            }
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of descriptors (or memory): make room and rest a moment instead of
                // spinning on an error that will not go away by itself.
                if !emfile_logged {
                    tracing::warn!(error = %e, open = open.len(), "accept failed; closing an idle connection and backing off");
                    emfile_logged = true;
                }
                open.evict_oldest_idle();
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        if open.len() >= max && !open.evict_oldest_idle() {
            tracing::warn!(%addr, open = open.len(), max, "connection refused: every connection is busy (--max-connections)");
            refuse(tcp);
            continue;
        }
        // TCP_NODELAY: without it a download over a kept-alive connection stalls ~40 ms in
        // about one response in twelve: Nagle holds the response's last partial segment until
        // the client has ACKed everything in flight, and the client delays that ACK (Linux:
        // 40 ms at least) while it waits for the rest of the response.
        // Measured with the option off: p99 44 ms per 1.5 MB response at c1, 43 ms per 64 KiB
        // range (ESP-IDF partial download); with it, no response over 2 ms (BENCHMARKS.md,
        // "Downloads over kept-alive connections"). Responses with image bytes are corked
        // while they are written instead (`blob_cache::send`).
        let _ = tcp.set_nodelay(true);
        next_id += 1;
        let slot = open.insert(next_id);
        let conn = Conn {
            router: router.clone(),
            addr,
            slot,
            stop: stop.clone(),
            open: open.clone(),
            id: next_id,
        };
        match &tls {
            // Plain HTTP only: served at once, as always.
            None => {
                let svc = conn.service(Transport::Plain);
                let io = TokioIo::new(SendfileStream::new(tcp));
                let fut = http.serve_connection(io, svc);
                tracker.spawn(conn.drive(fut));
            }
            Some(tls) => {
                let (tls, http) = (tls.clone(), http.clone());
                let timeout = limits.header_timeout;
                tracker.spawn(async move {
                    match conn.sniff(&tcp, timeout).await {
                        Some(Transport::Plain) => {
                            let svc = conn.service(Transport::Plain);
                            let io = TokioIo::new(SendfileStream::new(tcp));
                            let fut = http.serve_connection(io, svc);
                            conn.drive(fut).await;
                        }
                        Some(Transport::Tls) => {
                            let handshake = tls.acceptor().accept(tcp);
                            let stream = tokio::select! {
                                r = tokio::time::timeout(timeout, handshake) => match r {
                                    Ok(Ok(s)) => Some(s),
                                    Ok(Err(e)) => {
                                        tracing::debug!(addr = %conn.addr, error = %e, "TLS handshake failed");
                                        None
                                    }
                                    Err(_) => {
                                        tracing::debug!(addr = %conn.addr, "TLS handshake timed out");
                                        None
                                    }
                                },
                                _ = conn.slot.close.cancelled() => None,
                                _ = conn.stop.cancelled() => None,
                            };
                            match stream {
                                Some(stream) => {
                                    let svc = conn.service(Transport::Tls);
                                    let fut = http.serve_connection(TokioIo::new(stream), svc);
                                    conn.drive(fut).await;
                                }
                                None => conn.open.remove(conn.id),
                            }
                        }
                        None => conn.open.remove(conn.id),
                    }
                });
            }
        }
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

/// Answer a connection over the cap with a minimal 503 (when the socket takes it at once) and
/// close it.
fn refuse(tcp: TcpStream) {
    const BODY: &str = r#"{"error":{"code":"too_many_connections","message":"the server has too many connections open; try again shortly (raise --max-connections if this is normal load)"}}"#;
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tcp.try_write(head.as_bytes());
    // Read what already came of the request (a little, without waiting), so that closing
    // sends FIN, not the reset that unread bytes cause and that can discard the 503 at the
    // client; then close the sending side. Nothing here awaits.
    let mut sink = [0u8; 4096];
    for _ in 0..4 {
        match tcp.try_read(&mut sink) {
            Ok(n) if n > 0 => continue,
            _ => break,
        }
    }
    let mut tcp = tcp;
    let _ = futures_util::FutureExt::now_or_never(tcp.shutdown());
}

/// Errors about one connection that went away before we took it, not about the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// One accepted connection on its way to being served.
struct Conn {
    router: crate::orgs::OrgRouter,
    addr: SocketAddr,
    slot: Arc<Slot>,
    stop: CancellationToken,
    open: Arc<Registry>,
    id: u64,
}

impl Conn {
    fn service(&self, transport: Transport) -> ConnService {
        ConnService {
            router: self.router.clone(),
            addr: self.addr,
            transport,
            slot: self.slot.clone(),
        }
    }

    /// With HTTPS on: wait (at most `timeout`) for the connection's first byte and tell a TLS
    /// handshake (`0x16`, a handshake record) from plain HTTP ([`crate::tls`]). `None`: the
    /// connection closed, sent nothing in time, or must close (evicted, server stopping).
    async fn sniff(&self, tcp: &TcpStream, timeout: Duration) -> Option<Transport> {
        let mut first = [0u8; 1];
        tokio::select! {
            r = tokio::time::timeout(timeout, tcp.peek(&mut first)) => match r {
                Ok(Ok(1)) if first[0] == 0x16 => Some(Transport::Tls),
                Ok(Ok(1)) => Some(Transport::Plain),
                _ => None,
            },
            _ = self.slot.close.cancelled() => None,
            _ = self.stop.cancelled() => None,
        }
    }

    /// Serve the connection until it ends; an idle one closes at once when evicted or when the
    /// server stops, a busy one finishes its request first.
    async fn drive<F, E>(self, conn: F)
    where
        F: Future<Output = Result<(), E>> + GracefulShutdown,
        E: std::fmt::Display,
    {
        let Conn {
            addr,
            slot,
            stop,
            open,
            id,
            ..
        } = self;
        let mut conn = std::pin::pin!(conn);
        let mut closing = false;
        loop {
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%addr, error = %e, "connection ended with an error");
                    }
                    break;
                }
                _ = slot.close.cancelled(), if !closing => {
                    if slot.busy.load(Ordering::Acquire) == 0 {
                        break;
                    }
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                _ = stop.cancelled(), if !closing => {
                    if slot.busy.load(Ordering::Acquire) == 0 {
                        break;
                    }
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
        open.remove(id);
    }
}

/// hyper's HTTP/1 connection over any transport, as [`Conn::drive`] needs it.
trait GracefulShutdown {
    fn graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, S> GracefulShutdown for hyper::server::conn::http1::Connection<I, S>
where
    S: hyper::service::HttpService<Incoming>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S::ResBody: http_body::Body + 'static,
    <S::ResBody as http_body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        hyper::server::conn::http1::Connection::graceful_shutdown(self)
    }
}

/// How a request reached the server, set on every request served over a connection ([`run`]) as
/// a request extension: handlers read it with `Option<Extension<Transport>>` (absent — a test
/// calling the router directly — means [`Transport::Plain`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// Plain HTTP: everything on the wire can be read and changed by anyone on the LAN.
    #[default]
    Plain,
    /// HTTPS (TLS).
    Tls,
}

impl Transport {
    pub fn is_tls(self) -> bool {
        self == Transport::Tls
    }
}

/// One open connection: how many requests it is answering, and how to make it close.
#[derive(Default)]
struct Slot {
    busy: AtomicUsize,
    close: CancellationToken,
}

/// The open connections, oldest first.
#[derive(Default)]
struct Registry {
    slots: Mutex<BTreeMap<u64, Arc<Slot>>>,
    len: AtomicUsize,
    /// Woken when a connection closes.
    closed: tokio::sync::Notify,
}

impl Registry {
    fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    fn insert(&self, id: u64) -> Arc<Slot> {
        let slot = Arc::new(Slot::default());
        let mut slots = self.slots.lock().expect("connection registry");
        slots.insert(id, slot.clone());
        self.len.store(slots.len(), Ordering::Relaxed);
        slot
    }

    fn remove(&self, id: u64) {
        let mut slots = self.slots.lock().expect("connection registry");
        slots.remove(&id);
        self.len.store(slots.len(), Ordering::Relaxed);
        drop(slots);
        self.closed.notify_waiters();
    }

    /// Tell the oldest connection with no request in flight (and not already told) to close;
    /// false when every connection is busy.
    fn evict_oldest_idle(&self) -> bool {
        let slots = self.slots.lock().expect("connection registry");
        let victim = slots
            .values()
            .find(|s| s.busy.load(Ordering::Acquire) == 0 && !s.close.is_cancelled());
        match victim {
            Some(s) => {
                s.close.cancel();
                true
            }
            None => false,
        }
    }
}

/// The router as a hyper service for one connection: adds the peer address (what
/// `ConnectInfo<SocketAddr>` extracts) and counts the request as in flight until its response
/// body has been sent or dropped.
struct ConnService {
    router: crate::orgs::OrgRouter,
    addr: SocketAddr,
    transport: Transport,
    slot: Arc<Slot>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnService {
    type Response = hyper::Response<Tracked>;
    type Error = Infallible;
    type Future = TrackedFuture;

    fn call(&self, mut req: hyper::Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(ConnectInfo(self.addr));
        req.extensions_mut().insert(self.transport);
        let busy = Busy::new(self.slot.clone());
        let mut router = self.router.clone();
        TrackedFuture {
            inner: router.call(req),
            busy: Some(busy),
        }
    }
}

/// Counts one request as in flight while alive.
struct Busy(Arc<Slot>);

impl Busy {
    fn new(slot: Arc<Slot>) -> Self {
        slot.busy.fetch_add(1, Ordering::AcqRel);
        Self(slot)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

pin_project_lite::pin_project! {
    /// The router's response future, handing the in-flight mark on to the body.
    pub(crate) struct TrackedFuture {
        #[pin]
        inner: crate::orgs::OrgFuture,
        busy: Option<Busy>,
    }
}

impl Future for TrackedFuture {
    type Output = Result<hyper::Response<Tracked>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let res = std::task::ready!(this.inner.poll(cx))?;
        let busy = this.busy.take();
        Poll::Ready(Ok(res.map(|body| Tracked { body, _busy: busy })))
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its request counted as in flight until it is dropped.
    pub(crate) struct Tracked {
        #[pin]
        body: axum::body::Body,
        _busy: Option<Busy>,
    }
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

//! The listeners clients connect to. Each accepted connection is forwarded byte for byte to one of
//! rmqtt's internal loopback listeners, after a PROXY protocol (v1) line that carries the real peer
//! address, so that rmqtt, its hooks and `Authority` see the device's address rather than the
//! forwarder's. TLS is terminated here, with the caller's rustls configuration as it is.
//!
//! Owning the connections also makes stopping simple: each accept loop keeps its connections in a
//! `JoinSet`, and aborting the loop drops them all.

use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// How long a client has to finish the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections one listener holds at most; beyond, new ones are closed at once (a flood must not
/// take every file descriptor the HTTP server needs too).
const MAX_CONNECTIONS: usize = 16_384;

/// Accepts on `listener` and forwards every connection to `internal`, through TLS if `tls`.
pub(crate) async fn serve(
    name: &'static str,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    internal: SocketAddr,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) if connections.len() >= MAX_CONNECTIONS => {
                    tracing::warn!(listener = name, %peer, "MQTT: {MAX_CONNECTIONS} connections open; refusing one more");
                    drop(stream);
                }
                Ok((stream, peer)) => {
                    let tls = tls.clone();
                    connections.spawn(async move {
                        if let Err(e) = forward(stream, peer, tls, internal).await {
                            tracing::debug!(listener = name, %peer, "MQTT connection ended: {e}");
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::warn!(listener = name, "MQTT accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn forward(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    internal: SocketAddr,
) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr()?;
    match tls {
        Some(acceptor) => {
            let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                .await
                .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "timed out")));
            let tls_stream = match handshake {
                Ok(s) => s,
                Err(e) => {
                    // The usual causes are on the device's side; say so where the user looks.
                    tracing::info!(
                        %peer,
                        "MQTT: TLS handshake failed ({e}): a device connecting without TLS, or \
                         not trusting otafleet's certificate authority?"
                    );
                    return Ok(());
                }
            };
            pipe(tls_stream, peer, local, internal).await
        }
        None => pipe(stream, peer, local, internal).await,
    }
}

/// The PROXY protocol v1 line for a TCP connection from `src` to `dst`.
fn proxy_line(src: SocketAddr, dst: SocketAddr) -> String {
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            format!("PROXY TCP4 {s} {d} {} {}\r\n", src.port(), dst.port())
        }
        (s, d) => {
            let v6 = |ip: IpAddr| -> Ipv6Addr {
                match ip {
                    IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                    IpAddr::V6(v6) => v6,
                }
            };
            format!(
                "PROXY TCP6 {} {} {} {}\r\n",
                v6(s),
                v6(d),
                src.port(),
                dst.port()
            )
        }
    }
}

/// Copies both ways until either side is done, then closes both.
async fn pipe<S>(
    outer: S,
    peer: SocketAddr,
    local: SocketAddr,
    internal: SocketAddr,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut inner = TcpStream::connect(internal).await?;
    let _ = inner.set_nodelay(true);
    inner.write_all(proxy_line(peer, local).as_bytes()).await?;
    let (mut outer_r, mut outer_w) = tokio::io::split(outer);
    let (mut inner_r, mut inner_w) = inner.into_split();
    tokio::select! {
        // The client closed: pass on what it sent last (a DISCONNECT, say) and the close.
        r = tokio::io::copy(&mut outer_r, &mut inner_w) => {
            let _ = inner_w.shutdown().await;
            r.map(drop)
        }
        // The broker closed (a refused CONNECT, a kicked session, a keepalive timeout): deliver
        // its last bytes and close the client's connection, TLS close_notify included.
        r = tokio::io::copy(&mut inner_r, &mut outer_w) => {
            let _ = tokio::time::timeout(Duration::from_secs(2), outer_w.shutdown()).await;
            r.map(drop)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_lines() {
        let v4 = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            proxy_line(v4("192.168.1.20:50000"), v4("192.168.1.2:8883")),
            "PROXY TCP4 192.168.1.20 192.168.1.2 50000 8883\r\n"
        );
        assert_eq!(
            proxy_line(v4("[fe80::1]:50000"), v4("0.0.0.0:8883")),
            "PROXY TCP6 fe80::1 ::ffff:0.0.0.0 50000 8883\r\n"
        );
    }
}

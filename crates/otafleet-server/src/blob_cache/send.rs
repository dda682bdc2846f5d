//! Sending cached image bytes without copying them through user space.
//!
//! Why: profiled under `wrk -c64` on a 1.5 MB image, 44 % of the server's CPU time was the
//! kernel copying response bytes from our memory into socket buffers (`_copy_from_iter` →
//! `rep_movs_alternative`), a copy nginx does not make: it hands the kernel page-cache pages
//! with `sendfile(2)`. hyper only writes from memory, but what it writes for a cached image
//! are slices of one [`Bytes`](bytes::Bytes) per image whose file we keep open. So the socket
//! under hyper ([`SendfileStream`], which [`crate::conn`] wraps every accepted socket in) looks at each write: when the
//! bytes to send lie inside such a copy, it calls `sendfile` on the file at the same offset
//! instead. The bytes on the wire are identical either way, so HTTP framing, ranges, byte
//! counting and every other protocol detail stay hyper's and are untouched. Everything else
//! (headers, JSON, images streamed from disk) is written as before. Other systems than Linux
//! always write.
//!
//! **Segments.** Like nginx's `tcp_nopush`, the socket is corked (`TCP_CORK`) from the moment
//! bytes of a cached copy are about to be written (the response head, then the file) until hyper
//! flushes, which it does as soon as it has nothing more to write at once: at the end of the
//! response, or when its body has no frame ready. So the head leaves in the same segment as the
//! first image bytes and the image in full-sized segments, the last partial one at the flush.
//! Without the cork, `MSG_MORE` on the head and the "more to come" sendfile gives the kernel
//! between its 64 KiB steps hold a partial segment only until the next ACK is processed
//! (`TCP_NODELAY` then pushes it): tcpdump showed the head often leaving alone in a 602-byte
//! packet and 53-byte tails after sendfile's 64 KiB steps, ~9.5 small segments per 1.5 MB
//! response against nginx's ~1.6 (BENCHMARKS.md, "Downloads over kept-alive connections"). The
//! cork never outlives a flush, so it cannot delay a response's end; the kernel would send corked
//! bytes after 200 ms anyway.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

#[cfg(target_os = "linux")]
pub(super) use linux::{register, unregister};

/// Bytes sent with `sendfile(2)` since the process started (always 0 off Linux); lets tests
/// see that hyper's writes of cached images do reach the file path.
pub fn sendfile_bytes() -> u64 {
    #[cfg(target_os = "linux")]
    return linux::SENT.load(std::sync::atomic::Ordering::Relaxed);
    #[cfg(not(target_os = "linux"))]
    0
}

/// A TCP connection that sends bytes of cached images with `sendfile(2)` (module docs).
pub struct SendfileStream {
    tcp: TcpStream,
    /// `TCP_CORK` is on (module docs, "Segments").
    corked: bool,
}

impl SendfileStream {
    pub fn new(tcp: TcpStream) -> Self {
        Self { tcp, corked: false }
    }

    /// Lift the cork (pushes what it held); a failure is only logged: the kernel sends corked
    /// bytes after 200 ms in any case.
    fn uncork(&mut self) {
        if self.corked {
            self.corked = false;
            #[cfg(target_os = "linux")]
            if let Err(e) = linux::set_cork(&self.tcp, false) {
                tracing::debug!(error = %e, "TCP_CORK off failed");
            }
        }
    }
}

impl AsyncRead for SendfileStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for SendfileStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        #[cfg(target_os = "linux")]
        {
            let this = &mut *self;
            if let Some(done) = linux::poll_write(&this.tcp, &mut this.corked, cx, bufs) {
                return done;
            }
        }
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.uncork();
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.uncork();
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::fs::File;
    use std::io::{self, IoSlice};
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::{Arc, RwLock};
    use std::task::{ready, Context, Poll};

    use tokio::io::Interest;
    use tokio::net::TcpStream;

    /// A cached copy: its address range and the file it was read from.
    struct Region {
        start: usize,
        end: usize,
        file: Arc<File>,
    }

    /// The live copies (a handful: the cache holds a few images).
    static REGIONS: RwLock<Vec<Region>> = RwLock::new(Vec::new());
    /// `REGIONS.len()`, read without the lock on every write.
    static LIVE: AtomicUsize = AtomicUsize::new(0);
    /// See [`super::sendfile_bytes`].
    pub(super) static SENT: AtomicU64 = AtomicU64::new(0);

    pub fn register(start: usize, len: usize, file: Arc<File>) {
        if len == 0 {
            return;
        }
        let mut r = REGIONS.write().expect("regions lock");
        r.push(Region {
            start,
            end: start + len,
            file,
        });
        LIVE.store(r.len(), Ordering::Release);
    }

    pub fn unregister(start: usize) {
        let mut r = REGIONS.write().expect("regions lock");
        r.retain(|x| x.start != start);
        LIVE.store(r.len(), Ordering::Release);
    }

    /// What to do with one vectored write.
    enum Plan {
        /// Nothing of a cached copy leads: write as usual.
        Write,
        /// Ordinary bytes (response headers) come before bytes of a copy: send just those,
        /// with `MSG_MORE` so that they leave in one packet with the image bytes that follow.
        Head(usize),
        /// Send `len` bytes of `file` from `offset`.
        File {
            file: Arc<File>,
            offset: u64,
            len: usize,
        },
    }

    fn plan(bufs: &[IoSlice<'_>]) -> Plan {
        if LIVE.load(Ordering::Acquire) == 0 {
            return Plan::Write;
        }
        let regions = REGIONS.read().expect("regions lock");
        let find = |b: &[u8]| {
            let (s, e) = (b.as_ptr() as usize, b.as_ptr() as usize + b.len());
            regions.iter().find(|r| r.start <= s && e <= r.end)
        };
        // The first slice that is not empty, and whether it is part of a copy.
        let mut head = false;
        let mut rest = bufs.iter().enumerate().filter(|(_, b)| !b.is_empty());
        let (region, first) = loop {
            let Some((i, b)) = rest.next() else {
                return Plan::Write;
            };
            match find(b) {
                Some(_) if head => return Plan::Head(i),
                Some(r) => break (r, b),
                None => head = true,
            }
        };
        let start = first.as_ptr() as usize;
        let mut end = start + first.len();
        // Slices that continue the same copy go in the same call.
        for (_, b) in rest {
            let s = b.as_ptr() as usize;
            if s != end || s + b.len() > region.end {
                break;
            }
            end += b.len();
        }
        Plan::File {
            file: region.file.clone(),
            offset: (start - region.start) as u64,
            len: end - start,
        }
    }

    /// Turn `TCP_CORK` on or off; off sends what it held at once (the socket has `TCP_NODELAY`).
    pub fn set_cork(tcp: &TcpStream, on: bool) -> io::Result<()> {
        let v: libc::c_int = on.into();
        // SAFETY: the descriptor is open (we hold the stream) and `v` is a valid c_int option.
        let r = unsafe {
            libc::setsockopt(
                tcp.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_CORK,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// `None`: not for us, write as usual.
    pub fn poll_write(
        tcp: &TcpStream,
        corked: &mut bool,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Option<Poll<io::Result<usize>>> {
        let plan = plan(bufs);
        // Cork before the head (or the first image bytes) of a response goes out; the flush
        // that follows the response lifts it (`SendfileStream::poll_flush`).
        if !matches!(plan, Plan::Write) && !*corked {
            match set_cork(tcp, true) {
                Ok(()) => *corked = true,
                Err(e) => tracing::debug!(error = %e, "TCP_CORK on failed"),
            }
        }
        match plan {
            Plan::Write => None,
            Plan::Head(n) => Some(poll_io(tcp, cx, || send_more(tcp, &bufs[..n]))),
            Plan::File { file, offset, len } => {
                match poll_io(tcp, cx, || sendfile(tcp, &file, offset, len)) {
                    // A file system without sendfile: write the bytes instead.
                    Poll::Ready(Err(e))
                        if matches!(
                            e.raw_os_error(),
                            Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
                        ) =>
                    {
                        None
                    }
                    other => Some(other),
                }
            }
        }
    }

    fn poll_io(
        tcp: &TcpStream,
        cx: &mut Context<'_>,
        mut f: impl FnMut() -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(tcp.poll_write_ready(cx))?;
            match tcp.try_io(Interest::WRITABLE, &mut f) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                done => return Poll::Ready(done),
            }
        }
    }

    fn sendfile(tcp: &TcpStream, file: &File, offset: u64, len: usize) -> io::Result<usize> {
        let mut off = offset as libc::off_t;
        // Linux sends at most 0x7ffff000 bytes per call.
        let len = len.min(0x7fff_f000);
        // SAFETY: both descriptors are open for the duration of the call (we hold them), and
        // `off` is a valid, exclusively borrowed offset.
        let n = unsafe { libc::sendfile(tcp.as_raw_fd(), file.as_raw_fd(), &mut off, len) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            SENT.fetch_add(n as u64, Ordering::Relaxed);
            Ok(n as usize)
        }
    }

    fn send_more(tcp: &TcpStream, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        // SAFETY: `IoSlice` is ABI-compatible with `iovec` on Unix (std guarantees it), the
        // slices outlive the call, and an all-zero `msghdr` is a valid empty header.
        let n = unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
            msg.msg_iovlen = bufs.len().min(libc::UIO_MAXIOV as usize) as _;
            libc::sendmsg(tcp.as_raw_fd(), &msg, libc::MSG_MORE | libc::MSG_NOSIGNAL)
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    #[cfg(test)]
    mod tests {
        use std::io::{IoSlice, Write};

        use super::{plan, Plan, REGIONS};

        fn registered(at: usize) -> bool {
            REGIONS.read().unwrap().iter().any(|r| r.start == at)
        }

        /// `TCP_CORK` as the kernel sees it on `tcp`.
        fn cork_of(tcp: &tokio::net::TcpStream) -> bool {
            use std::os::fd::AsRawFd;
            let mut v: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: the descriptor is open and `v`/`len` are valid, exclusively borrowed.
            let r = unsafe {
                libc::getsockopt(
                    tcp.as_raw_fd(),
                    libc::IPPROTO_TCP,
                    libc::TCP_CORK,
                    (&mut v as *mut libc::c_int).cast(),
                    &mut len,
                )
            };
            assert_eq!(r, 0, "getsockopt TCP_CORK");
            v != 0
        }

        /// A response with image bytes is corked while it is written and uncorked by the flush
        /// hyper makes after it, so nothing of it is held back; ordinary writes never cork.
        #[tokio::test]
        async fn the_cork_lasts_from_the_head_to_the_flush() {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};

            let mut file = tempfile::NamedTempFile::new().unwrap();
            let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
            file.write_all(&data).unwrap();
            let bytes = crate::blob_cache::load(file.path().to_path_buf())
                .await
                .unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let (tcp, _) = listener.accept().await.unwrap();
            tcp.set_nodelay(true).unwrap();
            let mut s = super::super::SendfileStream::new(tcp);

            // JSON and other ordinary responses: no cork.
            const JSON: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
            s.write_all(JSON).await.unwrap();
            assert!(!cork_of(&s.tcp));
            s.flush().await.unwrap();

            // Head + image bytes in one vectored write, as hyper queues them.
            let head = b"HTTP/1.1 206 Partial Content\r\ncontent-length: 200000\r\n\r\n";
            let body = bytes.slice(50_000..250_000);
            let reader = tokio::spawn(async move {
                let mut got = vec![0u8; JSON.len() + head.len() + 200_000];
                client.read_exact(&mut got).await.unwrap();
                got
            });
            let mut bufs = [IoSlice::new(head), IoSlice::new(&body)];
            let mut bufs = &mut bufs[..];
            let mut sent_any_image_bytes = false;
            while !bufs.is_empty() {
                let n = s.write_vectored(bufs).await.unwrap();
                assert!(cork_of(&s.tcp), "corked while the response is written");
                IoSlice::advance_slices(&mut bufs, n);
                sent_any_image_bytes = true;
            }
            assert!(sent_any_image_bytes);
            s.flush().await.unwrap();
            assert!(!cork_of(&s.tcp), "the flush lifts the cork");
            let got = reader.await.unwrap();
            assert_eq!(&got[..JSON.len()], JSON);
            assert_eq!(&got[JSON.len()..JSON.len() + head.len()], head);
            assert!(
                got[JSON.len() + head.len()..] == data[50_000..250_000],
                "the bytes differ"
            );
        }

        #[tokio::test]
        async fn writes_of_a_cached_copy_become_sendfile_and_nothing_else_does() {
            let mut file = tempfile::NamedTempFile::new().unwrap();
            let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
            file.write_all(&data).unwrap();
            let bytes = crate::blob_cache::load(file.path().to_path_buf())
                .await
                .unwrap();
            assert_eq!(bytes.as_ref(), data.as_slice());
            let at = bytes.as_ptr() as usize;
            assert!(registered(at));
            let head = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
            let other = data.clone();

            // Ordinary bytes alone, or before the copy: written as usual / sent on their own.
            assert!(matches!(plan(&[IoSlice::new(&other)]), Plan::Write));
            assert!(matches!(
                plan(&[IoSlice::new(&head), IoSlice::new(&bytes[..10])]),
                Plan::Head(1)
            ));
            // Empty slices are not "ordinary bytes before the copy".
            assert!(matches!(
                plan(&[IoSlice::new(&[]), IoSlice::new(&bytes[..10])]),
                Plan::File {
                    offset: 0,
                    len: 10,
                    ..
                }
            ));
            // Contiguous slices of the copy go together; a gap or other bytes end the call.
            assert!(matches!(
                plan(&[
                    IoSlice::new(&bytes[100..200]),
                    IoSlice::new(&bytes[200..50_000]),
                    IoSlice::new(&bytes[60_000..70_000]),
                ]),
                Plan::File {
                    offset: 100,
                    len: 49_900,
                    ..
                }
            ));
            assert!(matches!(
                plan(&[IoSlice::new(&bytes[99_990..]), IoSlice::new(&head)]),
                Plan::File {
                    offset: 99_990,
                    len: 10,
                    ..
                }
            ));
            // Slices keep the copy (and its region) alive; the region goes with the last.
            let part = bytes.slice(50_000..);
            drop(bytes);
            assert!(
                registered(at),
                "a slice keeps the copy (and its region) alive"
            );
            assert!(matches!(
                plan(&[IoSlice::new(&part)]),
                Plan::File {
                    offset: 50_000,
                    len: 50_000,
                    ..
                }
            ));
            drop(part);
            assert!(!registered(at), "the region goes with the last reference");
        }
    }
}

//! The server under test and the clients that talk to it. Every client is given one CA file and
//! nothing else to trust; each returns the HTTP status line it got, or why it refused.
//!
//! The external clients (curl, `openssl s_client`, Python's `ssl`, the mbedTLS program) run
//! either here or inside a network namespace ([`Place`]); the rustls client runs in this
//! process. Every child process has a deadline, so a hung handshake fails the test instead of
//! hanging it.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::netns::Lan;

pub const TOKEN: &str = "tls-test-token";
/// How long one step may take before the test fails (a bound, not a measurement).
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The binary under test: `$OTAFLEET_BIN` when set, else the one cargo built for this test.
pub fn bin() -> PathBuf {
    std::env::var_os("OTAFLEET_BIN")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_otafleet").into())
}

/// Where a process runs: in the test's own network namespace, or inside one of a [`Lan`]'s.
#[derive(Clone, Copy)]
pub enum Place<'a> {
    Here,
    In(&'a Lan, &'a str),
}

impl Place<'_> {
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = match self {
            Place::Here => Command::new(program),
            Place::In(lan, ns) => lan.cmd(ns, program),
        };
        c.stdin(Stdio::null());
        c
    }
}

/// Run `cmd` to completion with `input` on its standard input; killed at the deadline.
pub fn output(mut cmd: Command, input: &[u8]) -> Output {
    let what = format!("{cmd:?}");
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("start {what}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // Written from a thread, so that a child that does not read cannot block us.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = pipe_reader(child.stdout.take().unwrap());
    let err = pipe_reader(child.stderr.take().unwrap());
    let end = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = writer.join();
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn pipe_reader(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// A running `otafleet serve`, killed when dropped (also when a test fails half-way).
pub struct Server {
    child: Child,
    pub port: u16,
    pub data: PathBuf,
    /// The CA fingerprint the second startup line printed; `None` when it printed none.
    pub printed_ca: Option<String>,
    _lines: Receiver<String>,
}

impl Server {
    /// `otafleet serve` at `place` on `listen`, mDNS off, over `data`, with `extra` flags; returns
    /// once it printed its listening line (and, unless `--tls off`, the HTTPS line).
    pub fn start(place: Place, listen: &str, data: &Path, extra: &[&str]) -> Server {
        let mut cmd = place.cmd(bin());
        cmd.args([
            "serve",
            "--no-mdns",
            "--mqtt",
            "off",
            "--listen",
            listen,
            "--admin-token",
            TOKEN,
        ])
        .args(extra)
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start otafleet");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let next = |what: &str| {
            lines
                .recv_timeout(DEADLINE)
                .unwrap_or_else(|_| panic!("waited {DEADLINE:?} for the {what} line"))
        };
        let first = next("listening");
        let addr = first
            .strip_prefix("otafleet listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {first:?}"));
        let port = addr.rsplit(':').next().unwrap().parse().expect("port");
        let printed_ca = if extra.windows(2).any(|w| w == ["--tls", "off"]) {
            None
        } else {
            let second = next("HTTPS");
            assert!(
                second.starts_with(&format!(
                    "otafleet serving HTTPS on the same port: https://{addr}"
                )),
                "unexpected second line: {second:?}"
            );
            second
                .split_once("(CA SHA-256 ")
                .map(|(_, fp)| fp.trim_end_matches(')').to_string())
        };
        Server {
            child,
            port,
            data: data.to_path_buf(),
            printed_ca,
            _lines: lines,
        }
    }

    pub fn ca_file(&self) -> PathBuf {
        self.data.join("tls/ca.pem")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA that did not issue the server's certificate: the one a second server made in its own
/// data directory. Trusting it instead must make every client refuse.
pub fn foreign_ca(dir: &Path) -> PathBuf {
    let other = Server::start(Place::Here, "127.0.0.1:0", dir, &[]);
    let ca = other.ca_file();
    assert!(ca.exists(), "{} missing", ca.display());
    ca
}

fn http_request(host: &str, port: u16, path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {}:{port}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n",
        url_host(host)
    )
}

fn url_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// The first line of an HTTP response.
fn status_line(out: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(out);
    text.lines()
        .find(|l| l.starts_with("HTTP/1.1 "))
        .map(|l| l.trim_end().to_string())
}

/// What a client got: `Ok(status line)` or `Err(why it failed)`.
pub type Got = Result<String, String>;

fn got(client: &str, out: Output) -> Got {
    match (out.status.success(), status_line(&out.stdout)) {
        (true, Some(status)) => Ok(status),
        _ => Err(format!(
            "{client}: {}; stdout: {}; stderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// curl (OpenSSL on Debian) to `https://name:port/path`, trusting `ca` alone, connecting to
/// `host` (`--resolve`, so that any name can be checked against the certificate).
pub fn curl_https(place: Place, host: &str, name: &str, port: u16, ca: &Path, path: &str) -> Got {
    let mut cmd = place.cmd("curl");
    cmd.args(["-sS", "-i", "--noproxy", "*", "--max-time", "20"])
        .arg("--cacert")
        .arg(ca)
        .args(["-H", &format!("Authorization: Bearer {TOKEN}")]);
    if name.parse::<std::net::IpAddr>().is_err() {
        cmd.args(["--resolve", &format!("{name}:{port}:{host}")]);
    }
    cmd.arg(format!("https://{}:{port}{path}", url_host(name)));
    got("curl", output(cmd, b""))
}

/// curl over plain HTTP: (status code, body).
pub fn curl_plain(place: Place, host: &str, port: u16, path: &str) -> (u16, String) {
    let mut cmd = place.cmd("curl");
    cmd.args(["-sS", "--noproxy", "*", "--max-time", "20"])
        .args(["-H", &format!("Authorization: Bearer {TOKEN}")])
        .args(["-w", "\n%{http_code}"])
        .arg(format!("http://{}:{port}{path}", url_host(host)));
    let out = output(cmd, b"");
    assert!(out.status.success(), "curl {path}: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.to_string())
}

/// GET /api/v1/tls over plain HTTP from `place` (to 127.0.0.1 there).
pub fn tls_info(place: Place, port: u16) -> Value {
    let (code, body) = curl_plain(place, "127.0.0.1", port, "/api/v1/tls");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

pub fn names(info: &Value) -> Vec<String> {
    info["certificate"]["names"]
        .as_array()
        .unwrap_or_else(|| panic!("no certificate names: {info}"))
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect()
}

/// `openssl s_client` verifying against `ca` alone, checking the
/// name (`-verify_hostname`) or address (`-verify_ip`), failing on any verify error.
pub fn openssl_https(
    place: Place,
    host: &str,
    port: u16,
    ca: &Path,
    name: &str,
    path: &str,
) -> Got {
    let mut cmd = place.cmd("openssl");
    cmd.args([
        "s_client",
        "-connect",
        &format!("{}:{port}", url_host(host)),
    ])
    // With -CAfile given, s_client loads no default CA file, path or store.
    .arg("-verify_return_error")
    .arg("-CAfile")
    .arg(ca)
    .args(["-ign_eof", "-quiet"]);
    if name.parse::<std::net::IpAddr>().is_ok() {
        cmd.args(["-verify_ip", name]);
    } else {
        cmd.args(["-servername", name, "-verify_hostname", name]);
    }
    got(
        "openssl",
        output(cmd, http_request(name, port, path).as_bytes()),
    )
}

const PYTHON_GET: &str = r#"
import socket, ssl, sys
host, port, ca, name, request = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=ca)  # with a cafile: no system roots
try:
    with socket.create_connection((host, port), timeout=20) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as s:
            s.sendall(request.encode())
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
except ssl.SSLError as e:
    print("python ssl:", repr(e), file=sys.stderr)
    sys.exit(1)
print(data.split(b"\r\n")[0].decode())
"#;

/// Python's `ssl` with `create_default_context(cafile=ca)`: hostname checking on, `name` as
/// the expected name (an address is matched against IP SANs, as browsers do).
pub fn python_https(place: Place, host: &str, port: u16, ca: &Path, name: &str, path: &str) -> Got {
    let mut cmd = place.cmd("python3");
    cmd.args(["-c", PYTHON_GET, host, &port.to_string()])
        .arg(ca)
        .args([name, &http_request(name, port, path)]);
    got("python", output(cmd, b""))
}

/// The mbedTLS 2.x client (tests/tls/mbedtls_get.c), compiled once per test process; `None`
/// after printing SKIPPED when the mbedTLS headers are missing.
pub fn mbedtls_client(test: &str) -> Option<PathBuf> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    let bin = BIN.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tls/mbedtls_get.c");
        let mut probe = Command::new("cc")
            .args(["-fsyntax-only", "-x", "c", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run cc");
        probe
            .stdin
            .take()
            .unwrap()
            .write_all(b"#include <mbedtls/ssl.h>\nint main(void) { return 0; }\n")
            .unwrap();
        if !probe.wait().unwrap().success() {
            return None;
        }
        // One path per target dir, replaced by rename: test processes running side by side
        // each build their own and never see a half-written file.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tls-mbedtls");
        std::fs::create_dir_all(&dir).unwrap();
        let tmp = dir.join(format!("mbedtls_get.{}.tmp", std::process::id()));
        let out = Command::new("cc")
            .args(["-Wall", "-Wextra", "-Werror", "-O1", "-o"])
            .arg(&tmp)
            .arg(&src)
            .args(["-lmbedtls", "-lmbedx509", "-lmbedcrypto"])
            .output()
            .expect("run cc");
        assert!(
            out.status.success(),
            "compiling {} failed:\n{}",
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let bin = dir.join("mbedtls_get");
        std::fs::rename(&tmp, &bin).unwrap();
        Some(bin)
    });
    if bin.is_none() {
        eprintln!(
            "SKIPPED {test}: the mbedTLS client was not run: mbedTLS headers (mbedtls/ssl.h) are \
             missing; install libmbedtls-dev (scripts/setup-deps does)"
        );
    }
    bin.clone()
}

/// The mbedTLS client: verification required, `name` set with `mbedtls_ssl_set_hostname` (so
/// an address must be a DNS SAN), TLS 1.2.
pub fn mbedtls_https(
    client: &Path,
    place: Place,
    host: &str,
    port: u16,
    ca: &Path,
    name: &str,
    path: &str,
) -> Got {
    let mut cmd = place.cmd(client);
    cmd.args([host, &port.to_string()])
        .arg(ca)
        .args([name, path]);
    got("mbedtls", output(cmd, b""))
}

/// rustls (ring) in this process: trusts `ca` alone, offers ALPN http/1.1, sends one GET.
/// Returns the status line and the ALPN protocol the server chose.
pub async fn rustls_https(
    addr: std::net::SocketAddr,
    ca: &Path,
    name: &str,
    path: &str,
) -> Result<(String, Option<Vec<u8>>), String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    // ring, as the server and the rest of the workspace (rustls marks it deprecated only for
    // lacking post-quantum key exchange, which no ESP32 offers either).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let server_name = ServerName::try_from(name.to_string()).unwrap();
    let work = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let mut tls = connector
            .connect(server_name, tcp)
            .await
            .map_err(|e| format!("rustls handshake: {e}"))?;
        let alpn = tls.get_ref().1.alpn_protocol().map(|p| p.to_vec());
        tls.write_all(http_request(name, addr.port(), path).as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut response = Vec::new();
        tls.read_to_end(&mut response)
            .await
            .map_err(|e| format!("read: {e}"))?;
        let status = status_line(&response)
            .ok_or_else(|| format!("no status line: {}", String::from_utf8_lossy(&response)))?;
        Ok((status, alpn))
    };
    tokio::time::timeout(DEADLINE, work)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {DEADLINE:?}")))
}

/// Poll `f` (every 200 ms) until it returns `Some`, for at most `limit`; `what` names the wait.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < end,
            "waited {limit:?} for {what}; it never came"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

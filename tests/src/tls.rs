//! TLS for the black-box tests: a small PKI made with the `openssl` command (a root, an
//! intermediate, server and client certificates, keys in every PEM form ferrocorn reads),
//! and a rustls client that reports what real clients cannot show (which handshake a
//! connection had, the certificate the server sent).

use std::io::{self, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::{connect, read_response, Response, TempDir};

/// Runs `openssl ARGS` in `dir`; panics with its output when it fails.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run the openssl command");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Certificates and keys for one test, in a temporary directory:
/// - `ca.pem`: the root clients trust (`ca_certs` for client certificates too);
/// - `server.pem`: the server's chain (leaf for `localhost` and 127.0.0.1, then the
///   intermediate that signed it), `server.key` (ECDSA P-256, PKCS#8);
/// - `client.pem`, `client.key`: a client certificate signed by the root.
///
/// More server certificates come from [`Pki::issue_server`].
#[derive(Debug)]
pub struct Pki {
    dir: TempDir,
}

impl Pki {
    /// Makes the root, the intermediate, the server's and the client's certificates.
    pub fn new(name: &str) -> Pki {
        let pki = Pki {
            dir: TempDir::new(name),
        };
        let dir = pki.dir.path();
        std::fs::write(
            dir.join("ca.ext"),
            "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n\
             subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
        )
        .expect("write ca.ext");
        std::fs::write(
            dir.join("client.ext"),
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n\
             keyUsage=critical,digitalSignature\n",
        )
        .expect("write client.ext");
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "3",
                "-subj",
                "/CN=ferrocorn test root",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        pki.sign("inter", "/CN=ferrocorn test intermediate", "ca", "ca.ext");
        pki.issue_server("server", "localhost");
        pki.sign("client", "/CN=ferrocorn test client", "ca", "client.ext");
        pki
    }

    /// A file of the PKI.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Makes `NAME.key` (P-256, PKCS#8) and `NAME.pem`, a chain for `host` (a DNS name, also
    /// valid for 127.0.0.1) signed by the intermediate, with the intermediate after it.
    pub fn issue_server(&self, name: &str, host: &str) {
        let ext = format!("{name}.ext");
        std::fs::write(
            self.path(&ext),
            format!(
                "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n\
                 keyUsage=critical,digitalSignature\nsubjectAltName=DNS:{host},IP:127.0.0.1\n"
            ),
        )
        .expect("write the extensions");
        self.sign(name, &format!("/CN={host}"), "inter", &ext);
        let mut chain = std::fs::read(self.path(&format!("{name}.pem"))).expect("read leaf");
        chain.extend(std::fs::read(self.path("inter.pem")).expect("read intermediate"));
        std::fs::write(self.path(&format!("{name}.pem")), chain).expect("write chain");
    }

    /// `NAME.key` and `NAME.pem` (the certificate alone), signed by `issuer`.
    fn sign(&self, name: &str, subject: &str, issuer: &str, ext: &str) {
        let dir = self.dir.path();
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        openssl(
            dir,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                &key,
            ],
        );
        openssl(
            dir,
            &["req", "-new", "-key", &key, "-subj", subject, "-out", &csr],
        );
        let (ca, ca_key) = (format!("{issuer}.pem"), format!("{issuer}.key"));
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-days",
                "3",
                "-extfile",
                ext,
                "-out",
                &pem,
            ],
        );
    }

    /// The first certificate of a PEM file (a chain's leaf).
    pub fn leaf(&self, name: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_file(self.path(name)).expect("a certificate")
    }

    /// A client trusting the root, without a client certificate.
    pub fn client(&self) -> TlsClient {
        self.client_with(|builder| builder.with_no_client_auth())
    }

    /// A client trusting the root and presenting `client.pem`.
    pub fn client_with_certificate(&self) -> TlsClient {
        let chain = vec![self.leaf("client.pem")];
        let key = PrivateKeyDer::from_pem_file(self.path("client.key")).expect("client key");
        self.client_with(|builder| {
            builder
                .with_client_auth_cert(chain, key)
                .expect("client certificate and key")
        })
    }

    fn client_with(
        &self,
        finish: impl FnOnce(
            rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>,
        ) -> ClientConfig,
    ) -> TlsClient {
        let mut roots = RootCertStore::empty();
        roots.add(self.leaf("ca.pem")).expect("the root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots);
        TlsClient {
            config: Arc::new(finish(builder)),
        }
    }
}

/// A TLS connection of [`TlsClient`].
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// A rustls client for `localhost`. Clones share the session cache (tickets).
#[derive(Debug, Clone)]
pub struct TlsClient {
    pub config: Arc<ClientConfig>,
}

impl TlsClient {
    /// A new connection to `addr` for `localhost`, the handshake done.
    pub fn connect(&self, addr: SocketAddr) -> io::Result<TlsStream> {
        self.connect_as(addr, "localhost")
    }

    /// A new connection to `addr` asking for `server_name` (SNI), the handshake done.
    pub fn connect_as(&self, addr: SocketAddr, server_name: &str) -> io::Result<TlsStream> {
        let name = ServerName::try_from(server_name.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let conn = ClientConnection::new(Arc::clone(&self.config), name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut stream = StreamOwned::new(conn, connect(addr)?);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(stream)
    }

    /// A new connection to `addr` that sends `prefix` in the clear first (a PROXY protocol
    /// header, as a proxy sends it before the ClientHello), then completes the handshake.
    /// With `same_write`, the prefix and the ClientHello go out in one write, so that the
    /// server reads both at once.
    pub fn connect_after(
        &self,
        addr: SocketAddr,
        prefix: &[u8],
        same_write: bool,
    ) -> io::Result<TlsStream> {
        let name = ServerName::try_from("localhost").expect("a name");
        let mut conn = ClientConnection::new(Arc::clone(&self.config), name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut sock = connect(addr)?;
        let mut first = prefix.to_vec();
        if same_write {
            conn.write_tls(&mut first)?;
        } else {
            sock.write_all(&first)?;
            sock.flush()?;
            // Let the prefix arrive on its own.
            std::thread::sleep(std::time::Duration::from_millis(50));
            first.clear();
        }
        sock.write_all(&first)?;
        let mut stream = StreamOwned::new(conn, sock);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(stream)
    }

    /// Sends `raw` on a new connection and reads one response.
    pub fn request(&self, addr: SocketAddr, raw: &[u8]) -> io::Result<Response> {
        let mut stream = self.connect(addr)?;
        stream.write_all(raw)?;
        stream.flush()?;
        read_response(&mut BufReader::new(stream), false)
    }

    /// `GET path` with `Connection: close` on a new connection.
    pub fn get(&self, addr: SocketAddr, path: &str) -> io::Result<Response> {
        self.request(
            addr,
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
    }
}

/// The first flight of a TLS 1.3 client (its ClientHello record), as bytes: for tests that
/// send it by hand, cut or followed by garbage.
pub fn client_hello() -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").expect("a name");
    let mut conn = ClientConnection::new(Arc::new(config), name).expect("a client");
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).expect("the ClientHello");
    hello
}

/// What a client command did: its exit status (`None`: killed at the timeout), stdout and
/// stderr.
#[derive(Debug)]
pub struct ClientRun {
    pub status: Option<std::process::ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl ClientRun {
    /// Whether it exited with 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

/// Runs a client (`curl`, `openssl s_client`, `python3`) with `input` on its stdin, killed
/// (by its pid) after `timeout`.
pub fn run_client(mut command: Command, input: &[u8], timeout: std::time::Duration) -> ClientRun {
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let read = |pipe: Option<Box<dyn io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = read(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn io::Read + Send>),
    );
    let stderr = read(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn io::Read + Send>),
    );
    let status = crate::wait_child(&mut child, timeout);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = writer.join();
    ClientRun {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

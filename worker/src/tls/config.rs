//! Building the TLS server configuration from the settings: the certificate chain and key
//! (PEM), the client certificate policy, the cipher suites and versions, ALPN and the
//! session ticket keys. Runs in the arbiter, before any worker is forked.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use ferrocorn_config::{CertReqs, Settings, TlsVersion};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The TLS configuration every listener of one generation serves: built once in the
/// arbiter, so that the workers forked from it share its session ticket keys (a ticket one
/// worker issued resumes a session on another).
#[derive(Clone)]
pub struct TlsConfig {
    pub(crate) server: Arc<ServerConfig>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("alpn", &self.server.alpn_protocols)
            .finish_non_exhaustive()
    }
}

/// Why the TLS configuration cannot be built: the setting or file at fault and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError {
    setting: Option<&'static str>,
    message: String,
}

impl TlsError {
    fn new(setting: Option<&'static str>, message: String) -> TlsError {
        TlsError { setting, message }
    }

    /// The setting whose value is at fault (`None`: none is, such as a failure to create
    /// session ticket keys), so that the caller can say where that value came from.
    pub fn setting(&self) -> Option<&'static str> {
        self.setting
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TlsError {}

/// A file given to a setting, for messages: `certfile /etc/x.pem`. A relative path says
/// the directory it was looked for in (`chdir`'s, which may not be where the command ran).
fn file_error(setting: &'static str, path: &Path, reason: impl fmt::Display) -> TlsError {
    let dir = match std::env::current_dir() {
        Ok(dir) if path.is_relative() => format!(" (in {})", dir.display()),
        _ => String::new(),
    };
    TlsError::new(
        Some(setting),
        format!("{setting} {}{dir}: {reason}", path.display()),
    )
}

impl TlsConfig {
    /// The configuration `settings` ask for: `None` without `certfile` (plain TCP). Reads
    /// and checks every file (the chain, the key and that it matches the chain's first
    /// certificate, the client authorities); fails naming the setting, the file and why.
    /// Each call creates new session ticket keys.
    pub fn from_settings(settings: &Settings) -> Result<Option<TlsConfig>, TlsError> {
        let Some(certfile) = &settings.certfile else {
            return match refused_without_certfile(settings) {
                Some(setting) => Err(TlsError::new(
                    Some(setting),
                    format!("{setting} is set but certfile is not: TLS needs a certificate"),
                )),
                None => Ok(None),
            };
        };
        let chain = read_chain(certfile)?;
        let (key_setting, key_path) = match &settings.keyfile {
            Some(path) => ("keyfile", path),
            None => ("certfile", certfile),
        };
        let key = read_key(key_setting, key_path)?;
        let provider = Arc::new(provider(settings)?);
        let versions = versions(settings.tls_min_version);
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(versions)
            .map_err(|e| TlsError::new(Some("ciphers"), format!("ciphers: {e}")))?;
        let builder = match client_verifier(settings, &provider)? {
            Some(verifier) => builder.with_client_cert_verifier(verifier),
            None => builder.with_no_client_auth(),
        };
        let mut server = builder.with_single_cert(chain, key).map_err(|e| {
            TlsError::new(
                Some(key_setting),
                format!(
                    "certfile {} and {key_setting} {}: {}",
                    certfile.display(),
                    key_path.display(),
                    describe_key_error(&e)
                ),
            )
        })?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        server.ticketer = shared_ticketer(settings.cert_reqs != CertReqs::None)?;
        Ok(Some(TlsConfig {
            server: Arc::new(server),
        }))
    }
}

/// The largest session a ticket holds without a client certificate chain (the name, the
/// ALPN protocol and the secrets come to a few hundred bytes), and with one.
const TICKET_PLAINTEXT_MAX: usize = 1024;
const TICKET_PLAINTEXT_MAX_WITH_CLIENT_CHAIN: usize = 16 * 1024;

/// Session ticket keys for the workers forked after this call. rustls' ticketer refuses
/// to decrypt a ticket longer than the longest it has encrypted itself (a defence against
/// partitioning oracles); a worker that has issued none would refuse every ticket of its
/// siblings. One encryption of the largest session here, before the fork, sets that bound
/// for all of them. The keys rotate every 6 h; from the second rotation on, each worker
/// draws its own (rustls' rotation runs in each process): a HUP shares them again.
fn shared_ticketer(
    client_chains: bool,
) -> Result<Arc<dyn rustls::server::ProducesTickets>, TlsError> {
    let ticketer = rustls::crypto::ring::Ticketer::new()
        .map_err(|e| TlsError::new(None, format!("cannot create session ticket keys: {e}")))?;
    let largest = if client_chains {
        TICKET_PLAINTEXT_MAX_WITH_CLIENT_CHAIN
    } else {
        TICKET_PLAINTEXT_MAX
    };
    if ticketer.encrypt(&vec![0; largest]).is_none() {
        return Err(TlsError::new(
            None,
            "cannot create session ticket keys".to_string(),
        ));
    }
    Ok(ticketer)
}

/// A TLS setting given without `certfile`, which would otherwise be ignored.
fn refused_without_certfile(settings: &Settings) -> Option<&'static str> {
    if settings.keyfile.is_some() {
        Some("keyfile")
    } else if settings.ca_certs.is_some() {
        Some("ca_certs")
    } else if settings.cert_reqs != CertReqs::None {
        Some("cert_reqs")
    } else if settings.ciphers.is_some() {
        Some("ciphers")
    } else {
        None
    }
}

/// The PEM file's bytes, refusing what cannot be read.
fn read_pem(setting: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| file_error(setting, path, format!("cannot read it: {e}")))
}

/// The certificate chain of `certfile`: the server's certificate first, then the
/// intermediates, as the file lists them.
fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_pem("certfile", path)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error("certfile", path, format!("not valid PEM: {e}")))?;
    if chain.is_empty() {
        return Err(file_error(
            "certfile",
            path,
            "no certificate found (a PEM \"BEGIN CERTIFICATE\" section)",
        ));
    }
    for (i, cert) in chain.iter().enumerate() {
        webpki::EndEntityCert::try_from(cert).map_err(|e| {
            file_error(
                "certfile",
                path,
                format!(
                    "certificate {} is not a valid X.509 certificate: {e}",
                    i + 1
                ),
            )
        })?;
    }
    Ok(chain)
}

/// The private key in `path` (PKCS#8, PKCS#1 or SEC1). An encrypted key is refused: the
/// server starts unattended, with no one to type its passphrase.
fn read_key(setting: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_pem(setting, path)?;
    let text = String::from_utf8_lossy(&pem);
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
    {
        return Err(file_error(
            setting,
            path,
            "the private key is encrypted; ferrocorn needs it unencrypted (decrypt it with \
             `openssl pkey -in KEY -out PLAIN_KEY`, and keep that file readable only by the \
             server's user)",
        ));
    }
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => file_error(
            setting,
            path,
            "no private key found (a PEM \"PRIVATE KEY\", \"RSA PRIVATE KEY\" or \"EC PRIVATE \
             KEY\" section)",
        ),
        other => file_error(setting, path, format!("not valid PEM: {other}")),
    })
}

/// What a failure to pair the chain and the key means, in words.
fn describe_key_error(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
            "the private key does not match the certificate (the first one in certfile)".to_string()
        }
        other => format!("cannot use the certificate and key: {other}"),
    }
}

/// The ring provider, with only the suites of `ciphers` when it is given (in its order).
fn provider(settings: &Settings) -> Result<CryptoProvider, TlsError> {
    let mut provider = rustls::crypto::ring::default_provider();
    let Some(list) = &settings.ciphers else {
        return Ok(provider);
    };
    let all = std::mem::take(&mut provider.cipher_suites);
    for name in list.names() {
        let suite = all
            .iter()
            .find(|s| s.suite().as_str() == Some(*name))
            .ok_or_else(|| {
                TlsError::new(
                    Some("ciphers"),
                    format!("ciphers: {name} is not implemented by rustls"),
                )
            })?;
        provider.cipher_suites.push(*suite);
    }
    let tls13 = provider
        .cipher_suites
        .iter()
        .any(|s| s.version() == &rustls::version::TLS13);
    if settings.tls_min_version == TlsVersion::Tls13 && !tls13 {
        return Err(TlsError::new(
            Some("ciphers"),
            format!(
                "ciphers ({}) names no TLS 1.3 suite, and tls_min_version is 1.3: no \
                 connection could be made",
                list.names().join(",")
            ),
        ));
    }
    Ok(provider)
}

/// TLS 1.3 and 1.2.
static FROM_TLS12: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];
/// TLS 1.3 only.
static FROM_TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// The versions from `min` up.
fn versions(min: TlsVersion) -> &'static [&'static SupportedProtocolVersion] {
    match min {
        TlsVersion::Tls12 => FROM_TLS12,
        TlsVersion::Tls13 => FROM_TLS13,
    }
}

/// The client certificate verifier `cert_reqs` asks for, with `ca_certs` as its roots.
fn client_verifier(
    settings: &Settings,
    provider: &Arc<CryptoProvider>,
) -> Result<Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>, TlsError> {
    if settings.cert_reqs == CertReqs::None {
        if settings.ca_certs.is_some() {
            tracing::warn!(
                "ca_certs is set but cert_reqs is 0: no client certificate is asked for"
            );
        }
        return Ok(None);
    }
    let Some(path) = &settings.ca_certs else {
        return Err(TlsError::new(
            Some("cert_reqs"),
            "cert_reqs asks for client certificates but ca_certs is not set: give the PEM \
             file of the authorities they are verified against"
                .to_string(),
        ));
    };
    let pem = read_pem("ca_certs", path)?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| file_error("ca_certs", path, format!("not valid PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| file_error("ca_certs", path, format!("not a usable authority: {e}")))?;
    }
    if roots.is_empty() {
        return Err(file_error(
            "ca_certs",
            path,
            "no certificate found (a PEM \"BEGIN CERTIFICATE\" section)",
        ));
    }
    let builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider));
    let builder = match settings.cert_reqs {
        CertReqs::Optional => builder.allow_unauthenticated(),
        _ => builder,
    };
    builder
        .build()
        .map(Some)
        .map_err(|e| file_error("ca_certs", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `config` lists the suites `ciphers` accepts without depending on rustls: the two
    /// lists must agree.
    #[test]
    fn every_configurable_suite_is_known_to_rustls() {
        let rustls: Vec<&str> = rustls::crypto::ring::ALL_CIPHER_SUITES
            .iter()
            .filter_map(|s| s.suite().as_str())
            .collect();
        let ours: Vec<&str> = ferrocorn_config::cipher_suite_names().collect();
        assert_eq!(ours, rustls);
    }

    #[test]
    fn settings_without_certfile_are_plain_unless_a_tls_setting_is_given() {
        let mut settings = Settings::default();
        assert!(TlsConfig::from_settings(&settings).unwrap().is_none());
        settings.cert_reqs = CertReqs::Required;
        let e = TlsConfig::from_settings(&settings).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cert_reqs is set but certfile is not: TLS needs a certificate"
        );
    }

    #[test]
    fn a_cipher_list_without_tls13_suites_cannot_require_tls13() {
        let mut settings = Settings {
            ciphers: ferrocorn_config::CipherList::parse("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
                .unwrap(),
            ..Settings::default()
        };
        assert!(provider(&settings).is_ok());
        settings.tls_min_version = TlsVersion::Tls13;
        let e = provider(&settings).unwrap_err().to_string();
        assert!(
            e.starts_with("ciphers (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)"),
            "{e}"
        );
    }
}

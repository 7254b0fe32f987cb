//! A TLS front for `mock-upstream`: accepts HTTPS and relays the decrypted bytes to the plain
//! mock server in the same process.
//!
//! Why it exists: a gateway's upstream pool is worth most in front of a TLS upstream (a new
//! connection costs a handshake), so benchmarks need an HTTPS mock. The HTTP serving code
//! (`ringgate::server::conn`) is typed on a plain `monoio::net::TcpStream`, and making it generic
//! over TLS is out of scope; instead this front terminates TLS and opens one connection to the
//! plain mock (on an internal loopback port) per TLS connection, so keep-alive behaviour and
//! connection counts carry through unchanged.
//!
//! Thread-per-core like the mock: one monoio worker per `--workers` (unpinned, like the mock's),
//! each with its own `SO_REUSEPORT` listener. Each connection relays both directions at once in one task; when
//! either direction ends (a close, an error) the other is dropped and both sockets close. When the
//! mock side ends first the client gets a TLS close_notify. A failed handshake costs that
//! connection only.
//!
//! The two directions use the read and write halves of one monoio-rustls stream. In one rare case
//! monoio-rustls can panic on that (a client's corrupt record arriving while an answer is being
//! written); connection tasks contain panics ([`spawn_connection`]), so it costs that connection
//! only.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, Splitable};
use monoio::net::TcpStream;
use monoio_rustls::TlsAcceptor;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use ringgate::mock::server::MockStats;
use ringgate::runtime::{accept_each, bind_group, spawn_connection, Driver, Workers};
use ringgate::shutdown::Shutdown;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;

/// The names the self-signed server certificate is valid for.
pub const SELF_SIGNED_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
/// The file, in the `--tls-self-signed` directory, that the CA is written to.
pub const CA_FILE: &str = "ca.pem";

/// A client gets this long to complete its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Sending close_notify to a client that does not read gets this long.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// The relay buffer of each direction.
const RELAY_BUFFER: usize = 16 * 1024;

/// A certificate chain and its private key.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// Generates a private CA and a server certificate it signs for [`SELF_SIGNED_NAMES`]; writes the
/// CA as `dir/ca.pem` (creating `dir` if needed) and returns the server's identity.
pub fn self_signed(dir: &Path) -> Result<Identity, String> {
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "mock-upstream CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().map_err(|e| e.to_string())?;
    let issuer = CertifiedIssuer::self_signed(ca, ca_key).map_err(|e| e.to_string())?;

    let names: Vec<String> = SELF_SIGNED_NAMES.iter().map(|n| n.to_string()).collect();
    let mut server = CertificateParams::new(names).map_err(|e| e.to_string())?;
    server
        .distinguished_name
        .push(DnType::CommonName, SELF_SIGNED_NAMES[0]);
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = server.signed_by(&key, &issuer).map_err(|e| e.to_string())?;

    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let ca_path = dir.join(CA_FILE);
    std::fs::write(&ca_path, issuer.pem())
        .map_err(|e| format!("cannot write {}: {e}", ca_path.display()))?;
    Ok(Identity {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    })
}

/// Reads a PEM certificate chain and a PEM private key.
pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Identity, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read certificates from {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificates found", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read a private key from {}: {e}", key.display()))?;
    Ok(Identity { chain, key })
}

/// The server config: rustls with the ring provider, HTTP/1.1 by ALPN.
pub fn server_config(identity: Identity) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(identity.chain, identity.key)
        .map_err(|e| format!("the certificate and key do not fit together: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A running TLS front.
pub struct TlsFront {
    /// The public (TLS) address.
    pub addr: SocketAddr,
    workers: Workers,
}

impl TlsFront {
    /// Listens on `listen` with `workers` workers, relaying each TLS connection to the plain
    /// server at `backend`. Accepted connections (handshake or not) are counted in `stats`.
    /// Stops when `shutdown` is raised.
    pub fn start(
        listen: SocketAddr,
        workers: usize,
        driver: Driver,
        backend: SocketAddr,
        config: Arc<ServerConfig>,
        stats: Option<Arc<MockStats>>,
        shutdown: Shutdown,
    ) -> io::Result<TlsFront> {
        let mut group = bind_group(listen, workers.max(1))?;
        let addr = group[0].local_addr()?;
        let mut threads = Workers::new(shutdown.clone());
        for index in 0..group.len() {
            let listener = group.pop().expect("one per worker");
            let (config, stats, shutdown) = (config.clone(), stats.clone(), shutdown.clone());
            threads.spawn(index, false, driver, move || async move {
                let acceptor = TlsAcceptor::from(config);
                monoio::spawn(accept_each(listener, shutdown.clone(), move |tcp| {
                    if let Some(stats) = &stats {
                        stats.shard(index).connection();
                    }
                    spawn_connection(relay(tcp, acceptor.clone(), backend));
                }));
                shutdown.wait().await;
            })?;
        }
        Ok(TlsFront {
            addr,
            workers: threads,
        })
    }

    /// Waits until the workers end (after a shutdown).
    pub fn wait(mut self) {
        self.workers.join();
    }
}

/// One client connection: the handshake, then both directions relayed until either ends.
async fn relay(tcp: TcpStream, acceptor: TlsAcceptor, backend: SocketAddr) {
    let _ = tcp.set_nodelay(true);
    let tls = match monoio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            log::debug!("TLS handshake failed: {e}");
            return;
        }
        Err(_) => {
            log::debug!("TLS handshake timed out");
            return;
        }
    };
    let plain = match TcpStream::connect(backend).await {
        Ok(s) => s,
        Err(e) => {
            log::warn!("cannot reach the plain mock at {backend}: {e}");
            return;
        }
    };
    let _ = plain.set_nodelay(true);
    let (mut tls_read, mut tls_write) = tls.into_split();
    let (mut plain_read, mut plain_write) = plain.into_split();
    // The direction that ends first drops the other (cancelling its I/O).
    let mock_ended = monoio::select! {
        _ = copy(&mut tls_read, &mut plain_write) => false,
        _ = copy(&mut plain_read, &mut tls_write) => true,
    };
    if mock_ended {
        // The client learns the connection ended on purpose, not by truncation.
        let _ = monoio::time::timeout(CLOSE_TIMEOUT, tls_write.shutdown()).await;
    }
}

/// Copies `from` to `to` until `from` ends (`Ok`) or either fails.
async fn copy<R: AsyncReadRent, W: AsyncWriteRent>(from: &mut R, to: &mut W) -> io::Result<()> {
    let mut buf = Vec::with_capacity(RELAY_BUFFER);
    loop {
        let (read, b) = from.read(buf).await;
        buf = b;
        if read? == 0 {
            return Ok(());
        }
        let (written, b) = to.write_all(buf).await;
        buf = b;
        written?;
        buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_writes_a_ca_that_verifies_the_server_certificate() {
        let dir = std::env::temp_dir().join(format!("mock-upstream-unit-{}", std::process::id()));
        let identity = self_signed(&dir).unwrap();
        let ca = CertificateDer::pem_file_iter(dir.join(CA_FILE))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(ca.len(), 1);
        assert_eq!(identity.chain.len(), 1);

        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca[0].clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        for name in SELF_SIGNED_NAMES {
            let name = rustls::pki_types::ServerName::try_from(name).unwrap();
            rustls::client::danger::ServerCertVerifier::verify_server_cert(
                verifier.as_ref(),
                &identity.chain[0],
                &[],
                &name,
                &[],
                rustls::pki_types::UnixTime::now(),
            )
            .unwrap_or_else(|e| panic!("{name:?}: {e}"));
        }
        // And the pair makes a server config.
        server_config(identity).unwrap();
    }
}

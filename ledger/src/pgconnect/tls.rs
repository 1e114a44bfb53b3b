//! TLS to PostgreSQL with rustls (ring provider), per libpq's `sslmode` ("SSL Support",
//! table "SSL Mode Descriptions"):
//!
//! | sslmode | certificate check |
//! |---|---|
//! | `disable` | no TLS |
//! | `allow`, `prefer`, `require` | the chain, if a root certificate file exists (libpq: "require" is then "verify-ca"); else none |
//! | `verify-ca` | the chain; a root certificate file (or `system`) is required |
//! | `verify-full` | the chain and the host name; roots required |
//!
//! Whatever is skipped, the handshake signatures are always checked, so the peer at least
//! holds the key of the certificate it presented (channel binding builds on that).
//!
//! One difference from libpq, on the strict side: an `sslrootcert` file named explicitly but
//! missing or unreadable is an error in every mode (libpq silently skips verification under
//! `require`); the administrator named that file for a reason.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_cert_signed_by_trust_anchor};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::env::{Resolved, RootCerts, SslMode};
use super::error::ConnectError;

/// How the server's certificate is checked, decided from sslmode and the root certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Not checked (`require` or weaker without a root certificate file).
    None,
    /// The chain up to a root, not the host name (`verify-ca`, or weaker modes with roots).
    Chain,
    /// The chain and the host name (`verify-full`).
    Full,
}

/// Decides the verification for a mode and the roots found; an error when a verifying mode has
/// no roots.
pub fn verification(sslmode: SslMode, roots: &RootCerts) -> Result<Verification, ConnectError> {
    let have_roots = !matches!(roots, RootCerts::None { .. });
    match (sslmode, have_roots) {
        (SslMode::VerifyFull, true) => Ok(Verification::Full),
        (SslMode::VerifyCa, true) => Ok(Verification::Chain),
        (SslMode::VerifyFull | SslMode::VerifyCa, false) => Err(ConnectError::RootCertMissing {
            sslmode: sslmode.as_str(),
            looked: match roots {
                RootCerts::None { looked } => looked.clone(),
                _ => None,
            },
        }),
        (_, true) => Ok(Verification::Chain),
        (_, false) => Ok(Verification::None),
    }
}

/// Builds the TLS connector for a resolved connection.
pub(super) fn connector(resolved: &Resolved) -> Result<MakeRustlsConnect, ConnectError> {
    // rustls 0.23.48 deprecates ring's provider for lacking post-quantum key exchange. tally
    // chose ring over aws-lc-rs for a build without C/cmake; what crosses this link (ledger rows
    // that are published anyway, SCRAM exchanges that never carry the password) gains little
    // from post-quantum secrecy. Revisit when ring or rustls offers ML-KEM without aws-lc.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // Unix sockets never use TLS (libpq ignores sslmode there): no roots are needed.
    let verification = if resolved.is_unix_socket() || resolved.sslmode == SslMode::Disable {
        Verification::None
    } else {
        verification(resolved.sslmode, &resolved.root_certs)?
    };
    let verifier: Arc<dyn ServerCertVerifier> = match verification {
        Verification::None => Arc::new(Weaker {
            roots: None,
            provider: provider.clone(),
        }),
        Verification::Chain => Arc::new(Weaker {
            roots: Some(Arc::new(roots(&resolved.root_certs)?)),
            provider: provider.clone(),
        }),
        Verification::Full => WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots(&resolved.root_certs)?),
            provider.clone(),
        )
        .build()
        .map_err(|error| ConnectError::RootCert {
            path: root_name(&resolved.root_certs),
            reason: error.to_string(),
        })?,
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// The root certificates as a name for messages.
pub(super) fn root_name(roots: &RootCerts) -> String {
    match roots {
        RootCerts::File(path) => path.display().to_string(),
        RootCerts::System => "the system's trust store (sslrootcert=system)".to_owned(),
        RootCerts::None { looked: Some(path) } => {
            format!("none ({} does not exist)", path.display())
        }
        RootCerts::None { looked: None } => "none".to_owned(),
    }
}

/// Loads the root certificates.
fn roots(source: &RootCerts) -> Result<RootCertStore, ConnectError> {
    let mut store = RootCertStore::empty();
    match source {
        RootCerts::File(path) => {
            let error = |reason: String| ConnectError::RootCert {
                path: path.display().to_string(),
                reason,
            };
            let iter = CertificateDer::pem_file_iter(path).map_err(|e| error(e.to_string()))?;
            for cert in iter {
                let cert = cert.map_err(|e| error(e.to_string()))?;
                store.add(cert).map_err(|e| error(e.to_string()))?;
            }
            if store.is_empty() {
                return Err(error("it holds no PEM certificate".to_owned()));
            }
        }
        RootCerts::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let reason = found
                    .errors
                    .first()
                    .map_or_else(|| "no certificate was found".to_owned(), |e| e.to_string());
                return Err(ConnectError::SystemRoots { reason });
            }
        }
        RootCerts::None { .. } => {}
    }
    Ok(store)
}

/// The verifier of the weaker modes, which rustls does not offer: with `roots`, the chain up to
/// them but not the host name (libpq's `verify-ca`); without, any certificate (`require` and
/// weaker without roots, libpq's behaviour). Either way the handshake signatures are checked
/// against the presented certificate.
#[derive(Debug)]
struct Weaker {
    roots: Option<Arc<RootCertStore>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Weaker {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pgconnect::{Environment, Target};
    use std::path::PathBuf;

    fn connector_for(url: &str) -> Result<MakeRustlsConnect, ConnectError> {
        let nothing = |_: &str| None;
        let environment = Environment {
            var: &nothing,
            home: None,
            os_user: Some("u".to_owned()),
        };
        let resolved = Target::parse(url, None)
            .expect("parses")
            .resolve("t", &environment)
            .expect("resolves");
        connector(&resolved)
    }

    #[test]
    fn named_root_file_that_is_missing_is_an_error_even_under_require() {
        let error = connector_for("postgres://h/d?sslmode=require&sslrootcert=/nonexistent/ca.pem")
            .err()
            .expect("refused");
        assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
    }

    #[test]
    fn root_file_without_certificates_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").expect("write");
        let error = connector_for(&format!(
            "postgres://h/d?sslmode=verify-full&sslrootcert={}",
            path.display()
        ))
        .err()
        .expect("refused");
        assert!(
            error.to_string().contains("holds no PEM certificate"),
            "{error}"
        );
    }

    #[test]
    fn unix_sockets_need_no_roots_whatever_the_mode() {
        assert!(connector_for("postgres:///d?host=/tmp&sslmode=verify-full").is_ok());
    }

    #[test]
    fn verification_follows_libpq() {
        let file = RootCerts::File(PathBuf::from("/ca.pem"));
        let none = RootCerts::None {
            looked: Some(PathBuf::from("/home/u/.postgresql/root.crt")),
        };
        let cases = [
            (SslMode::Prefer, &none, Verification::None),
            (SslMode::Require, &none, Verification::None),
            (SslMode::Prefer, &file, Verification::Chain),
            (SslMode::Require, &file, Verification::Chain),
            (SslMode::VerifyCa, &file, Verification::Chain),
            (SslMode::VerifyFull, &file, Verification::Full),
            (SslMode::VerifyFull, &RootCerts::System, Verification::Full),
        ];
        for (mode, roots, expected) in cases {
            assert_eq!(
                verification(mode, roots).expect("decides"),
                expected,
                "{mode:?} {roots:?}"
            );
        }
    }

    #[test]
    fn verifying_modes_without_roots_say_where_they_looked() {
        let none = RootCerts::None {
            looked: Some(PathBuf::from("/home/u/.postgresql/root.crt")),
        };
        for mode in [SslMode::VerifyCa, SslMode::VerifyFull] {
            let error = verification(mode, &none).expect_err("refused");
            let message = error.to_string();
            assert!(message.contains(mode.as_str()), "{message}");
            assert!(
                message.contains("/home/u/.postgresql/root.crt"),
                "{message}"
            );
            assert!(message.contains("sslrootcert"), "{message}");
        }
    }
}

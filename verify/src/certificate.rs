//! OpenSSH user certificates (`PROTOCOL.certkeys`), parsed from the exact bytes signed.
//!
//! tally reads certificates itself rather than through `ssh-key`'s `Certificate`, for two
//! reasons: the CA signature is checked over the received bytes (never a re-encoding), and a
//! certificate valid "forever" (`valid before` = 2^64-1, what `ssh-keygen -s` writes without
//! `-V`) must be accepted, which `ssh-key` 0.6 refuses as an invalid time.

use signature::Verifier;
use ssh_key::{Algorithm, Signature, public::KeyData};

use crate::wire::Reader;

/// Why an OpenSSH certificate in a signature cannot be used.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertificateDefect {
    /// The certified key's type is not one tally verifies.
    #[error("certified key type {0} is not supported")]
    KeyType(String),
    /// The certified key does not decode.
    #[error("certified key: {0}")]
    Key(#[source] ssh_key::Error),
    /// The CA key is itself a certificate.
    #[error("the CA key is itself a certificate")]
    CaIsCertificate,
    /// The CA key does not decode.
    #[error("CA key: {0}")]
    CaKey(#[source] ssh_key::Error),
    /// The CA signed with SHA-1.
    #[error("the CA signed with ssh-rsa (SHA-1), which OpenSSH refuses")]
    CaSha1,
    /// The CA signature does not decode.
    #[error("CA signature: {0}")]
    CaSignature(#[source] ssh_key::Error),
    /// The CA signature's algorithm is not the CA key's.
    #[error("CA signature algorithm does not match the CA key")]
    CaAlgorithm,
    /// The CA signature does not verify.
    #[error("the CA signature does not verify")]
    CaSignatureInvalid,
}

/// Why a certificate blob cannot be read or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// A field is cut short or malformed (named).
    #[error("malformed OpenSSH certificate: {0}")]
    Malformed(&'static str),
    /// The certificate decodes but cannot be used.
    #[error("unusable OpenSSH certificate: {0}")]
    Defect(#[source] CertificateDefect),
}

impl From<crate::wire::Truncated> for CertificateError {
    fn from(t: crate::wire::Truncated) -> CertificateError {
        CertificateError::Malformed(t.0)
    }
}

impl From<CertificateDefect> for CertificateError {
    fn from(d: CertificateDefect) -> CertificateError {
        CertificateError::Defect(d)
    }
}

const SUFFIX: &str = "-cert-v01@openssh.com";
/// `SSH_CERT_TYPE_USER`.
pub const USER: u32 = 1;

/// A certificate, with the fields tally checks.
#[derive(Debug, Clone)]
pub struct UserCertificate {
    /// The certified key: it made the SSHSIG signature.
    pub key: KeyData,
    /// The CA key that signed the certificate.
    pub ca: KeyData,
    /// 1 for user certificates, 2 for host certificates.
    pub cert_type: u32,
    /// The key id the CA wrote.
    pub key_id: String,
    /// Principals the certificate is valid for.
    pub principals: Vec<String>,
    /// Seconds since the epoch.
    pub valid_after: u64,
    /// Seconds since the epoch; `u64::MAX` is forever.
    pub valid_before: u64,
    /// Names of the critical options.
    pub critical_options: Vec<String>,
    /// Certificate serial number.
    pub serial: u64,
    signed: Vec<u8>,
    signature: Signature,
}

fn text(bytes: &[u8], what: &'static str) -> Result<String, CertificateError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| CertificateError::Malformed(what))
}

/// Whether a key blob's algorithm name is a certificate type.
pub fn is_certificate(blob: &[u8]) -> bool {
    let mut r = Reader(blob);
    r.string("key type")
        .map(|t| t.ends_with(SUFFIX.as_bytes()))
        .unwrap_or(false)
}

impl UserCertificate {
    /// Parses a certificate blob as found in an SSHSIG public key field.
    pub fn parse(blob: &[u8]) -> Result<UserCertificate, CertificateError> {
        let mut r = Reader(blob);
        let cert_alg = text(r.string("certificate type")?, "certificate type")?;
        let plain = cert_alg
            .strip_suffix(SUFFIX)
            .ok_or(CertificateError::Malformed("not a certificate"))?;
        r.string("nonce")?;
        // The public key fields between the nonce and the serial, per key type
        // (PROTOCOL.certkeys), copied verbatim after the plain type name.
        let fields = match plain {
            "ssh-ed25519" => 1,
            "ssh-rsa" | "ecdsa-sha2-nistp256" | "ecdsa-sha2-nistp384" | "ecdsa-sha2-nistp521" => 2,
            "sk-ssh-ed25519@openssh.com" => 2,
            "sk-ecdsa-sha2-nistp256@openssh.com" => 3,
            other => {
                return Err(CertificateError::Defect(CertificateDefect::KeyType(
                    other.to_owned(),
                )));
            }
        };
        let mut key_blob = Vec::with_capacity(128);
        key_blob.extend_from_slice(&(plain.len() as u32).to_be_bytes());
        key_blob.extend_from_slice(plain.as_bytes());
        for _ in 0..fields {
            key_blob.extend_from_slice(r.raw_string("certified key")?);
        }
        let key = ssh_key::PublicKey::from_bytes(&key_blob)
            .map_err(|e| CertificateError::Defect(CertificateDefect::Key(e)))?
            .key_data()
            .clone();
        let serial = r.u64("serial")?;
        let cert_type = r.u32("certificate kind")?;
        let key_id = text(r.string("key id")?, "key id")?;
        let mut principals = Vec::new();
        let mut list = Reader(r.string("principals")?);
        while !list.0.is_empty() {
            principals.push(text(list.string("principal")?, "principal")?);
        }
        let valid_after = r.u64("valid after")?;
        let valid_before = r.u64("valid before")?;
        let mut critical_options = Vec::new();
        let mut opts = Reader(r.string("critical options")?);
        while !opts.0.is_empty() {
            critical_options.push(text(opts.string("option name")?, "option name")?);
            opts.string("option value")?;
        }
        r.string("extensions")?;
        r.string("reserved")?;
        let ca_blob = r.string("signature key")?;
        let signed_len = blob.len() - r.0.len();
        let sig_blob = r.string("certificate signature")?;
        if !r.0.is_empty() {
            return Err(CertificateError::Malformed(
                "trailing bytes after the certificate",
            ));
        }
        if is_certificate(ca_blob) {
            return Err(CertificateError::Defect(CertificateDefect::CaIsCertificate));
        }
        let ca = ssh_key::PublicKey::from_bytes(ca_blob)
            .map_err(|e| CertificateError::Defect(CertificateDefect::CaKey(e)))?
            .key_data()
            .clone();
        if Reader(sig_blob).string("signature algorithm")? == b"ssh-rsa" {
            return Err(CertificateError::Defect(CertificateDefect::CaSha1));
        }
        let signature = Signature::try_from(sig_blob)
            .map_err(|e| CertificateError::Defect(CertificateDefect::CaSignature(e)))?;
        Ok(UserCertificate {
            key,
            ca,
            cert_type,
            key_id,
            principals,
            valid_after,
            valid_before,
            critical_options,
            serial,
            signed: blob[..signed_len].to_vec(),
            signature,
        })
    }

    /// Checks the CA's signature over the certificate bytes as received.
    pub fn verify_ca_signature(&self) -> Result<(), CertificateError> {
        let fits = match (self.ca.algorithm(), self.signature.algorithm()) {
            (Algorithm::Rsa { .. }, Algorithm::Rsa { hash }) => hash.is_some(),
            (k, s) => k == s,
        };
        if !fits {
            return Err(CertificateError::Defect(CertificateDefect::CaAlgorithm));
        }
        self.ca
            .verify(&self.signed, &self.signature)
            .map_err(|_| CertificateError::Defect(CertificateDefect::CaSignatureInvalid))
    }

    /// Whether `t` (seconds since the epoch) is inside the validity period
    /// (`valid after <= t < valid before`, PROTOCOL.certkeys).
    pub fn valid_at(&self, t: u64) -> bool {
        self.valid_after <= t && t < self.valid_before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_certificates_are_errors_not_panics() {
        let mut blob = Vec::new();
        let t = b"ssh-ed25519-cert-v01@openssh.com";
        blob.extend_from_slice(&(t.len() as u32).to_be_bytes());
        blob.extend_from_slice(t);
        blob.extend_from_slice(&[0, 0, 0, 2, 1, 2]);
        blob.extend_from_slice(&[0, 0, 0, 32]);
        blob.extend_from_slice(&[7; 32]);
        blob.extend_from_slice(&[0xff; 64]);
        for end in 0..blob.len() {
            assert!(UserCertificate::parse(&blob[..end]).is_err());
        }
        assert!(UserCertificate::parse(&blob).is_err());
    }

    #[test]
    fn plain_key_is_not_a_certificate() {
        let mut blob = Vec::new();
        blob.extend_from_slice(&11u32.to_be_bytes());
        blob.extend_from_slice(b"ssh-ed25519");
        assert!(!is_certificate(&blob));
        assert!(!is_certificate(&[0, 0]));
    }
}

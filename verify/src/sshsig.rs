//! SSHSIG signatures as git writes them with `gpg.format=ssh` (OpenSSH `PROTOCOL.sshsig`).
//!
//! The armored blob is:
//! `"SSHSIG" || uint32 version(1) || string publickey || string namespace || string reserved ||
//! string hash_algorithm || string signature`, and what the key signed is
//! `"SSHSIG" || string namespace || string reserved || string hash_algorithm || string H(payload)`.
//! The parser here is tally's own so that every field is checked with a precise error; the
//! cryptography is `ssh-key`'s.

use base64ct::{Base64, Encoding};
use sha2::{Digest, Sha256, Sha512};
use ssh_key::{Algorithm, Signature, public::KeyData};

use crate::certificate::{UserCertificate, is_certificate};
use crate::wire::Reader;
use signature::Verifier;

/// The armor git puts around SSH signatures.
pub const BEGIN: &str = "-----BEGIN SSH SIGNATURE-----";
const END: &str = "-----END SSH SIGNATURE-----";
const MAGIC: &[u8] = b"SSHSIG";
/// Upper bound on an armored signature: the largest real ones (RSA 16384-bit certificates)
/// are a few KiB; anything bigger is hostile.
const MAX_ARMORED: usize = 64 * 1024;

/// The key that made an SSHSIG signature: a plain public key or an OpenSSH certificate.
#[derive(Debug, Clone)]
pub enum SigningKey {
    /// A plain public key, looked up in allowed_signers directly.
    Plain(KeyData),
    /// A user certificate, trusted through a `cert-authority` line for its CA.
    Certificate(Box<UserCertificate>),
}

impl SigningKey {
    /// The key whose private half made the signature.
    pub fn key_data(&self) -> &KeyData {
        match self {
            SigningKey::Plain(k) => k,
            SigningKey::Certificate(c) => &c.key,
        }
    }
}

/// The message digest algorithm named in an SSHSIG blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    /// `sha256`
    Sha256,
    /// `sha512`
    Sha512,
}

/// A parsed SSHSIG blob.
#[derive(Debug, Clone)]
pub struct SshSig {
    /// Who signed.
    pub key: SigningKey,
    /// The namespace the signature is bound to (`git` for commits).
    pub namespace: String,
    reserved: Vec<u8>,
    /// Digest of the message.
    pub hash: HashAlg,
    hash_name: Vec<u8>,
    /// The key's signature over the SSHSIG signed data.
    pub signature: Signature,
}

/// Why an SSHSIG signature is unreadable or does not verify.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SigError {
    /// The signature text is not inside SSH armor.
    #[error("not an SSH signature (no {BEGIN} armor)")]
    NotArmored,
    /// Larger than any real signature.
    #[error("signature is {size} bytes, over the {MAX_ARMORED} byte limit")]
    TooLarge {
        /// Size found.
        size: usize,
    },
    /// Base64 body does not decode.
    #[error("signature armor is not valid base64")]
    Base64,
    /// The decoded blob ends early or a field is malformed.
    #[error("malformed SSHSIG blob: {0}")]
    Malformed(&'static str),
    /// Version other than 1.
    #[error("unsupported SSHSIG version {0}")]
    Version(u32),
    /// Hash other than sha256/sha512.
    #[error("unsupported SSHSIG hash algorithm {0:?} (expected sha256 or sha512)")]
    Hash(String),
    /// Key blob unreadable or of an unsupported type.
    #[error("unsupported or malformed public key in signature: {0}")]
    Key(String),
    /// The certificate in the signature cannot be decoded.
    #[error("unusable OpenSSH certificate in the signature: {0}")]
    Certificate(String),
    /// Signature blob unreadable or of an unsupported algorithm.
    #[error("unsupported or malformed signature: {0}")]
    Signature(String),
    /// RSA signature with SHA-1.
    #[error("ssh-rsa (SHA-1) signatures are refused; sign with rsa-sha2-256 or rsa-sha2-512")]
    RsaSha1,
    /// Signature algorithm does not belong to the key.
    #[error("signature algorithm {signature} does not match key type {key}")]
    AlgorithmMismatch {
        /// From the signature.
        signature: String,
        /// From the key.
        key: String,
    },
    /// Namespace is not the one expected.
    #[error("signature namespace is {found:?}, expected {expected:?}")]
    Namespace {
        /// Expected (`git`).
        expected: String,
        /// Found.
        found: String,
    },
    /// The cryptographic check failed.
    #[error(
        "signature does not verify: the commit was changed after signing, or the signature is forged"
    )]
    BadSignature,
    /// A FIDO signature made without the user touching the key.
    #[error("security key signature lacks the user-presence flag")]
    NoUserPresence,
}

impl SshSig {
    /// Parses the armored signature text taken from a commit's `gpgsig` header.
    pub fn from_armored(text: &[u8]) -> Result<SshSig, SigError> {
        if text.len() > MAX_ARMORED {
            return Err(SigError::TooLarge { size: text.len() });
        }
        let text = std::str::from_utf8(text).map_err(|_| SigError::NotArmored)?;
        let text = text.trim();
        let inner = text
            .strip_prefix(BEGIN)
            .and_then(|t| t.strip_suffix(END))
            .ok_or(SigError::NotArmored)?;
        let b64: String = inner.split_ascii_whitespace().collect();
        let blob = Base64::decode_vec(&b64).map_err(|_| SigError::Base64)?;
        SshSig::from_blob(&blob)
    }

    /// Parses the binary SSHSIG blob.
    pub fn from_blob(blob: &[u8]) -> Result<SshSig, SigError> {
        let mut r = Reader(blob);
        if r.take(MAGIC.len(), "magic")? != MAGIC {
            return Err(SigError::Malformed("missing SSHSIG magic"));
        }
        let version = r.u32("version")?;
        if version != 1 {
            return Err(SigError::Version(version));
        }
        let key_blob = r.string("public key")?;
        let namespace = r.string("namespace")?;
        let reserved = r.string("reserved")?.to_vec();
        let hash_name = r.string("hash algorithm")?.to_vec();
        let sig_blob = r.string("signature")?;
        if !r.0.is_empty() {
            return Err(SigError::Malformed("trailing bytes after the signature"));
        }
        let namespace = String::from_utf8(namespace.to_vec())
            .map_err(|_| SigError::Malformed("namespace is not UTF-8"))?;
        let hash = match hash_name.as_slice() {
            b"sha256" => HashAlg::Sha256,
            b"sha512" => HashAlg::Sha512,
            other => return Err(SigError::Hash(String::from_utf8_lossy(other).into_owned())),
        };
        let key = parse_key(key_blob)?;
        let sig_alg = Reader(sig_blob).string("signature algorithm")?;
        if sig_alg == b"ssh-rsa" {
            return Err(SigError::RsaSha1);
        }
        let signature =
            Signature::try_from(sig_blob).map_err(|e| SigError::Signature(e.to_string()))?;
        let key_alg = key.key_data().algorithm();
        if !algorithm_fits(&key_alg, &signature.algorithm()) {
            return Err(SigError::AlgorithmMismatch {
                signature: signature.algorithm().to_string(),
                key: key_alg.to_string(),
            });
        }
        Ok(SshSig {
            key,
            namespace,
            reserved,
            hash,
            hash_name,
            signature,
        })
    }

    /// Verifies the signature over `payload` in `namespace`.
    ///
    /// Security-key signatures must carry the user-presence flag, as OpenSSH requires unless
    /// told otherwise.
    pub fn verify(&self, namespace: &str, payload: &[u8]) -> Result<(), SigError> {
        if self.namespace != namespace {
            return Err(SigError::Namespace {
                expected: namespace.to_owned(),
                found: self.namespace.clone(),
            });
        }
        let digest: Vec<u8> = match self.hash {
            HashAlg::Sha256 => Sha256::digest(payload).to_vec(),
            HashAlg::Sha512 => Sha512::digest(payload).to_vec(),
        };
        let mut signed = Vec::with_capacity(6 + 4 * 4 + namespace.len() + 80);
        signed.extend_from_slice(MAGIC);
        for field in [
            self.namespace.as_bytes(),
            &self.reserved,
            &self.hash_name,
            &digest,
        ] {
            signed.extend_from_slice(&(field.len() as u32).to_be_bytes());
            signed.extend_from_slice(field);
        }
        let key = self.key.key_data();
        key.verify(&signed, &self.signature)
            .map_err(|_| SigError::BadSignature)?;
        if matches!(
            self.signature.algorithm(),
            Algorithm::SkEd25519 | Algorithm::SkEcdsaSha2NistP256
        ) {
            // Trailer is flags (1 byte) then counter (4 bytes); bit 0 is user presence.
            let bytes = self.signature.as_bytes();
            let flags = bytes
                .len()
                .checked_sub(5)
                .map(|i| bytes[i])
                .ok_or(SigError::Malformed("security key signature too short"))?;
            if flags & 0x01 == 0 {
                return Err(SigError::NoUserPresence);
            }
        }
        Ok(())
    }
}

fn parse_key(blob: &[u8]) -> Result<SigningKey, SigError> {
    Reader(blob).string("public key algorithm")?;
    if is_certificate(blob) {
        return Ok(SigningKey::Certificate(Box::new(UserCertificate::parse(
            blob,
        )?)));
    }
    let key = ssh_key::PublicKey::from_bytes(blob).map_err(|e| SigError::Key(e.to_string()))?;
    let data = key.key_data().clone();
    if data.is_other() {
        return Err(SigError::Key(format!(
            "key type {} is not supported",
            data.algorithm()
        )));
    }
    Ok(SigningKey::Plain(data))
}

fn algorithm_fits(key: &Algorithm, sig: &Algorithm) -> bool {
    match (key, sig) {
        (Algorithm::Rsa { .. }, Algorithm::Rsa { hash }) => hash.is_some(),
        (k, s) => k == s,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rejects_text_without_armor() {
        assert_eq!(
            SshSig::from_armored(
                b"-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n"
            )
            .unwrap_err(),
            SigError::NotArmored
        );
    }

    #[test]
    fn rejects_oversized_armor() {
        let big = vec![b'A'; MAX_ARMORED + 1];
        assert!(matches!(
            SshSig::from_armored(&big),
            Err(SigError::TooLarge { .. })
        ));
    }

    #[test]
    fn rejects_truncated_blobs_without_panicking() {
        let mut blob = b"SSHSIG".to_vec();
        blob.extend_from_slice(&1u32.to_be_bytes());
        blob.extend_from_slice(&1000u32.to_be_bytes());
        for end in 0..blob.len() {
            assert!(SshSig::from_blob(&blob[..end]).is_err());
        }
        assert!(SshSig::from_blob(&blob).is_err());
    }

    #[test]
    fn rejects_wrong_version() {
        let mut blob = b"SSHSIG".to_vec();
        blob.extend_from_slice(&2u32.to_be_bytes());
        assert_eq!(SshSig::from_blob(&blob).unwrap_err(), SigError::Version(2));
    }

    fn string(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        out.extend_from_slice(bytes);
    }

    /// An SSHSIG made the way a FIDO authenticator makes one (OpenSSH PROTOCOL.u2f): the key
    /// signs SHA-256(application) || flags || counter || SHA-256(message), and the signature
    /// blob carries the flags and counter after the Ed25519 signature.
    fn security_key_signature(payload: &[u8], flags: u8) -> Vec<u8> {
        use ed25519_dalek::Signer;
        let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let alg = b"sk-ssh-ed25519@openssh.com";
        let application = b"ssh:";
        let mut key_blob = Vec::new();
        string(&mut key_blob, alg);
        string(&mut key_blob, key.verifying_key().as_bytes());
        string(&mut key_blob, application);
        let mut message = MAGIC.to_vec();
        string(&mut message, b"git");
        string(&mut message, b"");
        string(&mut message, b"sha512");
        string(&mut message, &Sha512::digest(payload));
        let counter = 7u32.to_be_bytes();
        let mut signed = Sha256::digest(application).to_vec();
        signed.push(flags);
        signed.extend_from_slice(&counter);
        signed.extend_from_slice(&Sha256::digest(&message));
        let sig = key.sign(&signed);
        let mut sig_blob = Vec::new();
        string(&mut sig_blob, alg);
        string(&mut sig_blob, &sig.to_bytes());
        sig_blob.push(flags);
        sig_blob.extend_from_slice(&counter);
        let mut blob = MAGIC.to_vec();
        blob.extend_from_slice(&1u32.to_be_bytes());
        string(&mut blob, &key_blob);
        string(&mut blob, b"git");
        string(&mut blob, b"");
        string(&mut blob, b"sha512");
        string(&mut blob, &sig_blob);
        blob
    }

    #[test]
    fn security_key_signature_with_user_presence_verifies() {
        let blob = security_key_signature(b"payload", 0x01);
        let sig = SshSig::from_blob(&blob).unwrap();
        assert!(sig.key.key_data().is_sk_ed25519());
        sig.verify("git", b"payload").unwrap();
        assert_eq!(
            sig.verify("git", b"payloaD").unwrap_err(),
            SigError::BadSignature
        );
    }

    #[test]
    fn security_key_signature_without_user_presence_is_refused() {
        let blob = security_key_signature(b"payload", 0x00);
        let sig = SshSig::from_blob(&blob).unwrap();
        assert_eq!(
            sig.verify("git", b"payload").unwrap_err(),
            SigError::NoUserPresence
        );
    }

    #[test]
    fn security_key_flags_are_covered_by_the_signature() {
        // Setting the presence bit after the fact breaks the signature.
        let mut blob = security_key_signature(b"payload", 0x00);
        let at = blob.len() - 5;
        blob[at] = 0x01;
        let sig = SshSig::from_blob(&blob).unwrap();
        assert_eq!(
            sig.verify("git", b"payload").unwrap_err(),
            SigError::BadSignature
        );
    }

    #[test]
    fn rejects_bad_base64() {
        let text = format!("{BEGIN}\n!!!!\n{END}\n");
        assert_eq!(
            SshSig::from_armored(text.as_bytes()).unwrap_err(),
            SigError::Base64
        );
    }
}

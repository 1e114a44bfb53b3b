//! SSHSIG signatures as git writes them with `gpg.format=ssh` (OpenSSH `PROTOCOL.sshsig`).
//!
//! The armored blob is:
//! `"SSHSIG" || uint32 version(1) || string publickey || string namespace || string reserved ||
//! string hash_algorithm || string signature`, and what the key signed is
//! `"SSHSIG" || string namespace || string reserved || string hash_algorithm || string H(payload)`.
//! The parser here is tally's own so that every field is checked with a precise error; the
//! cryptography is `ssh-key`'s.
//!
//! The armor must be exactly what `ssh-keygen -Y sign` writes (OpenSSH `sshsig.c:
//! sshsig_armor`, `sshbuf-misc.c: sshbuf_dtob64`): the BEGIN line, LF, the padded base64 of
//! the blob in lines of 70 characters (the last one 1 to 70) each ending in LF, the END line,
//! LF, and nothing else. `ssh-keygen -Y verify` reads more than that (`sshsig_dearmor` takes a
//! CRLF after BEGIN, skips whitespace in the base64 and ignores anything after END), and git
//! hands it the signature as written, so `git verify-commit` accepts a commit whose armor was
//! re-wrapped or had text appended. The signed payload does not cover the armor, so each such
//! copy is a new commit id under an old signature: tally refuses every one of them.

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

impl From<crate::wire::Truncated> for SigError {
    fn from(t: crate::wire::Truncated) -> SigError {
        SigError::Malformed(t.0)
    }
}

impl From<crate::certificate::CertificateError> for SigError {
    fn from(e: crate::certificate::CertificateError) -> SigError {
        match e {
            crate::certificate::CertificateError::Malformed(what) => SigError::Malformed(what),
            crate::certificate::CertificateError::Defect(d) => SigError::Certificate(d),
        }
    }
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
    /// The armor is not byte for byte what `ssh-keygen -Y sign` writes.
    #[error("signature armor is not as ssh-keygen writes it: {0}")]
    Armor(ArmorDefect),
    /// The decoded blob ends early or a field is malformed.
    #[error("malformed SSHSIG blob: {0}")]
    Malformed(&'static str),
    /// Version other than 1.
    #[error("unsupported SSHSIG version {0}")]
    Version(u32),
    /// Hash other than sha256/sha512.
    #[error("unsupported SSHSIG hash algorithm {0:?} (expected sha256 or sha512)")]
    Hash(String),
    /// Key blob unreadable.
    #[error("unsupported or malformed public key in signature: {0}")]
    Key(#[source] ssh_key::Error),
    /// Key of a type tally does not verify.
    #[error("unsupported or malformed public key in signature: key type {0} is not supported")]
    KeyType(ssh_key::Algorithm),
    /// The certificate in the signature cannot be used.
    #[error("unusable OpenSSH certificate in the signature: {0}")]
    Certificate(#[source] crate::certificate::CertificateDefect),
    /// Signature blob unreadable or of an unsupported algorithm.
    #[error("unsupported or malformed signature: {0}")]
    Signature(#[source] ssh_key::Error),
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

/// How an armored signature differs from what `ssh-keygen -Y sign` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArmorDefect {
    /// Bytes before the BEGIN line.
    #[error("text before the BEGIN line")]
    TextBeforeBegin,
    /// A CR anywhere (CRLF line endings).
    #[error("carriage return on line {line} (ssh-keygen writes LF only)")]
    CarriageReturn {
        /// Line of the armor, from 1 (the BEGIN line).
        line: usize,
    },
    /// No END line.
    #[error("no END line")]
    NoEnd,
    /// Bytes after the END line's LF, or no LF after it.
    #[error("text after the END line, or no newline ending it")]
    TextAfterEnd,
    /// A base64 line of another length than 70 (the last: 1 to 70).
    #[error("base64 line {line} is {length} characters (ssh-keygen writes lines of 70)")]
    LineLength {
        /// Line of the armor, from 1 (the BEGIN line).
        line: usize,
        /// Its length.
        length: usize,
    },
    /// The bits after the last full byte are not zero: another spelling of the same blob.
    #[error("the last base64 character has non-zero padding bits")]
    PaddingBits,
}

impl SshSig {
    /// Parses the armored signature text taken from a commit's `gpgsig` header, refusing any
    /// armor other than what `ssh-keygen -Y sign` writes.
    pub fn from_armored(text: &[u8]) -> Result<SshSig, SigError> {
        if text.len() > MAX_ARMORED {
            return Err(SigError::TooLarge { size: text.len() });
        }
        let b64 = dearmor(text)?;
        if !padding_bits_are_zero(&b64) {
            return Err(SigError::Armor(ArmorDefect::PaddingBits));
        }
        let b64 = std::str::from_utf8(&b64).map_err(|_| SigError::Base64)?;
        let blob = Base64::decode_vec(b64).map_err(|_| SigError::Base64)?;
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
        let signature = Signature::try_from(sig_blob).map_err(SigError::Signature)?;
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

/// Base64 characters per armor line (`sshbuf_dtob64` with `wrap`).
const LINE: usize = 70;

/// Checks that `text` is armor exactly as `ssh-keygen -Y sign` writes it and returns the
/// base64 text, its lines joined.
fn dearmor(text: &[u8]) -> Result<Vec<u8>, SigError> {
    let defect = SigError::Armor;
    let Some(rest) = text
        .strip_prefix(BEGIN.as_bytes())
        .and_then(|t| t.strip_prefix(b"\n"))
    else {
        return Err(if text.starts_with(format!("{BEGIN}\r").as_bytes()) {
            defect(ArmorDefect::CarriageReturn { line: 1 })
        } else if find(text, BEGIN.as_bytes()).is_some() {
            defect(ArmorDefect::TextBeforeBegin)
        } else {
            SigError::NotArmored
        });
    };
    if let Some(i) = rest.iter().position(|b| *b == b'\r') {
        let line = 2 + rest[..i].iter().filter(|b| **b == b'\n').count();
        return Err(defect(ArmorDefect::CarriageReturn { line }));
    }
    let Some(at) = find(rest, END.as_bytes()).filter(|at| *at == 0 || rest[at - 1] == b'\n') else {
        return Err(defect(ArmorDefect::NoEnd));
    };
    if &rest[at + END.len()..] != b"\n" {
        return Err(defect(ArmorDefect::TextAfterEnd));
    }
    let body = &rest[..at];
    let mut lines: Vec<&[u8]> = body.split(|b| *b == b'\n').collect();
    // The body ends in LF, so the split ends with an empty piece; an empty body has one.
    lines.pop();
    if lines.is_empty() {
        return Err(defect(ArmorDefect::LineLength { line: 2, length: 0 }));
    }
    let count = lines.len();
    for (i, line) in lines.iter().enumerate() {
        let fits = if i + 1 == count {
            (1..=LINE).contains(&line.len())
        } else {
            line.len() == LINE
        };
        if !fits {
            return Err(defect(ArmorDefect::LineLength {
                line: i + 2,
                length: line.len(),
            }));
        }
    }
    Ok(lines.concat())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Whether the unused low bits of the last base64 character before `=` padding are zero
/// (RFC 4648 section 3.5: canonical encoding). OpenSSH's `b64_pton` refuses them too.
fn padding_bits_are_zero(b64: &[u8]) -> bool {
    let pad = b64.iter().rev().take_while(|b| **b == b'=').count();
    let Some(&last) = b64.len().checked_sub(pad + 1).and_then(|i| b64.get(i)) else {
        return true;
    };
    let value = match last {
        b'A'..=b'Z' => last - b'A',
        b'a'..=b'z' => last - b'a' + 26,
        b'0'..=b'9' => last - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        // Not base64 at all: the decoder says so.
        _ => return true,
    };
    match pad {
        1 => value & 0b11 == 0,
        2 => value & 0b1111 == 0,
        _ => true,
    }
}

fn parse_key(blob: &[u8]) -> Result<SigningKey, SigError> {
    Reader(blob).string("public key algorithm")?;
    if is_certificate(blob) {
        return Ok(SigningKey::Certificate(Box::new(UserCertificate::parse(
            blob,
        )?)));
    }
    let key = ssh_key::PublicKey::from_bytes(blob).map_err(SigError::Key)?;
    let data = key.key_data().clone();
    if data.is_other() {
        return Err(SigError::KeyType(data.algorithm()));
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

    /// Armor around `blob` as `ssh-keygen -Y sign` writes it.
    fn armor(blob: &[u8], width: usize) -> String {
        let b64 = Base64::encode_string(blob);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(width)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!("{BEGIN}\n{}\n{END}\n", lines.join("\n"))
    }

    #[test]
    fn canonical_armor_parses() {
        let blob = security_key_signature(b"payload", 0x01);
        assert!(blob.len() > 2 * LINE, "several lines");
        SshSig::from_armored(armor(&blob, LINE).as_bytes()).unwrap();
    }

    /// Each way of re-spelling the same blob, refused with the defect it has.
    #[test]
    fn every_armor_defect_is_refused_by_name() {
        let blob = security_key_signature(b"payload", 0x01);
        let good = armor(&blob, LINE);
        let defect = |text: &str| match SshSig::from_armored(text.as_bytes()) {
            Err(SigError::Armor(d)) => d,
            other => panic!("{other:?} for {text:?}"),
        };
        assert_eq!(
            defect(&armor(&blob, 64)),
            ArmorDefect::LineLength {
                line: 2,
                length: 64
            }
        );
        assert_eq!(
            defect(&armor(&blob, 76)),
            ArmorDefect::LineLength {
                line: 2,
                length: 76
            }
        );
        assert_eq!(
            defect(&good.replace('\n', "\r\n")),
            ArmorDefect::CarriageReturn { line: 1 }
        );
        let third = good.match_indices('\n').nth(2).unwrap().0;
        let mut cr = good.clone();
        cr.insert(third, '\r');
        assert_eq!(defect(&cr), ArmorDefect::CarriageReturn { line: 3 });
        assert_eq!(defect(&format!("{good}x\n")), ArmorDefect::TextAfterEnd);
        assert_eq!(defect(good.trim_end()), ArmorDefect::TextAfterEnd);
        assert_eq!(defect(&format!("{good}\n")), ArmorDefect::TextAfterEnd);
        assert_eq!(defect(&format!("x\n{good}")), ArmorDefect::TextBeforeBegin);
        assert_eq!(defect(&format!(" {good}")), ArmorDefect::TextBeforeBegin);
        assert_eq!(defect(&good.replace(END, "")), ArmorDefect::NoEnd);
        assert_eq!(
            defect(&good.replace(&format!("\n{END}"), END)),
            ArmorDefect::NoEnd
        );
        let blank = good.replacen('\n', "\n\n", 2).replacen("\n\n", "\n", 1);
        assert!(matches!(
            defect(&blank),
            ArmorDefect::LineLength { length: 0, .. }
        ));
        assert_eq!(
            defect(&format!("{BEGIN}\n{END}\n")),
            ArmorDefect::LineLength { line: 2, length: 0 }
        );
    }

    #[test]
    fn non_zero_padding_bits_are_refused() {
        // 121 bytes: one '=' of padding, two spare bits in the last character.
        let mut blob = security_key_signature(b"payload", 0x01);
        blob.truncate(121);
        let good = armor(&blob, LINE);
        assert!(good.contains("=\n"));
        let at = good.find('=').unwrap() - 1;
        let mut bad = good.into_bytes();
        bad[at] += 1;
        assert_eq!(
            SshSig::from_armored(&bad).unwrap_err(),
            SigError::Armor(ArmorDefect::PaddingBits)
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

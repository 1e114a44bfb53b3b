//! Signed checkpoints: the ledger's tree head as a C2SP `tlog-checkpoint`, signed as a C2SP
//! `signed-note` with the ledger's ed25519 key, plus a C2SP `tlog-cosignature` (`cosignature/v1`)
//! from the same key that states when it was signed.
//!
//! A checkpoint note looks like this (the body is three lines; the blank line separates the
//! signatures):
//!
//! ```text
//! tally/0f6c2f4e-example
//! 42
//! 3eGQeM1s0YH5mAAbPyqKBcWdkS4Oxb0fZ5c0kk0WJYU=
//!
//! — tally/0f6c2f4e-example Ab3d9Ysq...(base64 of key ID || 64-byte signature)
//! — tally/0f6c2f4e-example cjq1bwAAAABpVdeA...(base64 of key ID || u64 time || signature)
//! ```
//!
//! - The first signature line is an Ed25519 note signature (signature type 0x01) over the body;
//!   key ID = `SHA-256(name || 0x0A || 0x01 || public key)[:4]`.
//! - The second is a timestamped `cosignature/v1` (signature type 0x04) over
//!   `cosignature/v1\ntime <unix seconds>\n` followed by the body; key ID =
//!   `SHA-256(name || 0x0A || 0x04 || public key)[:4]`; the signature is the `u64` big-endian
//!   time followed by the Ed25519 signature. The checkpoint body carries no time, so this is
//!   what lets an agent refuse a stale head (c2sp.org/tlog-cosignature).
//!
//! The key name is the checkpoint's origin (`tally/<repository id>`), as c2sp.org/tlog-checkpoint
//! recommends, and [`SignedCheckpoint::verify`] requires it: a checkpoint of another ledger
//! signed by the same key does not verify for this one.

use std::fmt;
use std::str::FromStr;

use base64ct::{Base64, Encoding};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::hex;
use crate::merkle::Hash;

/// The largest note [`SignedCheckpoint::parse`] reads, in bytes.
pub const MAX_NOTE_LEN: usize = 64 * 1024;

/// The most signature lines [`SignedCheckpoint::parse`] reads (C2SP signed-note asks verifiers to
/// accept at least 16).
pub const MAX_SIGNATURES: usize = 64;

/// The longest origin (and key name) accepted, in bytes.
pub const MAX_ORIGIN_LEN: usize = 1024;

/// Signature type of Ed25519 note signatures (c2sp.org/signed-note).
const TYPE_ED25519: u8 = 0x01;
/// Signature type of timestamped Ed25519 cosignatures (c2sp.org/tlog-cosignature).
const TYPE_COSIGNATURE: u8 = 0x04;
/// The header line of the `cosignature/v1` signed message.
const COSIGNATURE_HEADER: &str = "cosignature/v1\n";
/// The em dash (U+2014) and space that open a signature line.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// Why a checkpoint could not be made, read or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The origin (the key name) is empty, too long, or contains a space, a `+` or a control
    /// character.
    #[error(
        "invalid origin {origin:?}: it must be non-empty, at most {MAX_ORIGIN_LEN} bytes, without spaces, '+' or control characters"
    )]
    BadOrigin {
        /// The origin given.
        origin: String,
    },
    /// The note is larger than [`MAX_NOTE_LEN`].
    #[error("checkpoint note of {len} bytes exceeds the limit of {MAX_NOTE_LEN}")]
    TooLarge {
        /// Its length.
        len: usize,
    },
    /// The note contains a control character other than newline.
    #[error("checkpoint note contains control character {byte:#04x} at byte {offset}")]
    ControlCharacter {
        /// The byte.
        byte: u8,
        /// Where.
        offset: usize,
    },
    /// The note has no blank line separating the text from signature lines, or does not end
    /// with a newline.
    #[error("not a signed note: no blank line before signature lines, or no final newline")]
    NotANote,
    /// The checkpoint body is not exactly origin, size and root hash lines.
    #[error("checkpoint body must be exactly three lines (origin, size, root hash), found {lines}")]
    BadBody {
        /// How many lines the body has.
        lines: usize,
    },
    /// The size line is not a canonical decimal `u64`.
    #[error("checkpoint size {line:?} is not a decimal number without leading zeros")]
    BadSize {
        /// The line.
        line: String,
    },
    /// The root line is not the canonical base64 of 32 bytes.
    #[error("checkpoint root hash {line:?} is not the base64 of 32 bytes")]
    BadRoot {
        /// The line.
        line: String,
    },
    /// A signature line is malformed.
    #[error("malformed signature line {number}: {line:?}")]
    BadSignatureLine {
        /// Its number among the signature lines, from 1.
        number: usize,
        /// The line.
        line: String,
    },
    /// The note has more than [`MAX_SIGNATURES`] signature lines.
    #[error("checkpoint note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    /// The checkpoint's origin is not the verifier key's name.
    #[error("checkpoint origin {origin:?} is not the ledger key's name {key_name:?}")]
    OriginMismatch {
        /// The checkpoint's origin.
        origin: String,
        /// The verifier key's name.
        key_name: String,
    },
    /// The note carries no signature from the ledger key: signed by another key (a wrong
    /// `--ledger-key`, or a forgery), or not at all.
    #[error(
        "checkpoint is not signed by the ledger key {key} (named {key_name}); it carries {}",
        signers(.found)
    )]
    MissingSignature {
        /// The key's name.
        key_name: String,
        /// The key's fingerprint, `SHA256:...`.
        key: String,
        /// The signature lines it does carry, as `<name> key ID <hex>` (a note names a key by
        /// its 4-byte key ID only, so that is all that can be said of another key).
        found: Vec<String>,
    },
    /// The note carries no timestamped cosignature from the ledger key.
    #[error(
        "checkpoint has no timestamp (cosignature/v1) from the ledger key {key} (named {key_name})"
    )]
    MissingTimestamp {
        /// The key's name.
        key_name: String,
        /// The key's fingerprint, `SHA256:...`.
        key: String,
    },
    /// A signature line from the ledger key does not verify.
    #[error("checkpoint signature by the ledger key {key} (named {key_name}) does not verify")]
    BadSignature {
        /// The key's name.
        key_name: String,
        /// The key's fingerprint, `SHA256:...`.
        key: String,
    },
    /// A timestamp cosignature from the ledger key does not verify, or its time is out of range.
    #[error(
        "checkpoint timestamp (cosignature/v1) by the ledger key {key} (named {key_name}) does not verify"
    )]
    BadTimestamp {
        /// The key's name.
        key_name: String,
        /// The key's fingerprint, `SHA256:...`.
        key: String,
    },
    /// The ledger key signed the note more than once with the same signature type.
    #[error("checkpoint carries more than one {what} from the ledger key")]
    DuplicateSignature {
        /// `signature` or `timestamp`.
        what: &'static str,
    },
    /// A time above 2^63 - 1 was asked to be signed.
    #[error("time {time} is out of range (at most 2^63 - 1)")]
    TimeOutOfRange {
        /// The time.
        time: u64,
    },
    /// A verifier key string is malformed.
    #[error(
        "malformed verifier key {key:?}: expected <name>+<8 hex digits>+<base64 of 0x01 || ed25519 key>"
    )]
    BadVerifierKey {
        /// The string.
        key: String,
    },
    /// A verifier key string's key ID does not match its name and key.
    #[error("verifier key {key:?} has key ID {found}, but its name and key give {expected}")]
    VerifierKeyIdMismatch {
        /// The string.
        key: String,
        /// The key ID it states.
        found: String,
        /// The key ID computed.
        expected: String,
    },
}

/// Describes the signature lines a note carries, for [`CheckpointError::MissingSignature`].
fn signers(found: &[String]) -> String {
    match found {
        [] => "no signature".to_owned(),
        [one] => format!("a signature by {one}"),
        more => format!("signatures by {}", more.join(", ")),
    }
}

/// A Merkle tree head: what a checkpoint note's body states.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    /// The log's identity, `tally/<repository id>`; also the signing key's name.
    pub origin: String,
    /// The number of entries.
    pub size: u64,
    /// The RFC 6962 root of those entries.
    pub root: Hash,
}

impl Checkpoint {
    /// Returns the note body: origin, decimal size and base64 root, each ending in a newline.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            Base64::encode_string(&self.root)
        )
    }

    /// Signs the checkpoint with the ledger key: an Ed25519 note signature and a
    /// `cosignature/v1` timestamp for `time` (unix seconds), both under the key name `origin`.
    pub fn sign(&self, time: u64, key: &SigningKey) -> Result<SignedCheckpoint, CheckpointError> {
        check_origin(&self.origin)?;
        if time > i64::MAX as u64 {
            return Err(CheckpointError::TimeOutOfRange { time });
        }
        let body = self.body();
        let public = key.verifying_key();
        let name = &self.origin;

        let mut note_sig = key_id(name, TYPE_ED25519, &public).to_vec();
        note_sig.extend_from_slice(&key.sign(body.as_bytes()).to_bytes());

        let mut cosig = key_id(name, TYPE_COSIGNATURE, &public).to_vec();
        cosig.extend_from_slice(&time.to_be_bytes());
        cosig.extend_from_slice(
            &key.sign(cosigned_message(time, &body).as_bytes())
                .to_bytes(),
        );

        let text = format!(
            "{body}\n{SIGNATURE_PREFIX}{name} {}\n{SIGNATURE_PREFIX}{name} {}\n",
            Base64::encode_string(&note_sig),
            Base64::encode_string(&cosig),
        );
        SignedCheckpoint::parse(&text)
    }
}

/// One signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
struct NoteSignature {
    name: String,
    key_id: [u8; 4],
    /// The bytes after the key ID.
    signature: Vec<u8>,
}

/// A checkpoint note as read, not yet verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    text: String,
    body_len: usize,
    checkpoint: Checkpoint,
    signatures: Vec<NoteSignature>,
}

impl SignedCheckpoint {
    /// Parses a checkpoint note strictly (C2SP signed-note and tlog-checkpoint): at most
    /// [`MAX_NOTE_LEN`] bytes, no control characters but newline, a three-line body, canonical
    /// size and root, and well-formed signature lines. Extension lines are refused: tally never
    /// writes them.
    pub fn parse(text: &str) -> Result<SignedCheckpoint, CheckpointError> {
        if text.len() > MAX_NOTE_LEN {
            return Err(CheckpointError::TooLarge { len: text.len() });
        }
        if let Some(offset) = text.bytes().position(|b| b < 0x20 && b != b'\n') {
            return Err(CheckpointError::ControlCharacter {
                byte: text.as_bytes()[offset],
                offset,
            });
        }
        if !text.ends_with('\n') {
            return Err(CheckpointError::NotANote);
        }
        // The text is separated from the signatures by the last blank line.
        let split = text.rfind("\n\n").ok_or(CheckpointError::NotANote)?;
        let body = &text[..split + 1];
        let block = &text[split + 2..];
        if block.is_empty() {
            return Err(CheckpointError::NotANote);
        }

        let mut signatures = Vec::new();
        for (i, line) in block.split_terminator('\n').enumerate() {
            if signatures.len() == MAX_SIGNATURES {
                return Err(CheckpointError::TooManySignatures);
            }
            let bad = || CheckpointError::BadSignatureLine {
                number: i + 1,
                line: line.to_owned(),
            };
            let rest = line.strip_prefix(SIGNATURE_PREFIX).ok_or_else(bad)?;
            let (name, encoded) = rest.split_once(' ').ok_or_else(bad)?;
            if check_origin(name).is_err() {
                return Err(bad());
            }
            let raw = decode_base64(encoded).ok_or_else(bad)?;
            let Some((id, signature)) = raw.split_first_chunk::<4>() else {
                return Err(bad());
            };
            if signature.is_empty() {
                return Err(bad());
            }
            signatures.push(NoteSignature {
                name: name.to_owned(),
                key_id: *id,
                signature: signature.to_vec(),
            });
        }

        let lines: Vec<&str> = body.split_terminator('\n').collect();
        let [origin, size, root] = lines[..] else {
            return Err(CheckpointError::BadBody { lines: lines.len() });
        };
        check_origin(origin)?;
        let size_ok = !size.is_empty()
            && size.bytes().all(|b| b.is_ascii_digit())
            && (size == "0" || !size.starts_with('0'));
        let size = size
            .parse::<u64>()
            .ok()
            .filter(|_| size_ok)
            .ok_or_else(|| CheckpointError::BadSize {
                line: size.to_owned(),
            })?;
        let root: Hash = decode_base64(root)
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| CheckpointError::BadRoot {
                line: root.to_owned(),
            })?;

        Ok(SignedCheckpoint {
            text: text.to_owned(),
            body_len: body.len(),
            checkpoint: Checkpoint {
                origin: origin.to_owned(),
                size,
                root,
            },
            signatures,
        })
    }

    /// The note text, exactly as signed and stored.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// What the note claims, *before* any signature is checked. Trust only what
    /// [`SignedCheckpoint::verify`] returns.
    pub fn unverified(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Verifies the note against the ledger's verifier key: the origin must be the key's name;
    /// exactly one Ed25519 signature and exactly one `cosignature/v1` timestamp from the key must
    /// be present and valid. Signature lines of other keys are ignored (C2SP signed-note), but
    /// any line that names this key and its key ID and fails to verify rejects the note.
    pub fn verify(&self, key: &VerifierKey) -> Result<VerifiedCheckpoint, CheckpointError> {
        let parts = self.signatures_for(key)?;
        key.key
            .verify_strict(parts.body.as_bytes(), &parts.signature)
            .map_err(|_| CheckpointError::BadSignature {
                key_name: key.name.clone(),
                key: key.fingerprint(),
            })?;
        key.key
            .verify_strict(parts.cosigned.as_bytes(), &parts.timestamp)
            .map_err(|_| CheckpointError::BadTimestamp {
                key_name: key.name.clone(),
                key: key.fingerprint(),
            })?;
        Ok(self.verified(parts.time))
    }

    /// Verifies many notes against one key, as [`SignedCheckpoint::verify`] does each, with one
    /// batch equation over all their signatures (ed25519-dalek's `verify_batch`, about three
    /// times cheaper per signature): `tally ledger verify` checks every checkpoint ever
    /// signed, one or more per push. If the batch fails, or a note is malformed, the notes are
    /// verified one by one, so the error and the index of the first bad note are exactly what
    /// `verify` reports.
    pub fn verify_all(
        notes: &[SignedCheckpoint],
        key: &VerifierKey,
    ) -> Result<Vec<VerifiedCheckpoint>, (usize, CheckpointError)> {
        let one_by_one = || {
            notes
                .iter()
                .enumerate()
                .map(|(i, n)| n.verify(key).map_err(|e| (i, e)))
                .collect()
        };
        // verify_strict refuses weak keys; the batch equation does not look.
        if key.key.is_weak() {
            return one_by_one();
        }
        let mut parts = Vec::with_capacity(notes.len());
        for note in notes {
            match note.signatures_for(key) {
                Ok(p) => parts.push(p),
                Err(_) => return one_by_one(),
            }
        }
        let mut messages: Vec<&[u8]> = Vec::with_capacity(2 * parts.len());
        let mut signatures = Vec::with_capacity(2 * parts.len());
        for p in &parts {
            messages.push(p.body.as_bytes());
            signatures.push(p.signature);
            messages.push(p.cosigned.as_bytes());
            signatures.push(p.timestamp);
        }
        let keys = vec![key.key; signatures.len()];
        if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_err() {
            return one_by_one();
        }
        Ok(notes
            .iter()
            .zip(&parts)
            .map(|(note, p)| note.verified(p.time))
            .collect())
    }

    /// The signature and the timestamp cosignature this note carries for `key`, checked for
    /// form (origin, one of each, lengths, time range) but not verified.
    fn signatures_for(&self, key: &VerifierKey) -> Result<Parts<'_>, CheckpointError> {
        if self.checkpoint.origin != key.name {
            return Err(CheckpointError::OriginMismatch {
                origin: self.checkpoint.origin.clone(),
                key_name: key.name.clone(),
            });
        }
        let body = &self.text[..self.body_len];
        let note_id = key.key_id();
        let cosig_id = key.cosignature_key_id();
        let mut signature = None;
        let mut timestamp = None;
        for sig in self.signatures.iter().filter(|s| s.name == key.name) {
            if sig.key_id == note_id {
                if signature.is_some() {
                    return Err(CheckpointError::DuplicateSignature { what: "signature" });
                }
                let bytes: [u8; 64] = sig.signature.as_slice().try_into().map_err(|_| {
                    CheckpointError::BadSignature {
                        key_name: key.name.clone(),
                        key: key.fingerprint(),
                    }
                })?;
                signature = Some(Signature::from_bytes(&bytes));
            } else if sig.key_id == cosig_id {
                if timestamp.is_some() {
                    return Err(CheckpointError::DuplicateSignature { what: "timestamp" });
                }
                let bad = || CheckpointError::BadTimestamp {
                    key_name: key.name.clone(),
                    key: key.fingerprint(),
                };
                let (stamp, bytes) = sig.signature.split_first_chunk::<8>().ok_or_else(bad)?;
                let stamp = u64::from_be_bytes(*stamp);
                if stamp > i64::MAX as u64 {
                    return Err(bad());
                }
                let bytes: [u8; 64] = bytes.try_into().map_err(|_| bad())?;
                timestamp = Some((stamp, Signature::from_bytes(&bytes)));
            }
        }
        let Some(signature) = signature else {
            let found = self
                .signatures
                .iter()
                .map(|s| format!("{} key ID {}", s.name, crate::hex::encode(&s.key_id)))
                .collect();
            return Err(CheckpointError::MissingSignature {
                key_name: key.name.clone(),
                key: key.fingerprint(),
                found,
            });
        };
        let Some((time, timestamp)) = timestamp else {
            return Err(CheckpointError::MissingTimestamp {
                key_name: key.name.clone(),
                key: key.fingerprint(),
            });
        };
        Ok(Parts {
            body,
            signature,
            cosigned: cosigned_message(time, body),
            time,
            timestamp,
        })
    }

    fn verified(&self, time: u64) -> VerifiedCheckpoint {
        VerifiedCheckpoint {
            checkpoint: self.checkpoint.clone(),
            time,
        }
    }
}

/// A note's signatures for one key, before verification.
struct Parts<'a> {
    body: &'a str,
    signature: Signature,
    cosigned: String,
    time: u64,
    timestamp: Signature,
}

impl fmt::Display for SignedCheckpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A checkpoint whose signature and timestamp verified; only [`SignedCheckpoint::verify`] makes
/// one, so holding one proves the check was done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    checkpoint: Checkpoint,
    time: u64,
}

impl VerifiedCheckpoint {
    /// The log's origin.
    pub fn origin(&self) -> &str {
        &self.checkpoint.origin
    }

    /// The number of entries.
    pub fn size(&self) -> u64 {
        self.checkpoint.size
    }

    /// The Merkle root of those entries.
    pub fn root(&self) -> &Hash {
        &self.checkpoint.root
    }

    /// When the ledger key signed it, in unix seconds (from the `cosignature/v1` timestamp).
    pub fn time(&self) -> u64 {
        self.time
    }

    /// The tree head.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }
}

/// A public key that verifies checkpoints: a key name (the ledger's origin) and an Ed25519
/// public key. Its string form is C2SP's verifier key, `<name>+<hex key ID>+<base64(0x01 ||
/// public key)>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    key: VerifyingKey,
}

impl VerifierKey {
    /// Makes a verifier key from a name (the ledger's origin) and a public key.
    pub fn new(name: &str, key: VerifyingKey) -> Result<VerifierKey, CheckpointError> {
        check_origin(name)?;
        Ok(VerifierKey {
            name: name.to_owned(),
            key,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The public key.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }

    /// The public key's OpenSSH fingerprint, `SHA256:...`: how messages name the key.
    pub fn fingerprint(&self) -> String {
        crate::key::fingerprint(&self.key)
    }

    /// The key ID of its Ed25519 note signatures.
    pub fn key_id(&self) -> [u8; 4] {
        key_id(&self.name, TYPE_ED25519, &self.key)
    }

    /// The key ID of its `cosignature/v1` timestamps.
    pub fn cosignature_key_id(&self) -> [u8; 4] {
        key_id(&self.name, TYPE_COSIGNATURE, &self.key)
    }

    /// Parses `<name>+<hex key ID>+<base64(0x01 || public key)>`, checking the key ID.
    pub fn parse(text: &str) -> Result<VerifierKey, CheckpointError> {
        let bad = || CheckpointError::BadVerifierKey {
            key: text.to_owned(),
        };
        // The name and the hex key ID contain no '+'; the base64 key may.
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(id), Some(encoded)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        check_origin(name).map_err(|_| bad())?;
        let id: [u8; 4] = (id.len() == 8)
            .then(|| hex::decode_lower(id))
            .flatten()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(bad)?;
        let raw = decode_base64(encoded).ok_or_else(bad)?;
        let Some((&TYPE_ED25519, public)) = raw.split_first() else {
            return Err(bad());
        };
        let public: [u8; 32] = public.try_into().map_err(|_| bad())?;
        let key = VerifyingKey::from_bytes(&public).map_err(|_| bad())?;
        let vkey = VerifierKey {
            name: name.to_owned(),
            key,
        };
        let expected = vkey.key_id();
        if id != expected {
            return Err(CheckpointError::VerifierKeyIdMismatch {
                key: text.to_owned(),
                found: hex::encode(&id),
                expected: hex::encode(&expected),
            });
        }
        Ok(vkey)
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = vec![TYPE_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        write!(
            f,
            "{}+{}+{}",
            self.name,
            hex::encode(&self.key_id()),
            Base64::encode_string(&raw)
        )
    }
}

impl FromStr for VerifierKey {
    type Err = CheckpointError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VerifierKey::parse(s)
    }
}

/// Checks an origin or key name: non-empty, bounded, no Unicode space, no `+`, no control
/// character (C2SP signed-note key names; tlog-checkpoint recommends the same for origins).
fn check_origin(origin: &str) -> Result<(), CheckpointError> {
    let ok = !origin.is_empty()
        && origin.len() <= MAX_ORIGIN_LEN
        && !origin
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(CheckpointError::BadOrigin {
            origin: origin.to_owned(),
        })
    }
}

/// `SHA-256(name || 0x0A || type || public key)[:4]` (c2sp.org/signed-note).
fn key_id(name: &str, signature_type: u8, key: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', signature_type]);
    h.update(key.as_bytes());
    let digest = h.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// The message a `cosignature/v1` signs: header, time line, then the checkpoint body.
fn cosigned_message(time: u64, body: &str) -> String {
    format!("{COSIGNATURE_HEADER}time {time}\n{body}")
}

/// Decodes standard padded base64, accepting only its canonical form.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let raw = Base64::decode_vec(text).ok()?;
    (Base64::encode_string(&raw) == text).then_some(raw)
}

#[cfg(test)]
mod tests;

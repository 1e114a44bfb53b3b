//! Deciding whether a commit's signature comes from a trusted signer.
//!
//! Git's own check (`gpg-interface.c`, `ssh-keygen -Y verify`) judges the key's validity at the
//! committer date only, which the signer writes, does not bind the signer to the committer, and
//! only warns when a configured revocation file is missing. tally closes each of those: the
//! validity window must hold at the committer date **and** at the time of the check, the signing
//! principal must match the committer email, and a configured revocation file must exist.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use ssh_key::{HashAlg, public::KeyData};

use crate::certificate::UserCertificate;
use crate::commit::{Commit, SignatureHeader};
use crate::refusal::Rewrite;
use crate::signers::{AllowedSigners, SignerEntry, SignersError, Validity};
use crate::sshsig::{SigError, SigningKey, SshSig};

/// The namespace git signs commits in.
pub const GIT_NAMESPACE: &str = "git";

/// Public keys that must not be trusted any more, whatever allowed_signers says.
#[derive(Debug, Clone, Default)]
pub struct Revoked {
    keys: HashSet<Vec<u8>>,
}

/// Why the revocation file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevokedError {
    /// Configured but absent or unreadable; failing closed.
    #[error(
        "revocation file {path} cannot be read ({source}); restore it or remove revocation_file from the policy"
    )]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not an OpenSSH public key.
    #[error(
        "revocation file {path} line {line}: not an OpenSSH public key ({reason}); write one public key per line, as in a .pub file"
    )]
    BadLine {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Why.
        reason: String,
    },
}

impl Revoked {
    /// Reads a plain list of OpenSSH public keys, one per line; `#` comments and blank lines
    /// are skipped.
    pub fn load(path: &Path) -> Result<Revoked, RevokedError> {
        let bytes = std::fs::read(path).map_err(|source| RevokedError::Io {
            path: path.to_owned(),
            source,
        })?;
        Revoked::from_bytes(path, &bytes)
    }

    /// Parses the bytes of the revocation file at `path` (named in errors).
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Revoked, RevokedError> {
        let text = std::str::from_utf8(bytes).map_err(|_| RevokedError::BadLine {
            path: path.to_owned(),
            line: 0,
            reason: "file is not UTF-8 text (binary KRLs are not supported)".into(),
        })?;
        Revoked::parse(text).map_err(|(line, reason)| RevokedError::BadLine {
            path: path.to_owned(),
            line,
            reason,
        })
    }

    /// Parses the text of a revocation list; the error is (line, reason).
    pub fn parse(text: &str) -> Result<Revoked, (usize, String)> {
        let mut keys = HashSet::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = ssh_key::PublicKey::from_openssh(line).map_err(|e| (i + 1, e.to_string()))?;
            keys.insert(key_blob(key.key_data()));
        }
        Ok(Revoked { keys })
    }

    /// Whether `key` is revoked.
    pub fn contains(&self, key: &KeyData) -> bool {
        !self.keys.is_empty() && self.keys.contains(&key_blob(key))
    }
}

fn key_blob(key: &KeyData) -> Vec<u8> {
    // Fingerprints are hashes of the wire blob; comparing the SHA-256 fingerprint is
    // equivalent and needs no encoder.
    key.fingerprint(HashAlg::Sha256).as_bytes().to_vec()
}

/// Who is trusted to sign: the allowed signers and the revoked keys.
#[derive(Debug, Clone)]
pub struct Trust {
    signers: AllowedSigners,
    revoked: Revoked,
}

/// A verified signer of one commit: the proof that the signature check passed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
///
/// Only this module's checks make one (private fields): holding a `Signer` means a signature
/// verified against the allowed signers.
pub struct Signer {
    principal: String,
    fingerprint: String,
    key_type: String,
    certificate_authority: Option<String>,
}

impl Signer {
    /// The principal the signature was accepted for (the committer email).
    pub fn principal(&self) -> &str {
        &self.principal
    }

    /// `SHA256:...` fingerprint of the signing key.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The key type (`ssh-ed25519`, ...).
    pub fn key_type(&self) -> &str {
        &self.key_type
    }

    /// For a certificate: the fingerprint of the CA that issued it.
    pub fn certificate_authority(&self) -> Option<&str> {
        self.certificate_authority.as_deref()
    }
}

/// Which moment a validity window was checked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// The committer date written in the commit.
    CommitDate,
    /// The time of the check (push or deployment).
    Now,
}

impl std::fmt::Display for When {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            When::CommitDate => "at the committer date",
            When::Now => "now",
        })
    }
}

/// Why a commit's signature is not accepted. Each message names the key and what to do.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureProblem {
    /// No signature header at all.
    #[error("commit is not signed")]
    Unsigned,
    /// An OpenPGP or X.509 signature.
    #[error("commit has an {kind} signature; tally accepts SSH signatures only")]
    NotSsh {
        /// `OpenPGP`, `X.509` or `unknown`.
        kind: &'static str,
    },
    /// More than one signature header (a signature-malleability trick).
    #[error("commit has {count} signature headers; exactly one is allowed")]
    MultipleHeaders {
        /// How many.
        count: usize,
    },
    /// Only a signature header for the other object hash, which git ignores.
    #[error("commit carries only a {header} header, which git ignores in this repository")]
    OtherAlgorithm {
        /// The header.
        header: String,
    },
    /// The SSHSIG blob is unreadable or its cryptography fails.
    #[error("{0}")]
    Signature(SigError),
    /// The key is not in allowed_signers.
    #[error("signing key {fingerprint} is not in allowed_signers")]
    UnknownKey {
        /// Key fingerprint.
        fingerprint: String,
    },
    /// The key is listed, but not for the committer's email.
    #[error(
        "signing key {fingerprint} is allowed for {principals:?}, not for the committer {committer}"
    )]
    PrincipalMismatch {
        /// Key fingerprint.
        fingerprint: String,
        /// The principals pattern of the matching allowed_signers line(s).
        principals: String,
        /// The committer email.
        committer: String,
    },
    /// The allowed_signers line restricts namespaces and excludes `git`.
    #[error(
        "signing key {fingerprint} is not allowed to sign in namespace \"git\" (allowed_signers line {line})"
    )]
    Namespace {
        /// Key fingerprint.
        fingerprint: String,
        /// allowed_signers line.
        line: usize,
    },
    /// The validity window does not hold.
    #[error("signing key {fingerprint} is not valid {when}: {validity}")]
    OutsideValidity {
        /// Key fingerprint.
        fingerprint: String,
        /// Commit date or now.
        when: When,
        /// Which bound failed.
        validity: Validity,
    },
    /// The key is in the revocation file.
    #[error("signing key {fingerprint} is revoked")]
    Revoked {
        /// Key fingerprint.
        fingerprint: String,
    },
    /// The certificate's CA is not a cert-authority in allowed_signers.
    #[error(
        "certificate for key {fingerprint} is issued by {ca}, which is not a cert-authority in allowed_signers"
    )]
    UntrustedAuthority {
        /// Key fingerprint.
        fingerprint: String,
        /// CA fingerprint.
        ca: String,
    },
    /// The certificate itself is unusable.
    #[error("certificate for key {fingerprint} is not acceptable: {reason}")]
    BadCertificate {
        /// Key fingerprint.
        fingerprint: String,
        /// Why.
        reason: String,
    },
}

impl SignatureProblem {
    /// What the committer should do about it, in one line; `rewrite` says which commits the
    /// re-signing command must reach (the tip alone, or a rebase from the real base commit).
    pub fn fix(&self, rewrite: &Rewrite) -> String {
        let resign = || rewrite.amend("git commit --amend --no-edit -S");
        match self {
            SignatureProblem::Unsigned | SignatureProblem::OtherAlgorithm { .. } => format!(
                "set up SSH signing once: git config gpg.format ssh; git config user.signingkey ~/.ssh/id_ed25519.pub; then re-sign: {}",
                resign()
            ),
            SignatureProblem::NotSsh { .. } => format!(
                "switch to SSH signing: git config gpg.format ssh; git config user.signingkey ~/.ssh/id_ed25519.pub; git config commit.gpgsign true; then re-sign: {}",
                resign()
            ),
            SignatureProblem::Signature(SigError::Certificate(_)) => format!(
                "issue the certificate with a validity period (ssh-keygen -s <ca-key> -I <id> -n <email> -V +52w <key.pub>), then re-sign: {}",
                resign()
            ),
            SignatureProblem::Signature(SigError::Armor(_)) => format!(
                "push the commit exactly as git wrote it; a signature re-wrapped or re-encoded after signing gives the commit a new id, so re-sign: {}",
                resign()
            ),
            SignatureProblem::MultipleHeaders { .. } | SignatureProblem::Signature(_) => {
                format!("re-sign: {}", resign())
            }
            SignatureProblem::UnknownKey { .. } => {
                "sign with a key listed in the repository's allowed_signers, or ask an administrator to add yours".into()
            }
            SignatureProblem::PrincipalMismatch { .. } => format!(
                "commit with the email your key is registered for (git config user.email), then: {}",
                rewrite.amend("git commit --amend --no-edit --reset-author -S")
            ),
            SignatureProblem::Namespace { .. } => {
                "ask an administrator to allow namespace \"git\" for this key in allowed_signers".into()
            }
            SignatureProblem::OutsideValidity { .. } | SignatureProblem::Revoked { .. } => format!(
                "re-sign with a current key: {} (an administrator updates allowed_signers for new keys)",
                resign()
            ),
            SignatureProblem::UntrustedAuthority { .. }
            | SignatureProblem::BadCertificate { .. } => {
                "sign with a valid certificate from a cert-authority listed in allowed_signers, or with a plain listed key".into()
            }
        }
    }
}

/// Classifies a non-SSH signature by its armor, for a useful refusal.
fn foreign_kind(signature: &[u8]) -> &'static str {
    let s = signature.trim_ascii_start();
    if s.starts_with(b"-----BEGIN PGP SIGNATURE-----") {
        "OpenPGP"
    } else if s.starts_with(b"-----BEGIN SIGNED MESSAGE-----") {
        "X.509"
    } else {
        "unknown"
    }
}

impl Trust {
    /// Trust these signers, minus these revoked keys.
    pub fn new(signers: AllowedSigners, revoked: Revoked) -> Trust {
        Trust { signers, revoked }
    }

    /// The allowed signers in force.
    pub fn signers(&self) -> &AllowedSigners {
        &self.signers
    }

    /// Checks the signature of `commit` as of `now`.
    pub fn check(&self, commit: &Commit, now: Timestamp) -> Result<Signer, SignatureProblem> {
        let (signature, payload) = match &commit.signature {
            SignatureHeader::Unsigned => return Err(SignatureProblem::Unsigned),
            SignatureHeader::Multiple { count } => {
                return Err(SignatureProblem::MultipleHeaders { count: *count });
            }
            SignatureHeader::OtherAlgorithm { header } => {
                return Err(SignatureProblem::OtherAlgorithm {
                    header: header.clone(),
                });
            }
            SignatureHeader::One { signature, payload } => (signature, payload),
        };
        // Armor with text before it is still SSH armor, refused for that text by the parser.
        let begin = crate::sshsig::BEGIN.as_bytes();
        if !signature.windows(begin.len()).any(|w| w == begin) {
            return Err(SignatureProblem::NotSsh {
                kind: foreign_kind(signature),
            });
        }
        let sig = SshSig::from_armored(signature).map_err(SignatureProblem::Signature)?;
        sig.verify(GIT_NAMESPACE, payload)
            .map_err(SignatureProblem::Signature)?;
        let commit_time = Timestamp::from_second(commit.committer.seconds).map_err(|_| {
            SignatureProblem::Signature(SigError::Malformed("committer date out of range"))
        })?;
        let email = &commit.committer.email;
        match &sig.key {
            SigningKey::Plain(key) => self.judge_plain(key, email, commit_time, now),
            SigningKey::Certificate(cert) => self.judge_certificate(cert, email, commit_time, now),
        }
    }

    fn judge_plain(
        &self,
        key: &KeyData,
        email: &str,
        commit_time: Timestamp,
        now: Timestamp,
    ) -> Result<Signer, SignatureProblem> {
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        if self.revoked.contains(key) {
            return Err(SignatureProblem::Revoked { fingerprint });
        }
        let entries: Vec<&SignerEntry> = self.signers.entries_for_key(key).collect();
        if entries.is_empty() {
            return Err(SignatureProblem::UnknownKey { fingerprint });
        }
        judge_entries(&entries, &fingerprint, email, commit_time, now)?;
        Ok(Signer {
            principal: email.to_owned(),
            fingerprint,
            key_type: key.algorithm().to_string(),
            certificate_authority: None,
        })
    }

    fn judge_certificate(
        &self,
        cert: &UserCertificate,
        email: &str,
        commit_time: Timestamp,
        now: Timestamp,
    ) -> Result<Signer, SignatureProblem> {
        let fingerprint = cert.key.fingerprint(HashAlg::Sha256).to_string();
        let ca_fingerprint = cert.ca.fingerprint(HashAlg::Sha256).to_string();
        let bad = |reason: String| SignatureProblem::BadCertificate {
            fingerprint: fingerprint.clone(),
            reason,
        };
        if self.revoked.contains(&cert.key) || self.revoked.contains(&cert.ca) {
            return Err(SignatureProblem::Revoked { fingerprint });
        }
        let entries: Vec<&SignerEntry> = self.signers.authorities_for_key(&cert.ca).collect();
        if entries.is_empty() {
            return Err(SignatureProblem::UntrustedAuthority {
                fingerprint,
                ca: ca_fingerprint,
            });
        }
        cert.verify_ca_signature().map_err(|e| match e {
            crate::certificate::CertificateError::Defect(defect) => bad(defect.to_string()),
            other => bad(other.to_string()),
        })?;
        if cert.cert_type != crate::certificate::USER {
            return Err(bad(
                "it is a host certificate, not a user certificate".into()
            ));
        }
        if let Some(name) = cert.critical_options.first() {
            // No critical option applies to signatures; an unknown one must make the
            // certificate unusable (PROTOCOL.certkeys).
            return Err(bad(format!("it carries the critical option {name:?}")));
        }
        // OpenSSH (sshsig.c, check_allowed_keys_line) requires the principal to be listed in
        // the certificate.
        if !cert.principals.iter().any(|p| p == email) {
            return Err(bad(format!(
                "its principals {:?} do not include the committer {email}",
                cert.principals
            )));
        }
        for (when, t) in [(When::CommitDate, commit_time), (When::Now, now)] {
            let secs = u64::try_from(t.as_second()).unwrap_or(0);
            if !cert.valid_at(secs) {
                return Err(bad(format!(
                    "its validity period ({} to {}) does not hold {when}",
                    fmt_unix(cert.valid_after),
                    fmt_unix(cert.valid_before)
                )));
            }
        }
        judge_entries(&entries, &fingerprint, email, commit_time, now)?;
        Ok(Signer {
            principal: email.to_owned(),
            fingerprint,
            key_type: format!("{}-cert", cert.key.algorithm()),
            certificate_authority: Some(ca_fingerprint),
        })
    }
}

fn fmt_unix(secs: u64) -> String {
    if secs == u64::MAX {
        return "forever".into();
    }
    i64::try_from(secs)
        .ok()
        .and_then(|s| Timestamp::from_second(s).ok())
        .map_or_else(|| secs.to_string(), |t| t.to_string())
}

/// Accepts if any allowed_signers line for the key admits the committer, namespace `git`, and
/// both moments; otherwise reports the most specific reason from the lines that came closest.
fn judge_entries(
    entries: &[&SignerEntry],
    fingerprint: &str,
    email: &str,
    commit_time: Timestamp,
    now: Timestamp,
) -> Result<(), SignatureProblem> {
    let mut problem = None;
    for entry in entries {
        if !entry.matches_principal(email) {
            problem.get_or_insert(SignatureProblem::PrincipalMismatch {
                fingerprint: fingerprint.to_owned(),
                principals: entry.principals.clone(),
                committer: email.to_owned(),
            });
            continue;
        }
        if !entry.allows_namespace(GIT_NAMESPACE) {
            problem = Some(SignatureProblem::Namespace {
                fingerprint: fingerprint.to_owned(),
                line: entry.line,
            });
            continue;
        }
        let window = entry
            .check_validity(commit_time)
            .map_err(|v| (When::CommitDate, v))
            .and_then(|()| entry.check_validity(now).map_err(|v| (When::Now, v)));
        match window {
            Ok(()) => return Ok(()),
            Err((when, validity)) => {
                problem = Some(SignatureProblem::OutsideValidity {
                    fingerprint: fingerprint.to_owned(),
                    when,
                    validity,
                });
            }
        }
    }
    Err(problem.unwrap_or_else(|| SignatureProblem::UnknownKey {
        fingerprint: fingerprint.to_owned(),
    }))
}

/// Loads allowed signers and an optional revocation file, failing closed.
pub fn load(allowed_signers: &Path, revocation: Option<&Path>) -> Result<Trust, LoadError> {
    let signers = AllowedSigners::load(allowed_signers)?;
    let revoked = match revocation {
        Some(path) => Revoked::load(path)?,
        None => Revoked::default(),
    };
    Ok(Trust::new(signers, revoked))
}

/// Why the trust configuration cannot be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// allowed_signers is missing or malformed.
    #[error(transparent)]
    Signers(#[from] SignersError),
    /// The revocation file is missing or malformed.
    #[error(transparent)]
    Revoked(#[from] RevokedError),
}

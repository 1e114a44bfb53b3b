//! `MANIFEST` and `MANIFEST.sig`: the SHA-256 of every file of a bundle, signed by the ledger
//! key as `ssh-keygen -Y sign -n tally-export` would, and the checks of both.

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use ssh_key::{HashAlg, LineEnding, SshSig};

use crate::hex;
use crate::merkle::Hash;

use super::{BundleProblem, ExportError, SIGNATURE_NAMESPACE};

/// The files `MANIFEST` lists: for each name, its SHA-256 and the line it is listed on.
pub(super) type Listed = BTreeMap<String, (Hash, usize)>;

/// Signs `MANIFEST` as `ssh-keygen -Y sign -n tally-export` would: an armored SSHSIG
/// (OpenSSH `PROTOCOL.sshsig`) with SHA-512, ssh-keygen's default.
pub(super) fn sign_manifest(key: &SigningKey, manifest: &[u8]) -> Result<String, ExportError> {
    // The keypair zeroizes its private half on drop.
    let private =
        ssh_key::PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&key.to_bytes()));
    let signature = private
        .sign(SIGNATURE_NAMESPACE, HashAlg::Sha512, manifest)
        .map_err(ExportError::Sign)?;
    signature.to_pem(LineEnding::LF).map_err(ExportError::Sign)
}

/// Checks `MANIFEST.sig` against the pinned key: an SSHSIG in the `tally-export` namespace, by
/// exactly that ed25519 key, verifying strictly over `MANIFEST`.
pub(super) fn check_manifest_signature(
    signature: &[u8],
    manifest: &[u8],
    pinned: &VerifyingKey,
) -> Result<(), String> {
    let sig = SshSig::from_pem(signature).map_err(|e| format!("not an SSH signature ({e})"))?;
    if sig.namespace() != SIGNATURE_NAMESPACE {
        return Err(format!(
            "signed for namespace {:?}, not {SIGNATURE_NAMESPACE:?}",
            sig.namespace()
        ));
    }
    let pinned_print = fingerprint(pinned);
    let Some(signer) = sig.public_key().ed25519() else {
        return Err(format!(
            "signed by a {} key ({}), not by the pinned ledger key {pinned_print}",
            sig.public_key().algorithm(),
            sig.public_key().fingerprint(HashAlg::Sha256)
        ));
    };
    if signer.0 != pinned.to_bytes() {
        return Err(format!(
            "signed by the key {}, not by the pinned ledger key {pinned_print}",
            sig.public_key().fingerprint(HashAlg::Sha256)
        ));
    }
    let data = SshSig::signed_data(SIGNATURE_NAMESPACE, sig.hash_alg(), manifest)
        .map_err(|e| format!("cannot recompute the signed data ({e})"))?;
    let bytes: [u8; 64] = sig
        .signature_bytes()
        .try_into()
        .map_err(|_| "the signature is not an ed25519 signature".to_owned())?;
    pinned
        .verify_strict(&data, &Signature::from_bytes(&bytes))
        .map_err(|_| {
            "the signature does not verify: MANIFEST is not what the ledger key signed".to_owned()
        })
}

pub(super) use crate::key::fingerprint;

/// Parses `MANIFEST`: `<64 lowercase hex>  <file name>` lines, each ending in a line feed,
/// names unique and without `/`.
pub(super) fn parse_manifest(text: &[u8], problems: &mut Vec<BundleProblem>) -> Listed {
    let mut listed = BTreeMap::new();
    let Ok(text) = std::str::from_utf8(text) else {
        problems.push(BundleProblem::Manifest {
            line: 0,
            reason: "not UTF-8".into(),
        });
        return listed;
    };
    if !text.is_empty() && !text.ends_with('\n') {
        problems.push(BundleProblem::Manifest {
            line: text.lines().count(),
            reason: "the last line does not end with a line feed".into(),
        });
    }
    for (i, line) in text.lines().enumerate() {
        let bad = |reason: &str| BundleProblem::Manifest {
            line: i + 1,
            reason: reason.to_owned(),
        };
        let parsed = line.split_once("  ").and_then(|(hash, name)| {
            let hash: Hash = (hash.len() == 64)
                .then(|| hex::decode_lower(hash))
                .flatten()?
                .try_into()
                .ok()?;
            Some((hash, name))
        });
        match parsed {
            None => problems.push(bad("not `<SHA-256 in lowercase hex>  <file name>`")),
            Some((_, name)) if name.is_empty() || name.contains('/') || name.contains('\\') => {
                problems.push(bad(
                    "the file name is not a plain name in the bundle directory",
                ))
            }
            Some((hash, name)) => {
                if listed.insert(name.to_owned(), (hash, i + 1)).is_some() {
                    problems.push(bad(&format!("{name} is listed twice")));
                }
            }
        }
    }
    listed
}

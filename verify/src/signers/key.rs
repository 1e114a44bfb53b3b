//! The key field: which key types tally accepts, and the checks OpenSSH makes on reading a key
//! (`sshkey.c`, `sshkey_read` and `sshkey_fromb`).

use ssh_key::public::KeyData;

use super::SignersError;
use super::line::BLANK;

/// What tally makes of a key type name OpenSSH knows.
pub(super) enum KeyTypeKind {
    /// A plain key type, and the name `ssh-key` knows its key data by.
    Supported(&'static str),
    /// A certificate type.
    Certificate,
    /// A type OpenSSH knows (or knew) that tally cannot verify.
    Unsupported,
}

/// Classifies a key type name by OpenSSH's key implementations (`keyimpls` in `sshkey.c`).
///
/// OpenSSH also reads an RSA key under the signature algorithm names `rsa-sha2-256` and
/// `rsa-sha2-512`, and a security-key ECDSA key under its `webauthn-` name (`peek_type_nid`
/// compares only the key type behind the name), so tally does too.
pub(super) fn key_type_kind(name: &str) -> Option<KeyTypeKind> {
    let supported = match name {
        "ssh-ed25519" => "ssh-ed25519",
        "ecdsa-sha2-nistp256" => "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384" => "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521" => "ecdsa-sha2-nistp521",
        "ssh-rsa" | "rsa-sha2-256" | "rsa-sha2-512" => "ssh-rsa",
        "sk-ssh-ed25519@openssh.com" => "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com" | "webauthn-sk-ecdsa-sha2-nistp256@openssh.com" => {
            "sk-ecdsa-sha2-nistp256@openssh.com"
        }
        "ssh-ed25519-cert-v01@openssh.com"
        | "ecdsa-sha2-nistp256-cert-v01@openssh.com"
        | "ecdsa-sha2-nistp384-cert-v01@openssh.com"
        | "ecdsa-sha2-nistp521-cert-v01@openssh.com"
        | "ssh-rsa-cert-v01@openssh.com"
        | "rsa-sha2-256-cert-v01@openssh.com"
        | "rsa-sha2-512-cert-v01@openssh.com"
        | "sk-ssh-ed25519-cert-v01@openssh.com"
        | "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com"
        | "webauthn-sk-ecdsa-sha2-nistp256-cert-v01@openssh.com"
        | "ssh-dss-cert-v01@openssh.com"
        | "ssh-xmss-cert-v01@openssh.com"
        | "ssh-mldsa44-ed25519-cert-v01@openssh.com" => return Some(KeyTypeKind::Certificate),
        // DSA (removed in OpenSSH 10.0), XMSS (experimental) and the post-quantum hybrid have
        // no verifier in tally.
        "ssh-dss" | "ssh-xmss@openssh.com" | "ssh-mldsa44-ed25519@openssh.com" => {
            return Some(KeyTypeKind::Unsupported);
        }
        _ => return None,
    };
    Some(KeyTypeKind::Supported(supported))
}

/// Parses `keytype base64 [comment]` (`sshkey.c`, `sshkey_read`), checking the key as
/// `sshkey_fromb` does.
pub(super) fn parse_key(
    line: usize,
    text: &str,
) -> Result<(KeyData, Option<String>), SignersError> {
    let (keytype, rest) = text.split_once(BLANK).unwrap_or((text, ""));
    let rest = rest.trim_start_matches(BLANK);
    let (blob, comment) = rest.split_once(BLANK).unwrap_or((rest, ""));
    let canonical = match key_type_kind(keytype) {
        Some(KeyTypeKind::Supported(canonical)) => canonical,
        Some(KeyTypeKind::Certificate) => {
            return Err(SignersError::CertificateKey {
                line,
                keytype: keytype.to_owned(),
            });
        }
        Some(KeyTypeKind::Unsupported) => {
            return Err(SignersError::UnsupportedKeyType {
                line,
                keytype: keytype.to_owned(),
            });
        }
        None => {
            return Err(SignersError::UnknownKeyType {
                line,
                keytype: keytype.to_owned(),
            });
        }
    };
    if blob.is_empty() {
        return Err(SignersError::MissingKey { line });
    }
    let bad = |reason: String| SignersError::BadKey {
        line,
        keytype: keytype.to_owned(),
        reason,
    };
    let key = ssh_key::PublicKey::from_openssh(&format!("{canonical} {blob}"))
        .map_err(|e| bad(key_error_reason(&e)))?;
    let key = key.key_data().clone();
    check_key(&key).map_err(|reason| bad(reason.to_owned()))?;
    let comment = comment.trim_matches(|c: char| c.is_ascii_whitespace());
    let comment = (!comment.is_empty()).then(|| comment.to_owned());
    Ok((key, comment))
}

/// Describes an `ssh-key` parse error for a person fixing the line.
fn key_error_reason(error: &ssh_key::Error) -> String {
    match error {
        ssh_key::Error::AlgorithmUnknown => {
            "the key data is not of the type written before it".to_owned()
        }
        ssh_key::Error::Encoding(e) => format!("malformed key data: {e}"),
        other => other.to_string(),
    }
}

/// Applies the checks OpenSSH makes on reading a key that `ssh-key` does not.
fn check_key(key: &KeyData) -> Result<(), &'static str> {
    // `sshbuf_get_ec` (sshbuf-getput-crypto.c) accepts uncompressed points only.
    const UNCOMPRESSED: u8 = 0x04;
    // `SSH_RSA_MINIMUM_MODULUS_SIZE` (sshkey.h) and `SSHBUF_MAX_BIGNUM` (sshbuf.h).
    const RSA_MIN_BITS: usize = 1024;
    const RSA_MAX_BYTES: usize = 16384 / 8;
    match key {
        KeyData::Ecdsa(ec) => {
            if ec.as_sec1_bytes().first() != Some(&UNCOMPRESSED) {
                return Err("the EC point is not in uncompressed form");
            }
        }
        KeyData::SkEcdsaSha2NistP256(sk) => {
            if sk.ec_point().as_bytes().first() != Some(&UNCOMPRESSED) {
                return Err("the EC point is not in uncompressed form");
            }
        }
        KeyData::Rsa(rsa) => {
            // `sshbuf_get_bignum2_bytes_direct` refuses negative numbers.
            if rsa.e.as_positive_bytes().is_none() {
                return Err("the RSA exponent is negative");
            }
            let n = rsa
                .n
                .as_positive_bytes()
                .ok_or("the RSA modulus is negative")?;
            if n.len() > RSA_MAX_BYTES {
                return Err("the RSA modulus is longer than 16384 bits");
            }
            let bits = n.first().map_or(0, |&top| {
                8 * (n.len() - 1) + (8 - top.leading_zeros() as usize)
            });
            if bits < RSA_MIN_BITS {
                return Err("the RSA modulus is shorter than 1024 bits");
            }
        }
        KeyData::Ed25519(_) | KeyData::SkEd25519(_) => {}
        // Unreachable: `key_type_kind` only lets the types above through, and `ssh-key`
        // checks that the key data has the type written on the line.
        _ => return Err("the key type is not supported"),
    }
    Ok(())
}

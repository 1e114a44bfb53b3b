//! `POST /hook` authentication: the signatures GitHub, Gitea and Forgejo send (HMAC-SHA256 of
//! the body with the shared secret, hex) and GitLab's token, compared in constant time.

use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The largest webhook body read (GitHub caps its payloads at 25 MB). The body is hashed as it
/// streams in, never held whole.
pub const MAX_BODY: usize = 25 * 1024 * 1024;

/// A webhook secret.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// Reads `--webhook-secret`: the file's content without its trailing newline; an empty
    /// secret is refused (it would authenticate anyone).
    pub fn load(path: &Path) -> Result<Secret, String> {
        let bytes = std::fs::read(path).map_err(|e| {
            format!(
                "cannot read the webhook secret {}: {e}; pass a readable file to --webhook-secret",
                path.display()
            )
        })?;
        let trimmed = bytes
            .strip_suffix(b"\r\n")
            .or_else(|| bytes.strip_suffix(b"\n"))
            .unwrap_or(&bytes);
        if trimmed.iter().all(u8::is_ascii_whitespace) {
            return Err(format!(
                "the webhook secret {} is empty; write a long random secret into it (e.g. openssl rand -hex 32 > {})",
                path.display(),
                path.display()
            ));
        }
        Ok(Secret(trimmed.to_vec()))
    }

    /// A secret from bytes (tests, benchmarks).
    pub fn new(bytes: &[u8]) -> Secret {
        Secret(bytes.to_vec())
    }

    /// An HMAC-SHA256 over a body fed in chunks.
    pub fn hasher(&self) -> Hasher {
        // HMAC takes keys of any length.
        Hasher(Hmac::<Sha256>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!()))
    }
}

/// The HMAC of a body being read.
pub struct Hasher(Hmac<Sha256>);

impl Hasher {
    /// Feeds a chunk.
    pub fn update(&mut self, chunk: &[u8]) {
        self.0.update(chunk);
    }
}

/// The authentication a request carries (header values as sent).
#[derive(Debug, Default, Clone)]
pub struct Credentials {
    /// `X-Hub-Signature-256` (GitHub): `sha256=<hex>`.
    pub hub: Option<Vec<u8>>,
    /// `X-Gitea-Signature` or `X-Forgejo-Signature`: `<hex>`.
    pub gitea: Option<Vec<u8>>,
    /// `X-Gitlab-Token`: the secret itself.
    pub gitlab: Option<Vec<u8>>,
}

impl Credentials {
    /// Whether a request needs its body hashed to be judged.
    pub fn signed(&self) -> bool {
        self.hub.is_some() || self.gitea.is_some()
    }

    /// Whether the request is authentic: a GitLab token equal to the secret, or a signature
    /// equal to the body's HMAC (`body`, `None` when the body was not read).
    pub fn verify(&self, secret: &Secret, body: Option<Hasher>) -> bool {
        if let Some(token) = &self.gitlab
            && bool::from(token.as_slice().ct_eq(&secret.0))
        {
            return true;
        }
        let Some(hasher) = body else {
            return false;
        };
        let signatures: Vec<Vec<u8>> = [
            self.hub
                .as_deref()
                .and_then(|h| h.strip_prefix(b"sha256="))
                .and_then(from_hex),
            self.gitea.as_deref().and_then(from_hex),
        ]
        .into_iter()
        .flatten()
        .collect();
        // One finalisation, compared with each signature given.
        let mac = hasher.0.finalize().into_bytes();
        signatures
            .iter()
            .any(|s| s.len() == mac.len() && bool::from(s.as_slice().ct_eq(mac.as_slice())))
    }
}

fn from_hex(text: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(text).ok()?.trim();
    if text.len() != 64 {
        return None;
    }
    tally_ledger::hex::decode_lower(&text.to_ascii_lowercase())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hmac_hex(secret: &[u8], body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(body);
        tally_ledger::hex::encode(&mac.finalize().into_bytes())
    }

    fn hashed(secret: &Secret, body: &[u8]) -> Option<Hasher> {
        let mut h = secret.hasher();
        // In two chunks, as a body streams in.
        let (a, b) = body.split_at(body.len() / 2);
        h.update(a);
        h.update(b);
        Some(h)
    }

    #[test]
    fn github_gitea_and_gitlab_credentials_are_checked() {
        let secret = Secret::new(b"s3cret");
        let body = br#"{"ref":"refs/heads/main"}"#;
        let good = hmac_hex(b"s3cret", body);
        let github = Credentials {
            hub: Some(format!("sha256={good}").into_bytes()),
            ..Default::default()
        };
        assert!(github.verify(&secret, hashed(&secret, body)));
        assert!(
            !github.verify(&secret, hashed(&secret, b"{}")),
            "another body"
        );
        let gitea = Credentials {
            gitea: Some(good.clone().into_bytes()),
            ..Default::default()
        };
        assert!(gitea.verify(&secret, hashed(&secret, body)));
        let upper = Credentials {
            gitea: Some(good.to_uppercase().into_bytes()),
            ..Default::default()
        };
        assert!(upper.verify(&secret, hashed(&secret, body)), "hex case");
        let no_prefix = Credentials {
            hub: Some(good.into_bytes()),
            ..Default::default()
        };
        assert!(!no_prefix.verify(&secret, hashed(&secret, body)));
        let wrong_key = Credentials {
            hub: Some(format!("sha256={}", hmac_hex(b"other", body)).into_bytes()),
            ..Default::default()
        };
        assert!(!wrong_key.verify(&secret, hashed(&secret, body)));
        let gitlab = Credentials {
            gitlab: Some(b"s3cret".to_vec()),
            ..Default::default()
        };
        assert!(gitlab.verify(&secret, None));
        let gitlab_wrong = Credentials {
            gitlab: Some(b"s3cret2".to_vec()),
            ..Default::default()
        };
        assert!(!gitlab_wrong.verify(&secret, None));
        assert!(!Credentials::default().verify(&secret, hashed(&secret, body)));
    }

    #[test]
    fn an_empty_secret_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "\n").unwrap();
        assert!(Secret::load(&path).unwrap_err().contains("is empty"));
        std::fs::write(&path, "abc\n").unwrap();
        assert_eq!(Secret::load(&path).unwrap().0, b"abc");
    }
}

//! Who signs: real OpenSSH keys made once by `ssh-keygen`, allowed_signers files, and the
//! users who sign with them.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::*;

// ---------------------------------------------------------------------------------------------
// Keys

/// The key types tally must accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// ssh-ed25519
    Ed25519,
    /// ecdsa-sha2-nistp256
    EcdsaP256,
    /// ecdsa-sha2-nistp384
    EcdsaP384,
    /// ecdsa-sha2-nistp521
    EcdsaP521,
    /// ssh-rsa (signing as rsa-sha2-512, as ssh-keygen does)
    Rsa3072,
}

impl KeyType {
    fn keygen_args(self) -> &'static [&'static str] {
        match self {
            KeyType::Ed25519 => &["-t", "ed25519"],
            KeyType::EcdsaP256 => &["-t", "ecdsa", "-b", "256"],
            KeyType::EcdsaP384 => &["-t", "ecdsa", "-b", "384"],
            KeyType::EcdsaP521 => &["-t", "ecdsa", "-b", "521"],
            KeyType::Rsa3072 => &["-t", "rsa", "-b", "3072"],
        }
    }
}

/// A real OpenSSH key pair.
#[derive(Debug, Clone)]
pub struct Key {
    /// Unencrypted private key file (mode 0600, as ssh-keygen writes it).
    pub private: PathBuf,
    /// The `.pub` file.
    pub public: PathBuf,
    /// `keytype base64` (the public line without its comment).
    pub public_line: String,
    /// `SHA256:...`, as `ssh-keygen -l` and tally print it.
    pub fingerprint: String,
}

/// Every key the tests use. Who is trusted is decided per test by its allowed_signers.
#[derive(Debug)]
pub struct Keys {
    /// ed25519.
    pub alice: Key,
    /// ed25519.
    pub bob: Key,
    /// ed25519, never in any allowed_signers.
    pub mallory: Key,
    /// ECDSA P-256.
    pub p256: Key,
    /// ECDSA P-384.
    pub p384: Key,
    /// ECDSA P-521.
    pub p521: Key,
    /// RSA 3072.
    pub rsa: Key,
    /// ed25519 certificate authority.
    pub ca: Key,
    /// ed25519 certificate authority nobody trusts.
    pub rogue_ca: Key,
}

const KEY_SPECS: &[(&str, KeyType)] = &[
    ("alice", KeyType::Ed25519),
    ("bob", KeyType::Ed25519),
    ("mallory", KeyType::Ed25519),
    ("p256", KeyType::EcdsaP256),
    ("p384", KeyType::EcdsaP384),
    ("p521", KeyType::EcdsaP521),
    ("rsa", KeyType::Rsa3072),
    ("ca", KeyType::Ed25519),
    ("rogue_ca", KeyType::Ed25519),
];

/// The shared keys, generated on first use.
///
/// They live in a cache directory under cargo's per-target temporary directory: generated into
/// a fresh directory, then moved into place with one `rename`, which fails if another test
/// process got there first, so a reader never sees a half-written set. (A per-process temporary
/// directory in a `static` would never be dropped, leaving one directory behind per run.)
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        std::fs::create_dir_all(&root).unwrap();
        let dir = root.join("tally-e2e-keys-v1");
        if !KEY_SPECS
            .iter()
            .all(|(name, _)| dir.join(format!("{name}.pub")).exists())
        {
            let fresh = tempfile::Builder::new()
                .prefix("tally-e2e-keys-new")
                .tempdir_in(&root)
                .unwrap();
            let children: Vec<_> = KEY_SPECS
                .iter()
                .map(|(name, kind)| {
                    let mut cmd = Command::new("ssh-keygen");
                    cmd.args(["-q", "-N", "", "-C"])
                        .arg(format!("{name}@example.com"))
                        .args(kind.keygen_args())
                        .arg("-f")
                        .arg(fresh.path().join(name))
                        .stdin(Stdio::null())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped());
                    (cmd.spawn().expect("ssh-keygen is installed"), *name)
                })
                .collect();
            for (child, name) in children {
                let out = child.wait_with_output().unwrap();
                assert!(
                    out.status.success(),
                    "ssh-keygen {name}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            // Losing the race leaves the winner's complete set in place.
            let _ = std::fs::rename(fresh.path(), &dir);
        }
        let load = |name: &str| -> Key {
            let private = dir.join(name);
            let public = dir.join(format!("{name}.pub"));
            let text = std::fs::read_to_string(&public).unwrap();
            let mut parts = text.split_whitespace();
            let public_line = format!("{} {}", parts.next().unwrap(), parts.next().unwrap());
            let listing = stdout_of(
                Command::new("ssh-keygen")
                    .args(["-E", "sha256", "-l", "-f"])
                    .arg(&public),
            );
            let fingerprint = listing.split_whitespace().nth(1).unwrap().to_owned();
            assert!(fingerprint.starts_with("SHA256:"), "{listing}");
            Key {
                private,
                public,
                public_line,
                fingerprint,
            }
        };
        Keys {
            alice: load("alice"),
            bob: load("bob"),
            mallory: load("mallory"),
            p256: load("p256"),
            p384: load("p384"),
            p521: load("p521"),
            rsa: load("rsa"),
            ca: load("ca"),
            rogue_ca: load("rogue_ca"),
        }
    })
}

// ---------------------------------------------------------------------------------------------
// allowed_signers

/// Builds an allowed_signers file: `principals [options] keytype base64` lines.
#[derive(Debug, Clone, Default)]
pub struct AllowedSigners {
    lines: Vec<String>,
}

impl AllowedSigners {
    /// An empty file.
    pub fn new() -> AllowedSigners {
        AllowedSigners::default()
    }

    /// `principals keytype base64`.
    pub fn signer(self, principals: &str, key: &Key) -> AllowedSigners {
        self.line(&format!("{principals} {}", key.public_line))
    }

    /// `principals options keytype base64`, e.g. options `valid-before="20200101"`.
    pub fn signer_with(self, principals: &str, options: &str, key: &Key) -> AllowedSigners {
        self.line(&format!("{principals} {options} {}", key.public_line))
    }

    /// `principals cert-authority keytype base64`.
    pub fn authority(self, principals: &str, ca: &Key) -> AllowedSigners {
        self.signer_with(principals, "cert-authority", ca)
    }

    /// Any raw line (comments, malformed lines).
    pub fn line(mut self, line: &str) -> AllowedSigners {
        self.lines.push(line.to_owned());
        self
    }

    /// The file's text.
    pub fn text(&self) -> String {
        let mut text = self.lines.join("\n");
        text.push('\n');
        text
    }
}

// ---------------------------------------------------------------------------------------------
// Users

/// Someone who commits: name, email and the key git signs with (`user.signingkey`).
#[derive(Debug, Clone)]
pub struct User {
    /// user.name
    pub name: String,
    /// user.email (the committer email tally matches against the principal)
    pub email: String,
    /// user.signingkey: a private key file, or a `-cert.pub` certificate next to one.
    pub signing_key: PathBuf,
}

impl User {
    /// A user signing with `key`.
    pub fn new(name: &str, email: &str, key: &Key) -> User {
        User {
            name: name.to_owned(),
            email: email.to_owned(),
            signing_key: key.private.clone(),
        }
    }

    /// The same person with another email (to impersonate someone else).
    pub fn with_email(&self, email: &str) -> User {
        User {
            email: email.to_owned(),
            ..self.clone()
        }
    }
}

/// Alice, signing with `keys().alice`.
pub fn alice() -> User {
    User::new("Alice", "alice@example.com", &keys().alice)
}

/// Bob, signing with `keys().bob`.
pub fn bob() -> User {
    User::new("Bob", "bob@example.com", &keys().bob)
}

/// Mallory, signing with a key nobody trusts.
pub fn mallory() -> User {
    User::new("Mallory", "mallory@example.com", &keys().mallory)
}

/// allowed_signers trusting Alice and Bob.
pub fn alice_and_bob() -> AllowedSigners {
    AllowedSigners::new()
        .signer("alice@example.com", &keys().alice)
        .signer("bob@example.com", &keys().bob)
}

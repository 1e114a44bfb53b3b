//! The ledger key: an OpenSSH ed25519 private key file, with its public key beside it in
//! `<path>.pub`.
//!
//! The private key signs every checkpoint, so whoever can read it can forge the ledger's
//! history for any agent that trusts it. [`generate`] therefore never lets the file exist with
//! wider permissions than 0600, not even for an instant, and [`load_signing`] refuses a key file
//! that other users could read or write, as OpenSSH refuses an unprotected private key.
//! Encrypted keys are refused too: the key is used unattended by a git hook, where no one can
//! type a passphrase.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use ssh_key::{Algorithm, LineEnding, PrivateKey, PublicKey};
use zeroize::Zeroizing;

/// The largest key file read, in bytes: an OpenSSH ed25519 key is about 400.
const MAX_KEY_FILE_LEN: u64 = 64 * 1024;

/// Why the ledger key could not be created or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Reading or writing a key file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// A key file is already there; it is never overwritten.
    #[error("{}: already exists; refusing to overwrite a ledger key", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The private key file is readable or writable by other users.
    #[error("{}: permissions {mode:04o} let other users read or change the ledger key; run `chmod 600 {}`", path.display(), path.display())]
    Unprotected {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not an OpenSSH key.
    #[error("{}: not an OpenSSH key: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        source: ssh_key::Error,
    },
    /// A public key line is not an OpenSSH public key.
    #[error("not an OpenSSH public key line: {source}")]
    ParsePublic {
        /// What the parser said.
        source: ssh_key::Error,
    },
    /// The private key is protected by a passphrase.
    #[error("{}: the ledger key is encrypted; the hook cannot ask for a passphrase, so use an unencrypted key (`ssh-keygen -p -N '' -f {}`)", path.display(), path.display())]
    Encrypted {
        /// The file.
        path: PathBuf,
    },
    /// The key is not ed25519.
    #[error("{}: the ledger key must be ed25519, found {algorithm}", path.display())]
    NotEd25519 {
        /// The file (empty for a public key line).
        path: PathBuf,
        /// The key's algorithm.
        algorithm: String,
    },
    /// The private key's public half does not match its secret half.
    #[error("{}: the key's public half does not match its private half", path.display())]
    Inconsistent {
        /// The file.
        path: PathBuf,
    },
    /// The key file is larger than any OpenSSH ed25519 key.
    #[error("{}: too large to be an ed25519 key file", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// Encoding the key failed.
    #[error("encoding the key failed: {source}")]
    Encode {
        /// What the encoder said.
        source: ssh_key::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Returns `<path>.pub`.
pub fn public_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// Generates a new ed25519 ledger key, writing the private key to `path` (OpenSSH format,
/// mode 0600) and its public line to `<path>.pub`; refuses to overwrite either.
///
/// Each file is written under a temporary name created with `O_EXCL` and mode 0600, synced,
/// then hard-linked to its final name (which fails if the name exists), so a crash leaves
/// either no key or a complete one, and the private key is never readable by others.
pub fn generate(path: &Path, comment: &str) -> Result<SigningKey, KeyError> {
    let pub_path = public_path(path);
    for p in [path, &pub_path] {
        if fs::symlink_metadata(p).is_ok() {
            return Err(KeyError::Exists { path: p.to_owned() });
        }
    }
    let mut private = PrivateKey::random(&mut ssh_key::rand_core::OsRng, Algorithm::Ed25519)
        .map_err(|source| KeyError::Encode { source })?;
    private.set_comment(comment);
    let signing = signing_key(&private, path)?;
    let pem = private
        .to_openssh(LineEnding::LF)
        .map_err(|source| KeyError::Encode { source })?;
    let public = private
        .public_key()
        .to_openssh()
        .map_err(|source| KeyError::Encode { source })?;

    write_new(path, pem.as_bytes(), 0o600)?;
    write_new(&pub_path, format!("{public}\n").as_bytes(), 0o644)?;
    Ok(signing)
}

/// Writes a new file atomically: temporary file (O_EXCL, `mode` from creation), fsync, hard link
/// to `path` (fails if `path` exists), remove the temporary name, fsync the directory.
fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), KeyError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&tmp).map_err(io_error(&tmp))?;
    let result = (|| {
        // The umask can only have narrowed the mode; set it exactly.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(mode))
                .map_err(io_error(&tmp))?;
        }
        file.write_all(contents).map_err(io_error(&tmp))?;
        file.sync_all().map_err(io_error(&tmp))?;
        fs::hard_link(&tmp, path).map_err(|source| {
            if source.kind() == io::ErrorKind::AlreadyExists {
                KeyError::Exists {
                    path: path.to_owned(),
                }
            } else {
                KeyError::Io {
                    path: path.to_owned(),
                    source,
                }
            }
        })
    })();
    let removed = fs::remove_file(&tmp).map_err(io_error(&tmp));
    result?;
    removed?;
    // Make the new name durable; a directory that cannot be opened for sync (some platforms)
    // is not an error.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Loads the ledger's signing key from an OpenSSH private key file.
///
/// Refuses, each with its own error: a file group or others can access (mode & 0o077, as
/// OpenSSH does), an encrypted key, a non-ed25519 key, and a key whose public half does not
/// match its private half.
pub fn load_signing(path: &Path) -> Result<SigningKey, KeyError> {
    load_signing_as(path, Readers::Owner)
}

/// Who may read the ledger key file besides its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readers {
    /// No one: mode 0600 or narrower (the default).
    Owner,
    /// The file's group too, read only (0640): a repository that several unix accounts push
    /// to (`core.sharedRepository`), where every member's push signs entries.
    Group,
}

/// [`load_signing`], accepting the permissions `readers` allows. Never a key that anyone
/// but its owner can write, or that other users outside its group can read.
pub fn load_signing_as(path: &Path, readers: Readers) -> Result<SigningKey, KeyError> {
    let mut file = fs::File::open(path).map_err(io_error(path))?;
    // Check the permissions of the file actually opened, not of whatever the path names later.
    let meta = file.metadata().map_err(io_error(path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        let forbidden = match readers {
            Readers::Owner => 0o077,
            Readers::Group => 0o037,
        };
        if mode & forbidden != 0 {
            return Err(KeyError::Unprotected {
                path: path.to_owned(),
                mode,
            });
        }
    }
    if meta.len() > MAX_KEY_FILE_LEN {
        return Err(KeyError::TooLarge {
            path: path.to_owned(),
        });
    }
    let mut text = Zeroizing::new(Vec::new());
    Read::by_ref(&mut file)
        .take(MAX_KEY_FILE_LEN + 1)
        .read_to_end(&mut text)
        .map_err(io_error(path))?;
    if text.len() as u64 > MAX_KEY_FILE_LEN {
        return Err(KeyError::TooLarge {
            path: path.to_owned(),
        });
    }
    let private = PrivateKey::from_openssh(&*text).map_err(|source| KeyError::Parse {
        path: path.to_owned(),
        source,
    })?;
    signing_key(&private, path)
}

fn signing_key(private: &PrivateKey, path: &Path) -> Result<SigningKey, KeyError> {
    if private.is_encrypted() {
        return Err(KeyError::Encrypted {
            path: path.to_owned(),
        });
    }
    let Some(pair) = private.key_data().ed25519() else {
        return Err(KeyError::NotEd25519 {
            path: path.to_owned(),
            algorithm: private.algorithm().to_string(),
        });
    };
    let seed = Zeroizing::new(pair.private.to_bytes());
    let signing = SigningKey::from_bytes(&seed);
    if signing.verifying_key().as_bytes() != &pair.public.0 {
        return Err(KeyError::Inconsistent {
            path: path.to_owned(),
        });
    }
    Ok(signing)
}

/// Returns the key's OpenSSH fingerprint, `SHA256:...`, as `ssh-keygen -l` prints it: how
/// every message names a ledger key (an origin names the ledger, not the key), and how a
/// person compares the key an agent pinned with the one the server shows.
pub fn fingerprint(key: &VerifyingKey) -> String {
    PublicKey::from(ssh_key::public::Ed25519PublicKey(key.to_bytes()))
        .fingerprint(ssh_key::HashAlg::Sha256)
        .to_string()
}

/// Returns the public key as one OpenSSH line, `ssh-ed25519 <base64> [comment]`, as
/// `tally ledger key` prints it (no trailing newline).
pub fn public_line(key: &VerifyingKey, comment: &str) -> String {
    let mut public = PublicKey::from(ssh_key::public::Ed25519PublicKey(key.to_bytes()));
    public.set_comment(comment);
    // Encoding an ed25519 public key cannot fail; fall back to building the line by hand
    // rather than panic if it ever did.
    public.to_openssh().unwrap_or_else(|_| {
        let mut blob = Vec::with_capacity(51);
        for part in [b"ssh-ed25519".as_slice(), key.as_bytes()] {
            blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
            blob.extend_from_slice(part);
        }
        use base64ct::Encoding;
        let line = format!("ssh-ed25519 {}", base64ct::Base64::encode_string(&blob));
        if comment.is_empty() {
            line
        } else {
            format!("{line} {comment}")
        }
    })
}

/// Parses an OpenSSH public key line (`ssh-ed25519 AAAA... [comment]`), as found in `<key>.pub`
/// or printed by `tally ledger key`; refuses every algorithm but ed25519.
pub fn parse_public_line(line: &str) -> Result<VerifyingKey, KeyError> {
    let public =
        PublicKey::from_openssh(line.trim()).map_err(|source| KeyError::ParsePublic { source })?;
    let Some(key) = public.key_data().ed25519() else {
        return Err(KeyError::NotEd25519 {
            path: PathBuf::new(),
            algorithm: public.algorithm().to_string(),
        });
    };
    VerifyingKey::from_bytes(&key.0).map_err(|_| KeyError::NotEd25519 {
        path: PathBuf::new(),
        algorithm: "ssh-ed25519 (not a valid curve point)".to_owned(),
    })
}

/// Reads a public key file (one OpenSSH line).
pub fn load_public(path: &Path) -> Result<VerifyingKey, KeyError> {
    let meta = fs::metadata(path).map_err(io_error(path))?;
    if meta.len() > MAX_KEY_FILE_LEN {
        return Err(KeyError::TooLarge {
            path: path.to_owned(),
        });
    }
    let text = fs::read_to_string(path).map_err(io_error(path))?;
    parse_public_line(&text).map_err(|e| match e {
        KeyError::NotEd25519 { algorithm, .. } => KeyError::NotEd25519 {
            path: path.to_owned(),
            algorithm,
        },
        KeyError::ParsePublic { source } => KeyError::Parse {
            path: path.to_owned(),
            source,
        },
        other => other,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    #[cfg(unix)]
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generate_then_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger_key");
        let key = generate(&path, "tally ledger").unwrap();
        #[cfg(unix)]
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let loaded = load_signing(&path).unwrap();
        assert_eq!(loaded.to_bytes(), key.to_bytes());
        let public = load_public(&public_path(&path)).unwrap();
        assert_eq!(public, key.verifying_key());
        let line = public_line(&key.verifying_key(), "tally ledger");
        assert!(line.starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA"));
        assert!(line.ends_with(" tally ledger"));
        assert_eq!(
            fs::read_to_string(public_path(&path)).unwrap(),
            format!("{line}\n")
        );
        assert_eq!(parse_public_line(&line).unwrap(), key.verifying_key());
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn generate_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        generate(&path, "").unwrap();
        assert!(matches!(generate(&path, ""), Err(KeyError::Exists { .. })));
        let other = dir.path().join("j");
        fs::write(public_path(&other), "x").unwrap();
        assert!(matches!(generate(&other, ""), Err(KeyError::Exists { .. })));
        assert!(!other.exists());
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_readable_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        generate(&path, "").unwrap();
        for mode in [0o640, 0o604, 0o620, 0o644] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            assert!(
                matches!(load_signing(&path), Err(KeyError::Unprotected { mode: m, .. }) if m == mode)
            );
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        load_signing(&path).unwrap();
    }

    #[test]
    fn refuses_other_algorithms_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(&path).unwrap();
        f.write_all(b"not a key").unwrap();
        assert!(matches!(load_signing(&path), Err(KeyError::Parse { .. })));
        let rsa = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDK user";
        assert!(parse_public_line(rsa).is_err());
        let p256 = PrivateKey::random(
            &mut ssh_key::rand_core::OsRng,
            Algorithm::Ecdsa {
                curve: ssh_key::EcdsaCurve::NistP256,
            },
        )
        .unwrap();
        let line = p256.public_key().to_openssh().unwrap();
        assert!(matches!(
            parse_public_line(&line),
            Err(KeyError::NotEd25519 { .. })
        ));
        let p256_path = dir.path().join("p");
        write_new(
            &p256_path,
            p256.to_openssh(LineEnding::LF).unwrap().as_bytes(),
            0o600,
        )
        .unwrap();
        assert!(matches!(
            load_signing(&p256_path),
            Err(KeyError::NotEd25519 { .. })
        ));
    }

    #[test]
    fn refuses_an_encrypted_key() {
        // An ed25519 key encrypted with the passphrase "secret" by `ssh-keygen -t ed25519 -N secret`.
        let encrypted = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABAC1yWVBX
g2t3EJLf2pYjivAAAAEAAAAAEAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIOQZpkxYer54SaHX
nKuH6EWPROddVU+mBVQklj9brregAAAAkF37wwEil3RWlz7jnWUF/MJm9rFCSvI9q0gbvC
hsAKdPhlJPqx92joKZpzwHVhuxjNTJT7N1lh+eAYdMxLVdhX78gQWwUWrmPDGNAude3Fmx
KhjFPinlBCn5YPe808QKU4RNvB/tPseT14+10zuWjvARE/GVPg243XWo3G7p6GoT1DSnjq
0D0zHWCuOkedVYcw==
-----END OPENSSH PRIVATE KEY-----
";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_new(&path, encrypted.as_bytes(), 0o600).unwrap();
        assert!(
            matches!(load_signing(&path), Err(KeyError::Encrypted { .. })),
            "{:?}",
            load_signing(&path)
        );
    }
}

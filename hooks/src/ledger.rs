//! Where a repository's ledger lives, and the one way every hook and command opens it.
//!
//! By default the ledger is SQLite in `<repo>/tally/ledger.sqlite`. With a `[ledger]` table in
//! `policy.toml` (`url = "postgres://..."`, optionally `password_file = "..."`), it is one
//! ledger of a shared PostgreSQL database (issue 15), found there by the repository id that the
//! ledger key determines, so every node holding a replica of the repository, with the same
//! ledger key, opens the same ledger. Credentials never come from `policy.toml`: the
//! environment (`PGPASSWORD`, `~/.pgpass`, `PGSERVICE`) or the password file supply them.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tally_ledger::pgconnect::Target;
use tally_ledger::{Options, Postgres, Store, StoreError, VerifyingKey};

use crate::config::{POLICY_FILE, parse_policy};
use crate::record::Paths;

/// Where a ledger lives.
#[derive(Debug, Clone)]
pub enum Location {
    /// An SQLite file in the repository.
    Sqlite(PathBuf),
    /// A ledger of a PostgreSQL database.
    Postgres {
        /// The database.
        target: Target,
        /// The ledger's repository id.
        repository: String,
    },
}

/// Why the ledger's location cannot be known or reached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocationError {
    /// The policy file cannot be read.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// `[ledger] url` is not a usable PostgreSQL URL.
    #[error("{path} [ledger] url: {source}", path = path.display())]
    Url {
        /// The policy file.
        path: PathBuf,
        /// Why.
        source: tally_ledger::pgconnect::ConnectError,
    },
    /// The database cannot be reached.
    #[error("{location}: {source}")]
    Connect {
        /// The database, without a password.
        location: String,
        /// Why.
        source: tally_ledger::pgconnect::ConnectError,
    },
    /// The ledger's public key cannot be read (it names the ledger in the database).
    #[error(transparent)]
    Key(#[from] tally_ledger::KeyError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The repository id of the ledger signed by `key`: the first 8 bytes of the SHA-256 of its
/// public key, in hex. Every replica with the same ledger key has the same id, which is how
/// they find their shared ledger.
pub fn repository_id(key: &VerifyingKey) -> String {
    tally_ledger::hex::encode(&Sha256::digest(key.to_bytes())[..8])
}

impl Location {
    /// Where the ledger of the repository whose tally directory is `paths` lives, as its
    /// `policy.toml` says.
    pub fn of(paths: &Paths) -> Result<Location, LocationError> {
        Location::read(paths, None)
    }

    /// [`Location::of`], for a caller that loaded the ledger key already (it names the ledger
    /// in the database; see `identifying_key`).
    pub fn with_key(paths: &Paths, key: &VerifyingKey) -> Result<Location, LocationError> {
        Location::read(paths, Some(key))
    }

    fn read(paths: &Paths, key: Option<&VerifyingKey>) -> Result<Location, LocationError> {
        let policy = paths.dir.join(POLICY_FILE);
        let text = match std::fs::read(&policy) {
            Ok(text) => text,
            // No policy (init not finished): the default place, whose absence says the rest.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Location::Sqlite(paths.ledger()));
            }
            Err(source) => {
                return Err(crate::config::ConfigError::Read {
                    path: policy,
                    source,
                }
                .into());
            }
        };
        let file = parse_policy(&policy, &text)?;
        Location::of_section(paths, file.ledger.as_ref(), key)
    }

    /// Where the ledger lives, as the policy the caller loaded already says (a hook loads it
    /// first): no second reading of `policy.toml`. `key` as in [`Location::with_key`].
    pub fn from_policy(
        paths: &Paths,
        policy: &crate::config::Policy,
        key: Option<&VerifyingKey>,
    ) -> Result<Location, LocationError> {
        Location::of_section(paths, policy.file.ledger.as_ref(), key)
    }

    fn of_section(
        paths: &Paths,
        ledger: Option<&crate::config::LedgerSection>,
        key: Option<&VerifyingKey>,
    ) -> Result<Location, LocationError> {
        let Some(ledger) = ledger else {
            return Ok(Location::Sqlite(paths.ledger()));
        };
        let target = target(&paths.dir.join(POLICY_FILE), &paths.dir, ledger)?;
        let repository = match key {
            Some(key) => repository_id(key),
            None => repository_id(&identifying_key(paths)?),
        };
        Ok(Location::Postgres { target, repository })
    }

    /// Whether the ledger is shared (in PostgreSQL).
    pub fn is_shared(&self) -> bool {
        matches!(self, Location::Postgres { .. })
    }

    /// How messages name it.
    pub fn display(&self) -> String {
        match self {
            Location::Sqlite(path) => path.display().to_string(),
            Location::Postgres { target, .. } => target.display(),
        }
    }

    /// Opens the ledger.
    pub fn open(&self, options: &Options) -> Result<Store, LocationError> {
        match self {
            Location::Sqlite(path) => Ok(Store::open_with(path, options)?),
            Location::Postgres { target, repository } => {
                Ok(Store::open_in(connect(target, options)?, repository)?)
            }
        }
    }
}

/// The key whose repository id names the ledger in the database: the ledger key itself where
/// this account can read it (on the server, where hooks sign), else its public half (an
/// auditor's account). The private key comes first so that a replaced `ledger_key.pub` still
/// finds the ledger, whose recorded key then shows the replacement, as it does in SQLite,
/// instead of looking up another repository's ledger, or none.
fn identifying_key(paths: &Paths) -> Result<VerifyingKey, LocationError> {
    match paths.load_key() {
        Ok(key) => Ok(key.verifying_key()),
        Err(_) => Ok(tally_ledger::key::load_public(&paths.public_key())?),
    }
}

/// The `[ledger]` table's database, its password file relative to the tally directory.
pub fn target(
    policy: &Path,
    tally_dir: &Path,
    ledger: &crate::config::LedgerSection,
) -> Result<Target, LocationError> {
    let password_file = ledger.password_file.as_ref().map(|p| tally_dir.join(p));
    Target::parse(&ledger.url, password_file).map_err(|source| LocationError::Url {
        path: policy.to_owned(),
        source,
    })
}

/// Connects to a PostgreSQL ledger database.
pub fn connect(target: &Target, options: &Options) -> Result<Postgres, LocationError> {
    let client = target
        .connect("tally")
        .map_err(|source| LocationError::Connect {
            location: target.display(),
            source,
        })?;
    Ok(Postgres::new(client, &target.display(), options)?)
}

/// Opens the ledger of the repository at `paths` (read-write, default timeouts).
pub fn open(paths: &Paths) -> Result<Store, LocationError> {
    Location::of(paths)?.open(&Options::default())
}

/// Opens the ledger of the repository at `paths` whose policy the caller loaded already.
pub fn open_for(paths: &Paths, policy: &crate::config::Policy) -> Result<Store, LocationError> {
    Location::from_policy(paths, policy, None)?.open(&Options::default())
}

/// Opens the ledger of the repository at `paths` to read it.
pub fn open_read_only(paths: &Paths) -> Result<Store, LocationError> {
    Location::of(paths)?.open(&Options {
        read_only: true,
        ..Options::default()
    })
}

/// The file that names this replica among the nodes sharing a ledger.
pub const NODE_ID: &str = "node-id";

/// This replica's node id (`tally/node-id`), if `tally init` made one and it reads back as
/// 32 lowercase hex digits.
pub fn node_id(paths: &Paths) -> Option<String> {
    let text = std::fs::read_to_string(paths.dir.join(NODE_ID)).ok()?;
    let id = text.trim_end();
    (id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then(|| id.to_owned())
}

/// Makes this replica's node id if it has none: 16 random bytes in hex, mode 0644. Returns
/// whether it made one.
pub fn ensure_node_id(paths: &Paths) -> std::io::Result<bool> {
    use std::io::Read;
    if node_id(paths).is_some() {
        return Ok(false);
    }
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let path = paths.dir.join(NODE_ID);
    std::fs::write(&path, format!("{}\n", tally_ledger::hex::encode(&bytes)))?;
    Ok(true)
}

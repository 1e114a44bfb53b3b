//! Writing a bundle: [`BundleWriter`] streams the raw entries into `ledger.bin` and the rows,
//! checks them as they pass, then writes the small files, `MANIFEST` and its signature, and
//! moves the finished bundle into place.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};

use crate::chain::ChainVerifier;
use crate::checkpoint::{SignedCheckpoint, VerifierKey};
use crate::entry::EntryView;
use crate::hex::{self, Hex};
use crate::merkle::{Frontier, Hash, leaf_hash};

use super::hashing::{BIN, CSV, JSONL, STREAMED, StreamWriter};
use super::manifest::sign_manifest;
use super::readme::readme;
use super::rows::{csv_header, csv_row, json_row};
use super::{
    ALLOWED_SIGNERS, CHECKPOINT, DESCRIPTION, Description, ENTRIES_CSV, ENTRIES_JSONL, FORMAT,
    LEDGER_BIN, LEDGER_KEY, MANIFEST, MANIFEST_SIG, POLICY, README, REVOKED_KEYS, Range,
    policy_digest,
};

/// Why a bundle could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The output directory exists and is not empty.
    #[error(
        "{}: exists and is not empty; export writes a new bundle only into a new or empty directory",
        path.display()
    )]
    NotEmpty {
        /// The directory.
        path: PathBuf,
    },
    /// The output path has no directory name (`/`, `..`).
    #[error("{}: not a usable directory name for the bundle", path.display())]
    BadOutput {
        /// The path.
        path: PathBuf,
    },
    /// The ledger being exported does not verify; nothing was written.
    #[error("the ledger does not verify at entry {seq}: {problem}; run `tally ledger verify`")]
    Damaged {
        /// The first entry at fault.
        seq: u64,
        /// What is wrong.
        problem: String,
    },
    /// The checkpoint does not verify with the ledger key, or does not sign the entries.
    #[error("the checkpoint cannot be exported: {0}")]
    Checkpoint(String),
    /// Signing the manifest failed.
    #[error("signing MANIFEST failed: {0}")]
    Sign(#[source] ssh_key::Error),
}

impl ExportError {
    /// Whether the error means the ledger itself failed verification (exit 1), as opposed to a
    /// problem with the output or the configuration (exit 2).
    pub fn is_verification_failure(&self) -> bool {
        matches!(
            self,
            ExportError::Damaged { .. } | ExportError::Checkpoint(_)
        )
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What [`BundleWriter::finish`] needs besides the entries: the checkpoint they hash to, the
/// key that signs the manifest, and the files to ship with them.
pub struct Seal<'a> {
    /// The checkpoint of exactly the entries pushed; it must verify with `key`.
    pub checkpoint: &'a SignedCheckpoint,
    /// The ledger key; it signs `MANIFEST`.
    pub key: &'a SigningKey,
    /// The policy file in force.
    pub policy: &'a [u8],
    /// The allowed_signers file in force.
    pub allowed_signers: &'a [u8],
    /// The revocation file, if one is configured.
    pub revoked_keys: Option<&'a [u8]>,
    /// The export time, recorded in `export.json`.
    pub exported_at: jiff::Timestamp,
    /// What wrote the bundle (`tally 0.1.0`).
    pub exported_by: &'a str,
}

/// What a finished export holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The bundle directory.
    pub path: PathBuf,
    /// `export.json` as written.
    pub description: Description,
}

/// Writes a bundle: create it, [`push`](BundleWriter::push) every raw entry from seq 0 up to
/// the checkpoint's size in order, then [`finish`](BundleWriter::finish).
///
/// Everything is written into a temporary directory beside the output, which is renamed into
/// place only when complete, so the output never holds a partial bundle; dropping the writer
/// before `finish` removes the temporary directory. The entries are checked as they stream
/// (strict decoding, the hash chain, the Merkle root against the checkpoint): a damaged
/// ledger is never exported as if it were intact.
pub struct BundleWriter {
    out: PathBuf,
    staging: PathBuf,
    finished: bool,
    range: Range,
    streams: StreamWriter,
    chain: Option<ChainVerifier>,
    repository: String,
    frontier: Frontier,
    rows: u64,
    first_seq: Option<u64>,
    last_seq: Option<u64>,
}

impl BundleWriter {
    /// Starts a bundle for the ledger of `repository` that will land at `out`, which must not
    /// exist or be an empty directory (its parent must exist).
    pub fn create(out: &Path, repository: &str, range: Range) -> Result<BundleWriter, ExportError> {
        check_target(out)?;
        let name = out
            .file_name()
            .filter(|n| *n != "." && *n != "..")
            .ok_or_else(|| ExportError::BadOutput {
                path: out.to_owned(),
            })?;
        let parent = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let staging = parent.join(format!(
            ".{}.tally-export-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        fs::create_dir(&staging).map_err(io_err(&staging))?;
        let create = |name: &str| -> Result<File, ExportError> {
            let path = staging.join(name);
            File::create(&path).map_err(io_err(&path))
        };
        let opened = create(LEDGER_BIN)
            .and_then(|bin| Ok([bin, create(ENTRIES_JSONL)?, create(ENTRIES_CSV)?]));
        let files = match opened {
            Ok(files) => files,
            Err(e) => {
                let _ = fs::remove_dir_all(&staging);
                return Err(e);
            }
        };
        let mut streams = StreamWriter::new(files);
        csv_header(&mut streams.bufs[CSV]);
        Ok(BundleWriter {
            out: out.to_owned(),
            staging,
            finished: false,
            range,
            streams,
            chain: None,
            repository: repository.to_owned(),
            frontier: Frontier::new(),
            rows: 0,
            first_seq: None,
            last_seq: None,
        })
    }

    /// Adds the next raw entry, exactly as stored (and hashed).
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), ExportError> {
        let seq = self.frontier.size();
        let damaged = |problem: String| ExportError::Damaged { seq, problem };
        let view = EntryView::parse(bytes).map_err(|e| damaged(e.to_string()))?;
        let leaf = leaf_hash(bytes);
        let chain = self
            .chain
            .get_or_insert_with(|| ChainVerifier::new(&self.repository));
        chain
            .check(&view, &leaf)
            .map_err(|e| damaged(e.to_string()))?;
        self.frontier.append(&leaf);

        let len = u32::try_from(bytes.len()).map_err(|_| damaged("entry too large".into()))?;
        let bin = &mut self.streams.bufs[BIN];
        bin.extend_from_slice(&len.to_be_bytes());
        bin.extend_from_slice(bytes);
        self.streams
            .ship_if_full(BIN)
            .map_err(|e| self.stream_error(e))?;
        if self.range.contains(&view) {
            self.rows += 1;
            self.first_seq.get_or_insert(view.seq);
            self.last_seq = Some(view.seq);
            json_row(&view, &leaf, &mut self.streams.bufs[JSONL]);
            self.streams
                .ship_if_full(JSONL)
                .map_err(|e| self.stream_error(e))?;
            csv_row(&view, &leaf, &mut self.streams.bufs[CSV]);
            self.streams
                .ship_if_full(CSV)
                .map_err(|e| self.stream_error(e))?;
        }
        Ok(())
    }

    /// The number of entries pushed so far.
    pub fn entries(&self) -> u64 {
        self.frontier.size()
    }

    /// Checks the checkpoint against the entries, writes the remaining files, the manifest and
    /// its signature, and moves the bundle into place.
    pub fn finish(mut self, seal: Seal<'_>) -> Result<Summary, ExportError> {
        let public = seal.key.verifying_key();
        let origin = seal.checkpoint.unverified().origin.clone();
        let verified = VerifierKey::new(&origin, public)
            .and_then(|vkey| seal.checkpoint.verify(&vkey))
            .map_err(|e| ExportError::Checkpoint(e.to_string()))?;
        let root = self.frontier.root();
        if verified.size() != self.frontier.size() || *verified.root() != root {
            return Err(ExportError::Checkpoint(format!(
                "it signs size {} root {}, but the {} entries exported hash to root {}",
                verified.size(),
                Hex(verified.root()),
                self.frontier.size(),
                Hex(&root)
            )));
        }

        let streamed = self.streams.finish().map_err(|e| self.stream_error(e))?;
        let mut hashes: BTreeMap<&str, Hash> = STREAMED.into_iter().zip(streamed).collect();

        let mut policy_files = vec![POLICY.to_owned(), ALLOWED_SIGNERS.to_owned()];
        if seal.revoked_keys.is_some() {
            policy_files.push(REVOKED_KEYS.to_owned());
        }
        let description = Description {
            format: FORMAT.to_owned(),
            origin: origin.clone(),
            repository: self.repository.clone(),
            size: verified.size(),
            root: hex::encode(&root),
            branch: self.range.branch.clone(),
            since: self.range.since.map(|t| t.to_string()),
            until: self.range.until.map(|t| t.to_string()),
            rows: self.rows,
            first_seq: self.first_seq,
            last_seq: self.last_seq,
            policy_files,
            policy_digest: hex::encode(&policy_digest(
                seal.policy,
                seal.allowed_signers,
                seal.revoked_keys.unwrap_or_default(),
            )),
            exported_at: seal.exported_at.to_string(),
            exported_by: seal.exported_by.to_owned(),
        };
        let mut json = serde_json::to_string_pretty(&description)
            .expect("a Description always serialises: strings and integers only");
        json.push('\n');
        let public_line = format!("{}\n", crate::key::public_line(&public, &origin));
        let readme = readme(&description, &verified);

        let mut small: Vec<(&str, &[u8])> = vec![
            (CHECKPOINT, seal.checkpoint.text().as_bytes()),
            (LEDGER_KEY, public_line.as_bytes()),
            (POLICY, seal.policy),
            (ALLOWED_SIGNERS, seal.allowed_signers),
            (DESCRIPTION, json.as_bytes()),
            (README, readme.as_bytes()),
        ];
        if let Some(revoked) = seal.revoked_keys {
            small.push((REVOKED_KEYS, revoked));
        }
        for (name, bytes) in small {
            self.write_file(name, bytes)?;
            hashes.insert(name, Sha256::digest(bytes).into());
        }

        let mut manifest = String::new();
        for (name, hash) in &hashes {
            manifest.push_str(&format!("{}  {name}\n", Hex(hash)));
        }
        let signature = sign_manifest(seal.key, manifest.as_bytes())?;
        self.write_file(MANIFEST, manifest.as_bytes())?;
        self.write_file(MANIFEST_SIG, signature.as_bytes())?;

        if let Ok(dir) = File::open(&self.staging) {
            let _ = dir.sync_all();
        }
        // rename(2) onto an empty directory replaces it; onto a non-empty one it fails, so a
        // directory someone filled meanwhile is never clobbered.
        fs::rename(&self.staging, &self.out).map_err(|source| {
            if fs::read_dir(&self.out).is_ok_and(|mut d| d.next().is_some()) {
                ExportError::NotEmpty {
                    path: self.out.clone(),
                }
            } else {
                ExportError::Io {
                    path: self.out.clone(),
                    source,
                }
            }
        })?;
        self.finished = true;
        if let Some(parent) = self.out.parent()
            && let Ok(dir) = File::open(if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            })
        {
            let _ = dir.sync_all();
        }
        Ok(Summary {
            path: self.out.clone(),
            description,
        })
    }

    fn stream_error(&self, (i, source): (usize, io::Error)) -> ExportError {
        ExportError::Io {
            path: self.staging.join(STREAMED[i]),
            source,
        }
    }

    fn write_file(&self, name: &str, bytes: &[u8]) -> Result<(), ExportError> {
        let path = self.staging.join(name);
        let mut file = File::create(&path).map_err(io_err(&path))?;
        file.write_all(bytes).map_err(io_err(&path))?;
        file.sync_all().map_err(io_err(&path))
    }
}

impl Drop for BundleWriter {
    fn drop(&mut self) {
        if !self.finished {
            // Close the files before removing them.
            let _ = self.streams.join();
            let _ = fs::remove_dir_all(&self.staging);
        }
    }
}

/// Refuses an output that exists and is anything but an empty directory.
fn check_target(out: &Path) -> Result<(), ExportError> {
    match fs::symlink_metadata(out) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(ExportError::Io {
            path: out.to_owned(),
            source,
        }),
        Ok(meta) if meta.is_dir() => {
            let mut entries = fs::read_dir(out).map_err(io_err(out))?;
            if entries.next().is_some() {
                Err(ExportError::NotEmpty {
                    path: out.to_owned(),
                })
            } else {
                Ok(())
            }
        }
        Ok(_) => Err(ExportError::NotEmpty {
            path: out.to_owned(),
        }),
    }
}

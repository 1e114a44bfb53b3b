//! Reading objects from a repository, including a push still in git's quarantine.
//!
//! During `pre-receive`, git keeps the pushed objects in a temporary directory named by
//! `GIT_OBJECT_DIRECTORY` (with `GIT_QUARANTINE_PATH`) and lists the repository's own object
//! directory in `GIT_ALTERNATE_OBJECT_DIRECTORIES` (git-receive-pack(1), "QUARANTINE
//! ENVIRONMENT"). gix does not read those variables, so the store is assembled here: the
//! quarantine first, then the alternates, then the repository's own `objects/`.

use std::path::{Path, PathBuf};

use gix::ObjectId;
use gix::hash::Kind as HashKind;
use gix::objs::{Find, FindHeader, Kind};

/// Delta-base cache per object-store handle.
const PACK_CACHE_BYTES: usize = 4 * 1024 * 1024;

/// The object directories of one repository, searched in order. Cloning is cheap and gives
/// a handle with its own caches, for another thread.
#[derive(Clone)]
pub struct Objects {
    stores: Vec<gix::odb::Handle>,
    hash: HashKind,
}

/// Why an object could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectError {
    /// An object directory could not be opened.
    #[error("cannot open object directory {path}: {source}")]
    Open {
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The object is in none of the object directories.
    #[error("object {id} is missing from the repository")]
    Missing {
        /// The object.
        id: ObjectId,
    },
    /// The object exists but has another type.
    #[error("object {id} is a {found}, expected a {expected}")]
    WrongKind {
        /// The object.
        id: ObjectId,
        /// The type wanted.
        expected: Kind,
        /// The type found.
        found: Kind,
    },
    /// The object store failed (corrupt pack, I/O error).
    #[error("cannot read object {id}: {message}")]
    Read {
        /// The object.
        id: ObjectId,
        /// The store's error.
        message: String,
    },
}

impl Objects {
    /// Opens the object store of the repository at `git_dir`, honouring git's quarantine
    /// variables from the process environment.
    pub fn from_env(git_dir: &Path, hash: HashKind) -> Result<Objects, ObjectError> {
        let primary = std::env::var_os("GIT_OBJECT_DIRECTORY").map(PathBuf::from);
        let alternates = std::env::var_os("GIT_ALTERNATE_OBJECT_DIRECTORIES")
            .map(|v| split_alternates(&v.to_string_lossy()))
            .unwrap_or_default();
        Objects::open(git_dir, primary, alternates, hash)
    }

    /// Opens the stores in the given order: `primary` (the quarantine, when set), the
    /// `alternates`, then `git_dir/objects`. Each store also follows its own
    /// `info/alternates`.
    pub fn open(
        git_dir: &Path,
        primary: Option<PathBuf>,
        alternates: Vec<PathBuf>,
        hash: HashKind,
    ) -> Result<Objects, ObjectError> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        let relative = |p: PathBuf| if p.is_relative() { git_dir.join(p) } else { p };
        dirs.extend(primary.map(relative));
        dirs.extend(alternates.into_iter().map(relative));
        dirs.push(git_dir.join("objects"));
        let mut seen = Vec::new();
        let mut stores = Vec::new();
        for dir in dirs {
            let canonical = dir.canonicalize().map_err(|source| ObjectError::Open {
                path: dir.clone(),
                source,
            })?;
            if seen.contains(&canonical) {
                continue;
            }
            let mut handle =
                gix::odb::at(&canonical, hash).map_err(|source| ObjectError::Open {
                    path: dir.clone(),
                    source,
                })?;
            // Consecutive commits share most of their trees, stored as deltas of each other
            // in the pushed pack: caching delta bases saves re-inflating the same chains for
            // every commit. Each handle (one per store and checking thread) gets its own
            // cache, so it is kept small: peak memory stays bounded at 10,000 commits.
            handle.set_pack_cache(|| {
                Box::new(gix::odb::pack::cache::lru::MemoryCappedHashmap::new(
                    PACK_CACHE_BYTES,
                ))
            });
            seen.push(canonical);
            stores.push(handle);
        }
        Ok(Objects { stores, hash })
    }

    /// The repository's object hash.
    pub fn hash_kind(&self) -> HashKind {
        self.hash
    }

    /// Reads an object of the `expected` kind into `buf`.
    pub fn read<'a>(
        &self,
        id: &ObjectId,
        expected: Kind,
        buf: &'a mut Vec<u8>,
    ) -> Result<&'a [u8], ObjectError> {
        let mut found = None;
        for (i, store) in self.stores.iter().enumerate() {
            let hit = store
                .try_find(id, buf)
                .map_err(|e| ObjectError::Read {
                    id: *id,
                    message: e.to_string(),
                })?
                .map(|data| data.kind);
            if let Some(kind) = hit {
                found = Some((i, kind));
                break;
            }
        }
        let (_, kind) = found.ok_or(ObjectError::Missing { id: *id })?;
        if kind != expected {
            return Err(ObjectError::WrongKind {
                id: *id,
                expected,
                found: kind,
            });
        }
        Ok(buf.as_slice())
    }

    /// Returns an object's kind and size without inflating it.
    pub fn header(&self, id: &ObjectId) -> Result<(Kind, u64), ObjectError> {
        for store in &self.stores {
            let hit = store.try_header(id).map_err(|e| ObjectError::Read {
                id: *id,
                message: e.to_string(),
            })?;
            if let Some(h) = hit {
                return Ok((h.kind, h.size));
            }
        }
        Err(ObjectError::Missing { id: *id })
    }

    /// Whether the object is present in any store.
    pub fn contains(&self, id: &ObjectId) -> bool {
        self.header(id).is_ok()
    }
}

/// Splits `GIT_ALTERNATE_OBJECT_DIRECTORIES` as git does (`alt_odb_usable` /
/// `parse_alt_odb_entry`): entries are separated by `:`, and an entry starting with `"` is a
/// C-quoted string.
fn split_alternates(value: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut rest = value;
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut s = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, e)) = chars.next() {
                            s.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                other => other,
                            });
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => s.push(c),
                }
            }
            if !s.is_empty() {
                out.push(PathBuf::from(s));
            }
            rest = quoted[end.min(quoted.len())..].trim_start_matches(':');
        } else {
            let (entry, tail) = rest.split_once(':').unwrap_or((rest, ""));
            if !entry.is_empty() {
                out.push(PathBuf::from(entry));
            }
            rest = tail;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternates_split_on_colons_and_unquote() {
        assert_eq!(
            split_alternates("/a/objects:/b/objects"),
            vec![PathBuf::from("/a/objects"), PathBuf::from("/b/objects")]
        );
        assert_eq!(
            split_alternates("\"/a:b/objects\":/c"),
            vec![PathBuf::from("/a:b/objects"), PathBuf::from("/c")]
        );
        assert!(split_alternates("").is_empty());
    }
}

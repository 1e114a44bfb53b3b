//! Ledger entries and their byte encoding.
//!
//! An entry records one event on a protected ref: an accepted move, a refused push, the abort
//! of an accepted move whose ref transaction then failed, or a policy change. Its encoding
//! (version 1) is, in this order, with every integer big-endian:
//!
//! | field           | encoding                                                        |
//! |-----------------|-----------------------------------------------------------------|
//! | label           | the 19 bytes `tally/ledger/entry\0`                             |
//! | version         | `u8`, 1                                                         |
//! | seq             | `u64`                                                           |
//! | kind            | `u8`: 1 accepted, 2 rejected, 3 aborted, 4 policy-change        |
//! | time            | `i64` unix seconds, then `u32` nanoseconds (< 10^9)             |
//! | repository      | string                                                          |
//! | refname         | string                                                          |
//! | old, new, new_tree | optional object id each                                      |
//! | commits         | `u32` count, then per commit: object id, principal, fingerprint |
//! | pusher          | string                                                          |
//! | policy_digest   | 32 bytes                                                        |
//! | reasons         | `u32` count, then each a string                                 |
//! | aborts          | `u8` 0, or `u8` 1 then `u64` seq of the cancelled entry         |
//! | prev_hash       | 32 bytes                                                        |
//!
//! A string is a `u32` byte length then that many bytes of UTF-8; an object id is a `u32`
//! length (20 for SHA-1, 32 for SHA-256 repositories) then the raw id; an optional object id
//! is `u8` 0, or `u8` 1 then an object id. Decoding is strict: one encoding per entry, so an
//! entry decodes only from exactly the bytes [`Entry::encode`] produces for it. The encoded
//! bytes are what the ledger stores and hashes (see [`crate::merkle::leaf_hash`]); a verifier
//! never re-serialises an entry.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

use crate::hex;
use crate::merkle::Hash;

/// The domain-separation label every encoded entry starts with.
pub const LABEL: &[u8; 19] = b"tally/ledger/entry\0";

/// The encoding version this crate writes, and the only one it reads.
pub const VERSION: u8 = 1;

/// The largest encoded entry accepted, in bytes (64 MiB): a bound on what one row can make a
/// reader allocate, far above any real push (10,000 signed commits encode to about 1.2 MB).
pub const MAX_ENCODED_LEN: usize = 64 << 20;

const SHA1_LEN: usize = 20;
const SHA256_LEN: usize = 32;
const NANOS_PER_SECOND: u32 = 1_000_000_000;
/// Smallest possible encoding of one commit: three lengths and a 20-byte id.
const MIN_COMMIT_LEN: usize = 4 + SHA1_LEN + 4 + 4;
/// Smallest possible encoding of one reason: its length.
const MIN_REASON_LEN: usize = 4;

/// What an entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A move of a protected ref that passed the policy and was committed to the ledger under
    /// git's ref lock.
    Accepted,
    /// A push the policy refused, with its reasons.
    Rejected,
    /// The cancellation of an earlier accepted entry whose ref transaction aborted, so that no
    /// entry claims a move that never happened.
    Aborted,
    /// A change of the policy itself; with a ref name, the ref's baseline when `tally init`
    /// found it already there.
    PolicyChange,
    /// A deliberate re-baseline of a protected ref by an administrator (`tally ledger
    /// adopt`), after the ref moved outside tally or to bring history tally never judged
    /// under the ledger: the one way a ref's recorded position may jump, visible as such.
    Adopted,
}

impl Kind {
    /// Every kind, in code order.
    pub const ALL: [Kind; 5] = [
        Kind::Accepted,
        Kind::Rejected,
        Kind::Aborted,
        Kind::PolicyChange,
        Kind::Adopted,
    ];

    /// Returns the byte that encodes this kind.
    pub fn code(self) -> u8 {
        match self {
            Kind::Accepted => 1,
            Kind::Rejected => 2,
            Kind::Aborted => 3,
            Kind::PolicyChange => 4,
            Kind::Adopted => 5,
        }
    }

    /// Returns the kind a byte encodes, if any.
    pub fn from_code(code: u8) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.code() == code)
    }

    /// Returns the kind's name as `tally log` shows it and `--kind` accepts it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Accepted => "accepted",
            Kind::Rejected => "rejected",
            Kind::Aborted => "aborted",
            Kind::PolicyChange => "policy-change",
            Kind::Adopted => "adopted",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = EntryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| EntryError::UnknownKindName { name: s.to_owned() })
    }
}

impl Serialize for Kind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A new commit of a move and who signed it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CommitSigner {
    /// The raw commit id (20 or 32 bytes).
    pub commit: Vec<u8>,
    /// The allowed_signers principal that matched the signature (empty if there was none).
    pub principal: String,
    /// The signing key's fingerprint, as `ssh-keygen -l` prints it (empty if unsigned).
    pub fingerprint: String,
}

/// One ledger entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    /// The entry's position in the ledger, from 0; also its leaf index in the Merkle tree.
    pub seq: u64,
    /// What the entry records.
    pub kind: Kind,
    /// When the ledger appended the entry.
    pub time: jiff::Timestamp,
    /// The id of the repository whose ledger this is.
    pub repository: String,
    /// The full ref name (`refs/heads/main`); empty where no ref is concerned.
    pub refname: String,
    /// The ref's commit before the move; `None` when the ref was created.
    pub old: Option<Vec<u8>>,
    /// The ref's commit after the move.
    pub new: Option<Vec<u8>>,
    /// The tree of `new`.
    pub new_tree: Option<Vec<u8>>,
    /// Every new commit of the move, oldest first, with its signer.
    pub commits: Vec<CommitSigner>,
    /// Who pushed, as the hosting platform or the transport identified them.
    pub pusher: String,
    /// SHA-256 of the policy in force.
    pub policy_digest: Hash,
    /// Why the push was refused (empty unless rejected).
    pub reasons: Vec<String>,
    /// For an aborted entry, the seq of the entry it cancels; `None` for every other kind.
    pub aborts: Option<u64>,
    /// The leaf hash of the previous entry; 32 zero bytes for the first.
    pub prev_hash: Hash,
}

/// Why an entry could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// The bytes do not start with the entry label, so they are not a tally ledger entry.
    #[error("not a tally ledger entry: the domain-separation label is missing")]
    BadLabel,
    /// The encoding version is not one this crate reads.
    #[error("unsupported entry encoding version {found} (this build reads version {VERSION})")]
    UnsupportedVersion {
        /// The version byte found.
        found: u8,
    },
    /// The bytes end before a field does.
    #[error("entry truncated in {field}: {needed} more bytes needed, {remaining} left")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// How many bytes the field needs.
        needed: usize,
        /// How many bytes were left.
        remaining: usize,
    },
    /// Bytes follow the last field.
    #[error("{count} trailing bytes after the entry")]
    TrailingBytes {
        /// How many bytes follow.
        count: usize,
    },
    /// The entry is larger than [`MAX_ENCODED_LEN`].
    #[error("entry of {len} bytes exceeds the limit of {MAX_ENCODED_LEN} bytes")]
    TooLarge {
        /// The (would-be) encoded length.
        len: usize,
    },
    /// A list claims more items than the remaining bytes could hold.
    #[error("{field} claims {count} items but only {remaining} bytes are left")]
    CountTooLarge {
        /// The list.
        field: &'static str,
        /// The claimed count.
        count: u32,
        /// The bytes left.
        remaining: usize,
    },
    /// A string field is not valid UTF-8.
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 {
        /// The field.
        field: &'static str,
    },
    /// The kind byte is not a known kind.
    #[error("unknown entry kind {found}")]
    UnknownKind {
        /// The kind byte found.
        found: u8,
    },
    /// A kind name is not one of `accepted`, `rejected`, `aborted`, `policy-change`.
    #[error("unknown entry kind {name:?} (expected accepted, rejected, aborted or policy-change)")]
    UnknownKindName {
        /// The name given.
        name: String,
    },
    /// An optional field's presence byte is neither 0 nor 1.
    #[error("{field} has presence byte {tag} (expected 0 or 1)")]
    BadPresence {
        /// The field.
        field: &'static str,
        /// The byte found.
        tag: u8,
    },
    /// An object id is neither 20 (SHA-1) nor 32 (SHA-256) bytes long.
    #[error("{field} is {len} bytes long; an object id is 20 (SHA-1) or 32 (SHA-256) bytes")]
    BadObjectId {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// The nanoseconds of the time are not below one second.
    #[error("time has {nanos} nanoseconds (must be below 1000000000)")]
    BadNanos {
        /// The nanoseconds found.
        nanos: u32,
    },
    /// The time is outside the range of years -9999 to 9999.
    #[error("time {seconds} is out of range")]
    TimeOutOfRange {
        /// The unix seconds found.
        seconds: i64,
    },
    /// An aborted entry does not name the entry it cancels, or another kind names one.
    #[error("a {kind} entry {} name the entry it aborts", if *.kind == Kind::Aborted { "must" } else { "must not" })]
    AbortsMismatch {
        /// The entry's kind.
        kind: Kind,
    },
    /// An aborted entry names itself or a later entry.
    #[error("entry {seq} aborts entry {target}, which is not an earlier entry")]
    AbortsNotEarlier {
        /// The aborting entry.
        seq: u64,
        /// The entry it names.
        target: u64,
    },
}

/// A borrowed, fully validated view of an encoded entry, for reading without copying.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryView<'a> {
    /// See [`Entry::seq`].
    pub seq: u64,
    /// See [`Entry::kind`].
    pub kind: Kind,
    /// See [`Entry::time`].
    pub time: jiff::Timestamp,
    /// See [`Entry::repository`].
    pub repository: &'a str,
    /// See [`Entry::refname`].
    pub refname: &'a str,
    /// See [`Entry::old`].
    pub old: Option<&'a [u8]>,
    /// See [`Entry::new`].
    pub new: Option<&'a [u8]>,
    /// See [`Entry::new_tree`].
    pub new_tree: Option<&'a [u8]>,
    /// See [`Entry::commits`]: (commit, principal, fingerprint).
    pub commits: Vec<(&'a [u8], &'a str, &'a str)>,
    /// See [`Entry::pusher`].
    pub pusher: &'a str,
    /// See [`Entry::policy_digest`].
    pub policy_digest: Hash,
    /// See [`Entry::reasons`].
    pub reasons: Vec<&'a str>,
    /// See [`Entry::aborts`].
    pub aborts: Option<u64>,
    /// See [`Entry::prev_hash`].
    pub prev_hash: Hash,
}

impl Entry {
    /// Borrows the entry as an [`EntryView`] (the commits' list is the one allocation).
    pub fn view(&self) -> EntryView<'_> {
        EntryView {
            seq: self.seq,
            kind: self.kind,
            time: self.time,
            repository: &self.repository,
            refname: &self.refname,
            old: self.old.as_deref(),
            new: self.new.as_deref(),
            new_tree: self.new_tree.as_deref(),
            commits: self
                .commits
                .iter()
                .map(|c| (&c.commit[..], &c.principal[..], &c.fingerprint[..]))
                .collect(),
            pusher: &self.pusher,
            policy_digest: self.policy_digest,
            reasons: self.reasons.iter().map(String::as_str).collect(),
            aborts: self.aborts,
            prev_hash: self.prev_hash,
        }
    }

    /// Encodes the entry (version 1), checking the same rules [`Entry::decode`] enforces.
    pub fn encode(&self) -> Result<Vec<u8>, EntryError> {
        check_aborts(self.seq, self.kind, self.aborts)?;
        for (field, id) in [
            ("old", &self.old),
            ("new", &self.new),
            ("new_tree", &self.new_tree),
        ] {
            if let Some(id) = id {
                check_object_id(field, id)?;
            }
        }
        for commit in &self.commits {
            check_object_id("commit", &commit.commit)?;
        }
        let len = self
            .encoded_len()
            .ok_or(EntryError::TooLarge { len: usize::MAX })?;
        if len > MAX_ENCODED_LEN {
            return Err(EntryError::TooLarge { len });
        }
        let (seconds, nanos) = split_time(self.time)?;

        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(LABEL);
        out.push(VERSION);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.push(self.kind.code());
        out.extend_from_slice(&seconds.to_be_bytes());
        out.extend_from_slice(&nanos.to_be_bytes());
        put_bytes(&mut out, self.repository.as_bytes());
        put_bytes(&mut out, self.refname.as_bytes());
        for id in [&self.old, &self.new, &self.new_tree] {
            match id {
                None => out.push(0),
                Some(id) => {
                    out.push(1);
                    put_bytes(&mut out, id);
                }
            }
        }
        put_count(&mut out, self.commits.len());
        for commit in &self.commits {
            put_bytes(&mut out, &commit.commit);
            put_bytes(&mut out, commit.principal.as_bytes());
            put_bytes(&mut out, commit.fingerprint.as_bytes());
        }
        put_bytes(&mut out, self.pusher.as_bytes());
        out.extend_from_slice(&self.policy_digest);
        put_count(&mut out, self.reasons.len());
        for reason in &self.reasons {
            put_bytes(&mut out, reason.as_bytes());
        }
        match self.aborts {
            None => out.push(0),
            Some(target) => {
                out.push(1);
                out.extend_from_slice(&target.to_be_bytes());
            }
        }
        out.extend_from_slice(&self.prev_hash);
        debug_assert_eq!(out.len(), len);
        Ok(out)
    }

    /// Decodes an entry strictly: exactly the bytes [`Entry::encode`] produces, nothing more.
    pub fn decode(bytes: &[u8]) -> Result<Entry, EntryError> {
        EntryView::parse(bytes).map(|view| view.to_entry())
    }

    /// The exact encoded length, or `None` on overflow.
    fn encoded_len(&self) -> Option<usize> {
        let string = |s: &str| s.len().checked_add(4);
        let optional =
            |id: &Option<Vec<u8>>| id.as_ref().map_or(Some(1), |id| id.len().checked_add(5));
        let mut len: usize = LABEL.len() + 1 + 8 + 1 + 8 + 4;
        len = len.checked_add(string(&self.repository)?)?;
        len = len.checked_add(string(&self.refname)?)?;
        for id in [&self.old, &self.new, &self.new_tree] {
            len = len.checked_add(optional(id)?)?;
        }
        len = len.checked_add(4)?;
        for commit in &self.commits {
            len = len.checked_add(commit.commit.len().checked_add(4)?)?;
            len = len.checked_add(string(&commit.principal)?)?;
            len = len.checked_add(string(&commit.fingerprint)?)?;
        }
        len = len.checked_add(string(&self.pusher)?)?;
        len = len.checked_add(32 + 4)?;
        for reason in &self.reasons {
            len = len.checked_add(string(reason)?)?;
        }
        len = len.checked_add(if self.aborts.is_some() { 9 } else { 1 })?;
        len.checked_add(32)
    }
}

impl<'a> EntryView<'a> {
    /// Parses and validates an encoded entry without copying its strings and ids.
    pub fn parse(bytes: &'a [u8]) -> Result<EntryView<'a>, EntryError> {
        if bytes.len() > MAX_ENCODED_LEN {
            return Err(EntryError::TooLarge { len: bytes.len() });
        }
        let mut r = Reader { rest: bytes };
        if r.take("label", LABEL.len())? != LABEL {
            return Err(EntryError::BadLabel);
        }
        let version = r.u8("version")?;
        if version != VERSION {
            return Err(EntryError::UnsupportedVersion { found: version });
        }
        let seq = r.u64("seq")?;
        let code = r.u8("kind")?;
        let kind = Kind::from_code(code).ok_or(EntryError::UnknownKind { found: code })?;
        let seconds = i64::from_be_bytes(r.array("time")?);
        let nanos = r.u32("time")?;
        let time = join_time(seconds, nanos)?;
        let repository = r.string("repository")?;
        let refname = r.string("refname")?;
        let old = r.optional_object_id("old")?;
        let new = r.optional_object_id("new")?;
        let new_tree = r.optional_object_id("new_tree")?;
        let count = r.count("commits", MIN_COMMIT_LEN)?;
        let mut commits = Vec::with_capacity(count);
        for _ in 0..count {
            let commit = r.object_id("commit")?;
            let principal = r.string("principal")?;
            let fingerprint = r.string("fingerprint")?;
            commits.push((commit, principal, fingerprint));
        }
        let pusher = r.string("pusher")?;
        let policy_digest = r.array("policy_digest")?;
        let count = r.count("reasons", MIN_REASON_LEN)?;
        let mut reasons = Vec::with_capacity(count);
        for _ in 0..count {
            reasons.push(r.string("reason")?);
        }
        let aborts = match r.u8("aborts")? {
            0 => None,
            1 => Some(r.u64("aborts")?),
            tag => {
                return Err(EntryError::BadPresence {
                    field: "aborts",
                    tag,
                });
            }
        };
        let prev_hash = r.array("prev_hash")?;
        if !r.rest.is_empty() {
            return Err(EntryError::TrailingBytes {
                count: r.rest.len(),
            });
        }
        check_aborts(seq, kind, aborts)?;
        Ok(EntryView {
            seq,
            kind,
            time,
            repository,
            refname,
            old,
            new,
            new_tree,
            commits,
            pusher,
            policy_digest,
            reasons,
            aborts,
            prev_hash,
        })
    }

    /// Copies the view into an owned [`Entry`].
    pub fn to_entry(&self) -> Entry {
        Entry {
            seq: self.seq,
            kind: self.kind,
            time: self.time,
            repository: self.repository.to_owned(),
            refname: self.refname.to_owned(),
            old: self.old.map(<[u8]>::to_vec),
            new: self.new.map(<[u8]>::to_vec),
            new_tree: self.new_tree.map(<[u8]>::to_vec),
            commits: self
                .commits
                .iter()
                .map(|(commit, principal, fingerprint)| CommitSigner {
                    commit: commit.to_vec(),
                    principal: (*principal).to_owned(),
                    fingerprint: (*fingerprint).to_owned(),
                })
                .collect(),
            pusher: self.pusher.to_owned(),
            policy_digest: self.policy_digest,
            reasons: self.reasons.iter().map(|r| (*r).to_owned()).collect(),
            aborts: self.aborts,
            prev_hash: self.prev_hash,
        }
    }
}

/// Serialises an entry for `tally log --json`, through [`JsonEntry`].
impl Serialize for Entry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        JsonEntry {
            entry: &self.view(),
            leaf_hash: None,
        }
        .serialize(serializer)
    }
}

/// An entry as JSON: the one rendering `tally log --json` prints and a bundle's
/// `entries.jsonl` holds (the latter with `leaf_hash`).
///
/// Fields in this order: `seq`, `kind`, `time`, `repository`, `ref`, `old`, `new`, `new_tree`,
/// `commits` (objects `{commit, principal, fingerprint}`), `pusher`, `policy_digest`,
/// `reasons`, `aborts`, `prev_hash`, then `leaf_hash` when given. Ids and hashes are lowercase
/// hex, absent ones `null`; the time is RFC 3339 UTC.
pub struct JsonEntry<'a> {
    /// The entry.
    pub entry: &'a EntryView<'a>,
    /// Its Merkle leaf hash, for rows that carry it.
    pub leaf_hash: Option<&'a Hash>,
}

impl Serialize for JsonEntry<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Commits<'a>(&'a [(&'a [u8], &'a str, &'a str)]);
        impl Serialize for Commits<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                #[derive(Serialize)]
                struct Commit<'a> {
                    commit: hex::Hex<'a>,
                    principal: &'a str,
                    fingerprint: &'a str,
                }
                serializer.collect_seq(self.0.iter().map(|&(commit, principal, fingerprint)| {
                    Commit {
                        commit: hex::Hex(commit),
                        principal,
                        fingerprint,
                    }
                }))
            }
        }
        let e = self.entry;
        let fields = if self.leaf_hash.is_some() { 15 } else { 14 };
        let mut s = serializer.serialize_struct("Entry", fields)?;
        s.serialize_field("seq", &e.seq)?;
        s.serialize_field("kind", &e.kind)?;
        s.serialize_field("time", &Display(&e.time))?;
        s.serialize_field("repository", e.repository)?;
        s.serialize_field("ref", e.refname)?;
        s.serialize_field("old", &e.old.map(hex::Hex))?;
        s.serialize_field("new", &e.new.map(hex::Hex))?;
        s.serialize_field("new_tree", &e.new_tree.map(hex::Hex))?;
        s.serialize_field("commits", &Commits(&e.commits))?;
        s.serialize_field("pusher", e.pusher)?;
        s.serialize_field("policy_digest", &hex::Hex(&e.policy_digest))?;
        s.serialize_field("reasons", &e.reasons)?;
        s.serialize_field("aborts", &e.aborts)?;
        s.serialize_field("prev_hash", &hex::Hex(&e.prev_hash))?;
        if let Some(leaf) = self.leaf_hash {
            s.serialize_field("leaf_hash", &hex::Hex(leaf))?;
        }
        s.end()
    }
}

/// Serialises a value as the string its `Display` gives, formatted on the stack when it is
/// short (a timestamp is), without an intermediate `String`.
struct Display<'a, T>(&'a T);

impl<T: fmt::Display> Serialize for Display<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Buf {
            bytes: [u8; 64],
            len: usize,
        }
        impl fmt::Write for Buf {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                let end = self.len + s.len();
                let slot = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
                slot.copy_from_slice(s.as_bytes());
                self.len = end;
                Ok(())
            }
        }
        let mut buf = Buf {
            bytes: [0; 64],
            len: 0,
        };
        if fmt::write(&mut buf, format_args!("{}", self.0)).is_ok()
            && let Ok(text) = std::str::from_utf8(&buf.bytes[..buf.len])
        {
            return serializer.serialize_str(text);
        }
        serializer.collect_str(self.0)
    }
}

fn check_aborts(seq: u64, kind: Kind, aborts: Option<u64>) -> Result<(), EntryError> {
    match (kind, aborts) {
        (Kind::Aborted, Some(target)) if target >= seq => {
            Err(EntryError::AbortsNotEarlier { seq, target })
        }
        (Kind::Aborted, Some(_)) => Ok(()),
        (_, None) if kind != Kind::Aborted => Ok(()),
        _ => Err(EntryError::AbortsMismatch { kind }),
    }
}

fn check_object_id(field: &'static str, id: &[u8]) -> Result<(), EntryError> {
    match id.len() {
        SHA1_LEN | SHA256_LEN => Ok(()),
        len => Err(EntryError::BadObjectId { field, len }),
    }
}

/// Splits a time into unix seconds (floored) and the nanoseconds past them.
fn split_time(time: jiff::Timestamp) -> Result<(i64, u32), EntryError> {
    let total = time.as_nanosecond();
    let per = i128::from(NANOS_PER_SECOND);
    let seconds = i64::try_from(total.div_euclid(per)).map_err(|_| EntryError::TimeOutOfRange {
        seconds: time.as_second(),
    })?;
    let nanos = u32::try_from(total.rem_euclid(per)).map_err(|_| EntryError::TimeOutOfRange {
        seconds: time.as_second(),
    })?;
    Ok((seconds, nanos))
}

fn join_time(seconds: i64, nanos: u32) -> Result<jiff::Timestamp, EntryError> {
    if nanos >= NANOS_PER_SECOND {
        return Err(EntryError::BadNanos { nanos });
    }
    let total = i128::from(seconds) * i128::from(NANOS_PER_SECOND) + i128::from(nanos);
    jiff::Timestamp::from_nanosecond(total).map_err(|_| EntryError::TimeOutOfRange { seconds })
}

fn put_count(out: &mut Vec<u8>, count: usize) {
    // The caller checked the total length against MAX_ENCODED_LEN, which is below u32::MAX.
    let count = u32::try_from(count).unwrap_or(u32::MAX);
    out.extend_from_slice(&count.to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_count(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// A cursor over untrusted bytes; every read is bounds-checked and names its field.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, field: &'static str, needed: usize) -> Result<&'a [u8], EntryError> {
        if self.rest.len() < needed {
            return Err(EntryError::Truncated {
                field,
                needed,
                remaining: self.rest.len(),
            });
        }
        let (head, tail) = self.rest.split_at(needed);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], EntryError> {
        let bytes = self.take(field, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, EntryError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, EntryError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, EntryError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], EntryError> {
        let len = self.u32(field)?;
        // A u32 always fits in usize on the 32- and 64-bit targets tally supports; if it did
        // not, the length could not be satisfied anyway.
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        self.take(field, len)
    }

    fn string(&mut self, field: &'static str) -> Result<&'a str, EntryError> {
        std::str::from_utf8(self.bytes(field)?).map_err(|_| EntryError::InvalidUtf8 { field })
    }

    fn object_id(&mut self, field: &'static str) -> Result<&'a [u8], EntryError> {
        let id = self.bytes(field)?;
        check_object_id(field, id)?;
        Ok(id)
    }

    fn optional_object_id(&mut self, field: &'static str) -> Result<Option<&'a [u8]>, EntryError> {
        match self.u8(field)? {
            0 => Ok(None),
            1 => self.object_id(field).map(Some),
            tag => Err(EntryError::BadPresence { field, tag }),
        }
    }

    /// Reads a list count, refusing counts the remaining bytes cannot hold, so that a forged
    /// count never makes the reader allocate more than the input's size.
    fn count(&mut self, field: &'static str, min_item_len: usize) -> Result<usize, EntryError> {
        let count = self.u32(field)?;
        let remaining = self.rest.len();
        let fits = usize::try_from(count)
            .ok()
            .and_then(|n| n.checked_mul(min_item_len))
            .is_some_and(|needed| needed <= remaining);
        if !fits {
            return Err(EntryError::CountTooLarge {
                field,
                count,
                remaining,
            });
        }
        Ok(usize::try_from(count).unwrap_or(0))
    }
}

#[cfg(test)]
pub(crate) mod tests;

//! Tree objects exactly as git stores them, and git's own rules for their entries.
//!
//! git judges tree entries (`fsck.c`, `fsck_tree`) only when the server sets
//! `receive.fsckObjects`, which is off by default and which an administrator can turn off.
//! tally applies the same rules itself to every tree object a new commit brings, so that no
//! signed tree can hold a name a checkout would write into `.git` (on any file system), a
//! `..`, two entries of the same name, or a mode git would read differently from tally.
//!
//! The entries are parsed here, from the raw bytes, because the rules are about the raw bytes:
//! gix's tree iterator reads the mode `0100644` as `100644`, which fsck reports as
//! zero-padded. gix-validate's `path::component` covers only the name rules, and differs from
//! fsck where it matters here: without its Windows protections it does not read a backslash
//! as a separator (`a\.git`), with them it refuses names git accepts (`system:admin.yaml`, a
//! common Kubernetes RBAC file name), and it knows no `.gitattributes`, `.gitignore` or
//! `.mailmap`. A test checks that the two agree where both judge.

use std::collections::HashMap;

use gix::ObjectId;
use gix::hash::Kind as HashKind;
use gix::objs::Kind;
use gix::objs::tree::EntryKind;

use crate::objects::{ObjectError, Objects};

mod name;

pub use name::{Special, is_dotgit};

/// Longest entry name fsck accepts by default (`fsck.c`, `max_tree_entry_len`).
pub const MAX_NAME_LEN: usize = 4096;

/// One entry of a tree object, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The mode, exactly as written: octal digits.
    pub mode: &'a [u8],
    /// The name: any bytes but NUL.
    pub name: &'a [u8],
    /// The object the entry points to.
    pub id: ObjectId,
}

impl Entry<'_> {
    /// The mode's value as git reads it (`parse_mode`: octal, kept in 16 bits).
    pub fn mode_value(&self) -> u16 {
        let mode = self.mode.iter().fold(0u32, |m, d| {
            m.wrapping_shl(3).wrapping_add(u32::from(d - b'0'))
        });
        // git stores the parsed mode in a uint16_t.
        (mode & 0xffff) as u16
    }

    /// What git makes of the entry at checkout (`canon_mode`): a regular file, executable if
    /// the owner may execute it; a symbolic link; a tree; and anything else a gitlink.
    pub fn kind(&self) -> EntryKind {
        let mode = self.mode_value();
        match mode & 0o170000 {
            0o100000 if mode & 0o100 != 0 => EntryKind::BlobExecutable,
            0o100000 => EntryKind::Blob,
            0o120000 => EntryKind::Link,
            0o040000 => EntryKind::Tree,
            _ => EntryKind::Commit,
        }
    }
}

/// Why a tree object cannot be read as a list of entries (fsck's `badTree`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("tree object cannot be parsed: {reason}")]
pub struct Malformed {
    /// What is wrong.
    pub reason: &'static str,
}

/// The entries of a tree object, in stored order; stops after the first parse error.
pub struct Entries<'a> {
    rest: &'a [u8],
    hash: HashKind,
}

/// Iterates over the entries of the tree object `raw`.
pub fn entries(raw: &[u8], hash: HashKind) -> Entries<'_> {
    Entries { rest: raw, hash }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let parsed = parse_entry(self.rest, self.hash);
        match parsed {
            Ok((entry, rest)) => {
                self.rest = rest;
                Some(Ok(entry))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// One entry, as `decode_tree_entry` reads it: `<octal mode> <name>\0<raw object id>`.
fn parse_entry(raw: &[u8], hash: HashKind) -> Result<(Entry<'_>, &[u8]), Malformed> {
    let bad = |reason| Err(Malformed { reason });
    let Some(space) = raw.iter().position(|b| *b == b' ') else {
        return bad("an entry has no mode");
    };
    let mode = &raw[..space];
    if mode.is_empty() || !mode.iter().all(|b| (b'0'..=b'7').contains(b)) {
        return bad("an entry's mode is not octal");
    }
    let after = &raw[space + 1..];
    let Some(nul) = after.iter().position(|b| *b == 0) else {
        return bad("an entry's name is not terminated");
    };
    let name = &after[..nul];
    let len = hash.len_in_bytes();
    let Some(id) = after.get(nul + 1..nul + 1 + len) else {
        return bad("an entry's object id is truncated");
    };
    let entry = Entry {
        mode,
        name,
        // `id` is exactly `hash.len_in_bytes()` long, the one length this cannot refuse.
        id: ObjectId::from_bytes_or_panic(id),
    };
    Ok((entry, &after[nul + 1 + len..]))
}

/// What is wrong with one entry of a tree, or with the tree around it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TreeProblem {
    /// The tree object does not parse; entries after the fault are not judged.
    #[error("{0}")]
    Malformed(Malformed),
    /// An empty name.
    #[error("tree entry has an empty name")]
    EmptyName,
    /// A name holding `/`.
    #[error("tree entry name contains '/'")]
    FullPathname,
    /// The name `.`.
    #[error("tree entry is named '.'")]
    Dot,
    /// The name `..`.
    #[error("tree entry is named '..', which would leave its directory")]
    DotDot,
    /// `.git`, or a name HFS+ or NTFS reads as `.git`.
    #[error(
        "tree entry is named .git or a name macOS (HFS+) or Windows (NTFS) reads as .git; a checkout there writes into the repository's own .git"
    )]
    DotGit,
    /// A name longer than fsck accepts.
    #[error("tree entry name is {len} bytes, over git's {MAX_NAME_LEN} byte limit")]
    LongName {
        /// Its length.
        len: usize,
    },
    /// An entry pointing to the all-zero object id.
    #[error("tree entry points to the null object id")]
    NullId,
    /// A mode with a leading zero (`040000`, `0100644`).
    #[error("tree entry mode {mode} is zero-padded")]
    ZeroPaddedMode {
        /// The mode as written.
        mode: String,
    },
    /// A mode other than the five git writes (`100644`, `100755`, `120000`, `40000`,
    /// `160000`); fsck tolerates the historical `100664` unless `--strict`, tally does not.
    #[error("tree entry mode {mode} is not one git writes")]
    BadMode {
        /// The mode as written.
        mode: String,
    },
    /// Entries out of git's tree order.
    #[error("tree entries are not in git's order")]
    NotSorted,
    /// A second entry of the same name (also a file and a directory of one name).
    #[error("tree holds two entries of this name")]
    Duplicate,
    /// `.gitmodules`, `.gitattributes`, `.gitignore` or `.mailmap` as a symbolic link.
    #[error("{} is a symbolic link; git reads it from the work tree, so it must be a regular file", .0.file_name())]
    SpecialSymlink(Special),
    /// The mode says one object type, the object is another (a "file" that is a tree).
    #[error("tree entry mode says {expected} but the object is a {found}")]
    WrongObjectType {
        /// The type the mode calls for.
        expected: Kind,
        /// The object's type.
        found: Kind,
    },
}

impl TreeProblem {
    /// git's fsck message id for the same finding (`fsck.h`), where git has one.
    pub fn git_msg_id(&self) -> Option<&'static str> {
        Some(match self {
            TreeProblem::Malformed(_) => "badTree",
            TreeProblem::EmptyName => "emptyName",
            TreeProblem::FullPathname => "fullPathname",
            TreeProblem::Dot => "hasDot",
            TreeProblem::DotDot => "hasDotdot",
            TreeProblem::DotGit => "hasDotgit",
            TreeProblem::LongName { .. } => "largePathname",
            TreeProblem::NullId => "nullSha1",
            TreeProblem::ZeroPaddedMode { .. } => "zeroPaddedFilemode",
            TreeProblem::BadMode { .. } => "badFilemode",
            TreeProblem::NotSorted => "treeNotSorted",
            TreeProblem::Duplicate => "duplicateEntries",
            TreeProblem::SpecialSymlink(Special::Gitmodules) => "gitmodulesSymlink",
            TreeProblem::SpecialSymlink(Special::Gitattributes) => "gitattributesSymlink",
            TreeProblem::SpecialSymlink(Special::Gitignore) => "gitignoreSymlink",
            TreeProblem::SpecialSymlink(Special::Mailmap) => "mailmapSymlink",
            TreeProblem::WrongObjectType { .. } => return None,
        })
    }

    /// What the committer should do about it, in one line.
    pub fn fix(&self, path: &str) -> String {
        match self {
            TreeProblem::DotGit => format!(
                "rename it so no file system can read it as .git: {} <new name>",
                crate::files::on_path("git mv", path)
            ),
            TreeProblem::LongName { .. } => format!(
                "rename it to a shorter name: {} <shorter name>",
                crate::files::on_path("git mv", path)
            ),
            TreeProblem::SpecialSymlink(_) => format!(
                "replace the link with a regular file: {}",
                crate::files::on_path("git rm", path)
            ),
            _ => "git never writes such a tree: recreate the commit with git add and git commit -S, then push again".into(),
        }
    }
}

/// One problem found in a tree object, with the name of the entry it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding<'a> {
    /// The entry's name (for a parse error, the empty name).
    pub name: &'a [u8],
    /// What is wrong.
    pub problem: TreeProblem,
}

/// Judges one tree object by git's fsck rules for trees (`fsck_tree`), entry by entry: names,
/// modes, order and duplicates, and special files as symbolic links. Every finding is
/// returned; a parse error ends the list.
pub fn check(raw: &[u8], hash: HashKind) -> Vec<Finding<'_>> {
    let mut out = Vec::new();
    let mut previous: Option<Entry<'_>> = None;
    let mut candidates = Vec::new();
    for entry in entries(raw, hash) {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                out.push(Finding {
                    name: b"",
                    problem: TreeProblem::Malformed(e),
                });
                break;
            }
        };
        let mut found = |problem| {
            out.push(Finding {
                name: entry.name,
                problem,
            })
        };
        for problem in check_entry(&entry) {
            found(problem);
        }
        if let Some(prev) = previous {
            match order(&prev, &entry, &mut candidates) {
                Order::Ordered => {}
                Order::Unordered => found(TreeProblem::NotSorted),
                Order::Duplicate => found(TreeProblem::Duplicate),
            }
        }
        previous = Some(entry);
    }
    out
}

/// The rules about one entry alone.
fn check_entry(entry: &Entry<'_>) -> Vec<TreeProblem> {
    let mut out = Vec::new();
    let name = entry.name;
    if name.is_empty() {
        out.push(TreeProblem::EmptyName);
    }
    if name.contains(&b'/') {
        out.push(TreeProblem::FullPathname);
    }
    match name {
        b"." => out.push(TreeProblem::Dot),
        b".." => out.push(TreeProblem::DotDot),
        _ => {}
    }
    if is_dotgit(name) {
        out.push(TreeProblem::DotGit);
    }
    if name.len() > MAX_NAME_LEN {
        out.push(TreeProblem::LongName { len: name.len() });
    }
    if entry.id.is_null() {
        out.push(TreeProblem::NullId);
    }
    let mode = || String::from_utf8_lossy(entry.mode).into_owned();
    if entry.mode.first() == Some(&b'0') {
        out.push(TreeProblem::ZeroPaddedMode { mode: mode() });
    } else if !matches!(
        entry.mode,
        b"100644" | b"100755" | b"120000" | b"40000" | b"160000"
    ) {
        out.push(TreeProblem::BadMode { mode: mode() });
    }
    if entry.kind() == EntryKind::Link {
        for special in Special::ALL {
            if special.matches(name) {
                out.push(TreeProblem::SpecialSymlink(special));
            }
        }
    }
    out
}

enum Order {
    Ordered,
    Unordered,
    Duplicate,
}

/// Whether `b` may follow `a` in a tree (`fsck.c`, `verify_ordered`). Entries sort by name,
/// a tree's name as if it ended in `/`; so a file `a` and a tree `a` need not be neighbours
/// (`a`, `a.c`, `a/`), and names that could still meet a tree of the same name wait on the
/// `candidates` stack.
fn order<'a>(a: &Entry<'a>, b: &Entry<'a>, candidates: &mut Vec<&'a [u8]>) -> Order {
    let (n1, n2) = (a.name, b.name);
    let len = n1.len().min(n2.len());
    match n1[..len].cmp(&n2[..len]) {
        std::cmp::Ordering::Less => return Order::Ordered,
        std::cmp::Ordering::Greater => return Order::Unordered,
        std::cmp::Ordering::Equal => {}
    }
    let is_dir = |e: &Entry<'_>| e.mode_value() & 0o170000 == 0o040000;
    let mut c1 = n1.get(len).copied().unwrap_or(0);
    let mut c2 = n2.get(len).copied().unwrap_or(0);
    if c1 == 0 && c2 == 0 {
        return Order::Duplicate;
    }
    if c1 == 0 && is_dir(a) {
        c1 = b'/';
    }
    if c2 == 0 && is_dir(b) {
        c2 = b'/';
    }
    let less_than_slash = |c: u8| c != 0 && c < b'/';
    if c1 == 0 && less_than_slash(c2) {
        candidates.push(n1);
    } else if c2 == b'/' && less_than_slash(c1) {
        while let Some(f) = candidates.pop() {
            let Some(rest) = n2.strip_prefix(f) else {
                continue;
            };
            match rest.first() {
                None => return Order::Duplicate,
                Some(&c) if less_than_slash(c) => {
                    candidates.push(f);
                    break;
                }
                Some(_) => {}
            }
        }
    }
    if c1 < c2 {
        Order::Ordered
    } else {
        Order::Unordered
    }
}

/// One added or modified entry that is not a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Slash-separated path from the root, raw bytes.
    pub path: Vec<u8>,
    /// What git makes of the entry's mode.
    pub kind: EntryKind,
    /// The object.
    pub id: ObjectId,
}

/// What a walk over the new tree objects of a commit found.
#[derive(Debug, Default)]
pub struct Diff {
    /// Added or modified non-tree entries, sorted by path.
    pub changes: Vec<Change>,
    /// Problems in the new tree objects, as `(path, problem)`; the path is the entry's, or the
    /// tree's own for a parse error.
    pub problems: Vec<(Vec<u8>, TreeProblem)>,
}

/// Lists the entries added or modified between the trees `old` (none: everything is new) and
/// `new`, and judges every tree object read on the new side with [`check`], without recursion
/// (a hostile push can nest trees arbitrarily deep). A subtree whose id is unchanged at the
/// same path is skipped: it was judged when it landed. An entry whose mode says tree but whose
/// object is not one is a [`TreeProblem::WrongObjectType`]. `buf` is scratch space.
pub fn diff(
    objects: &Objects,
    old: Option<ObjectId>,
    new: ObjectId,
    buf: &mut Vec<u8>,
) -> Result<Diff, ObjectError> {
    let hash = objects.hash_kind();
    let mut out = Diff::default();
    let mut stack = vec![(old, new, Vec::<u8>::new())];
    while let Some((old, new, prefix)) = stack.pop() {
        if old == Some(new) {
            continue;
        }
        let join = |name: &[u8]| {
            let mut path = prefix.clone();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(name);
            path
        };
        let mut before = HashMap::new();
        if let Some(old) = old {
            let raw = objects.read(&old, Kind::Tree, buf)?;
            for entry in entries(raw, hash) {
                let entry = entry.map_err(|e| ObjectError::Read {
                    id: old,
                    message: e.to_string(),
                })?;
                before.insert(entry.name.to_vec(), (entry.kind(), entry.id));
            }
        }
        let raw = match objects.read(&new, Kind::Tree, buf) {
            Ok(raw) => raw,
            Err(ObjectError::WrongKind {
                expected, found, ..
            }) => {
                out.problems.push((
                    prefix.clone(),
                    TreeProblem::WrongObjectType { expected, found },
                ));
                continue;
            }
            Err(e) => return Err(e),
        };
        for finding in check(raw, hash) {
            out.problems.push((join(finding.name), finding.problem));
        }
        for entry in entries(raw, hash) {
            // A parse error is among the findings already.
            let Ok(entry) = entry else { break };
            let kind = entry.kind();
            let prior = before.get(entry.name);
            if prior == Some(&(kind, entry.id)) {
                continue;
            }
            let path = join(entry.name);
            if kind == EntryKind::Tree {
                let old_tree = prior.and_then(|(k, i)| (*k == EntryKind::Tree).then_some(*i));
                stack.push((old_tree, entry.id, path));
            } else {
                out.changes.push(Change {
                    path,
                    kind,
                    id: entry.id,
                });
            }
        }
    }
    out.changes.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const BLOB: &str = "100644";
    const TREE: &str = "40000";

    /// A raw SHA-1 tree object from `(mode, name)` pairs, each entry pointing to a non-null id.
    fn tree(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut raw = Vec::new();
        for (mode, name) in entries {
            raw.extend_from_slice(mode.as_bytes());
            raw.push(b' ');
            raw.extend_from_slice(name);
            raw.push(0);
            raw.extend_from_slice(&[0x11; 20]);
        }
        raw
    }

    /// The problems `check` reports, as `(name, git message id)`.
    fn ids(raw: &[u8]) -> Vec<(String, &'static str)> {
        check(raw, HashKind::Sha1)
            .into_iter()
            .map(|f| {
                (
                    String::from_utf8_lossy(f.name).into_owned(),
                    f.problem.git_msg_id().unwrap(),
                )
            })
            .collect()
    }

    fn one(mode: &str, name: &[u8]) -> Vec<(String, &'static str)> {
        ids(&tree(&[(mode, name)]))
    }

    #[test]
    fn accepts_what_git_writes() {
        let raw = tree(&[
            (BLOB, b".gitattributes"),
            ("100755", b"a.c"),
            (TREE, b"a"),
            ("120000", b"b"),
            ("160000", b"c"),
            (BLOB, b"system:admin.yaml"),
            (BLOB, "\u{e9}t\u{e9}.yaml".as_bytes()),
        ]);
        assert_eq!(ids(&raw), []);
        let kinds: Vec<EntryKind> = entries(&raw, HashKind::Sha1)
            .map(|e| e.unwrap().kind())
            .collect();
        use EntryKind::*;
        assert_eq!(
            kinds,
            [Blob, BlobExecutable, Tree, Link, Commit, Blob, Blob]
        );
    }

    #[test]
    fn refuses_dot_and_dotdot() {
        assert_eq!(one(TREE, b"."), [(".".into(), "hasDot")]);
        assert_eq!(one(TREE, b".."), [("..".into(), "hasDotdot")]);
        assert_eq!(one(BLOB, b"..."), []);
    }

    #[test]
    fn refuses_dotgit_in_every_spelling() {
        for name in [
            &b".git"[..],
            b".GIT",
            ".g\u{200c}it".as_bytes(),
            b".git. ",
            b"git~1",
            b".git::$INDEX_ALLOCATION",
            b"x\\.git",
        ] {
            assert_eq!(
                one(TREE, name),
                [(String::from_utf8_lossy(name).into_owned(), "hasDotgit")]
            );
        }
    }

    #[test]
    fn refuses_empty_name_and_slash_in_a_name() {
        assert_eq!(one(BLOB, b""), [(String::new(), "emptyName")]);
        assert_eq!(one(BLOB, b"a/b"), [("a/b".into(), "fullPathname")]);
        assert_eq!(
            one(BLOB, b"a/.git"),
            [("a/.git".into(), "fullPathname")],
            "a name with '/' is not .git to HFS+ (only the part after it would be)"
        );
    }

    #[test]
    fn refuses_overlong_name() {
        let name = vec![b'a'; MAX_NAME_LEN + 1];
        assert_eq!(one(BLOB, &name)[0].1, "largePathname");
        assert_eq!(one(BLOB, &name[1..]), []);
    }

    #[test]
    fn refuses_null_object_id() {
        let mut raw = tree(&[(BLOB, b"a")]);
        let n = raw.len();
        raw[n - 20..].fill(0);
        assert_eq!(ids(&raw), [("a".into(), "nullSha1")]);
    }

    #[test]
    fn refuses_zero_padded_and_bad_modes() {
        assert_eq!(one("040000", b"d"), [("d".into(), "zeroPaddedFilemode")]);
        assert_eq!(one("0100644", b"f"), [("f".into(), "zeroPaddedFilemode")]);
        for mode in [
            "100664", "100600", "100000", "1", "140000", "170000", "2100644",
        ] {
            assert_eq!(one(mode, b"f"), [("f".into(), "badFilemode")], "{mode}");
        }
    }

    #[test]
    fn reads_modes_as_git_does() {
        let kind = |mode: &str| {
            entries(&tree(&[(mode, b"f")]), HashKind::Sha1)
                .next()
                .unwrap()
                .unwrap()
                .kind()
        };
        assert_eq!(kind("0100644"), EntryKind::Blob);
        assert_eq!(kind("100664"), EntryKind::Blob);
        assert_eq!(kind("100700"), EntryKind::BlobExecutable);
        assert_eq!(kind("040000"), EntryKind::Tree);
        // git's canon_mode: anything it does not know is a gitlink.
        assert_eq!(kind("1"), EntryKind::Commit);
        // Only 16 bits are kept: 3100644 is 100644 to git.
        assert_eq!(kind("3100644"), EntryKind::Blob);
    }

    #[test]
    fn refuses_unsorted_entries() {
        let raw = tree(&[(BLOB, b"b"), (BLOB, b"a")]);
        assert_eq!(ids(&raw), [("a".into(), "treeNotSorted")]);
        // A tree sorts as if its name ended in '/': `a.c` before the tree `a`.
        let raw = tree(&[(TREE, b"a"), (BLOB, b"a.c")]);
        assert_eq!(ids(&raw), [("a.c".into(), "treeNotSorted")]);
        let raw = tree(&[(BLOB, b"a.c"), (TREE, b"a")]);
        assert_eq!(ids(&raw), []);
    }

    #[test]
    fn refuses_duplicate_names() {
        let raw = tree(&[(BLOB, b"a"), (BLOB, b"a")]);
        assert_eq!(ids(&raw), [("a".into(), "duplicateEntries")]);
        let raw = tree(&[(BLOB, b"a"), (TREE, b"a")]);
        assert_eq!(ids(&raw), [("a".into(), "duplicateEntries")]);
    }

    #[test]
    fn refuses_a_file_and_a_tree_of_one_name_that_are_not_neighbours() {
        // In git's order the file `foo` and the tree `foo` are apart: `foo`, `foo.bar`,
        // `foo.bar.baz`, `foo.bar/`, `foo/` (the example in fsck.c).
        let raw = tree(&[
            (BLOB, b"foo"),
            (BLOB, b"foo.bar"),
            (BLOB, b"foo.bar.baz"),
            (TREE, b"foo.bar"),
            (TREE, b"foo"),
        ]);
        assert_eq!(
            ids(&raw),
            [
                ("foo.bar".into(), "duplicateEntries"),
                ("foo".into(), "duplicateEntries")
            ]
        );
        let raw = tree(&[(BLOB, b"foo"), (BLOB, b"foo.bar"), (TREE, b"foo")]);
        assert_eq!(ids(&raw), [("foo".into(), "duplicateEntries")]);
        let raw = tree(&[(BLOB, b"foo"), (BLOB, b"foo.bar"), (TREE, b"foox")]);
        assert_eq!(ids(&raw), []);
    }

    #[test]
    fn refuses_special_files_as_symlinks() {
        for (name, id) in [
            (&b".gitmodules"[..], "gitmodulesSymlink"),
            (b".GITMODULES ", "gitmodulesSymlink"),
            (b"gitmod~1", "gitmodulesSymlink"),
            (b"x\\.gitmodules", "gitmodulesSymlink"),
            (b".gitattributes", "gitattributesSymlink"),
            (b"gi7d29~1", "gitattributesSymlink"),
            (b".gitignore", "gitignoreSymlink"),
            (b".mailmap", "mailmapSymlink"),
        ] {
            assert_eq!(
                one("120000", name),
                [(String::from_utf8_lossy(name).into_owned(), id)]
            );
            assert_eq!(one(BLOB, name), []);
        }
    }

    #[test]
    fn refuses_malformed_trees() {
        let mut raw = tree(&[(BLOB, b"a")]);
        raw.pop();
        assert_eq!(ids(&raw), [(String::new(), "badTree")]);
        assert_eq!(
            ids(b"10064x a\0aaaaaaaaaaaaaaaaaaaa"),
            [(String::new(), "badTree")]
        );
        assert_eq!(
            ids(b" a\0aaaaaaaaaaaaaaaaaaaa"),
            [(String::new(), "badTree")]
        );
        assert_eq!(ids(b"100644 a"), [(String::new(), "badTree")]);
        // Entries before the fault are still judged.
        let mut raw = tree(&[(BLOB, b".git")]);
        raw.extend_from_slice(b"100644 b");
        assert_eq!(
            ids(&raw),
            [(".git".into(), "hasDotgit"), (String::new(), "badTree")]
        );
    }

    #[test]
    fn reports_each_problem_of_an_entry() {
        let raw = tree(&[(BLOB, b"b"), ("0120000", b".gitmodules")]);
        assert_eq!(
            ids(&raw),
            [
                (".gitmodules".into(), "zeroPaddedFilemode"),
                (".gitmodules".into(), "gitmodulesSymlink"),
                (".gitmodules".into(), "treeNotSorted"),
            ]
        );
    }
}

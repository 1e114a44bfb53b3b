//! Raw commit objects: the headers tally needs, and the signature split exactly as git splits it.
//!
//! Git's rule (`commit.c: parse_buffer_signed_by_header`): in the header block (everything
//! before the first empty line), a line `gpgsig <text>` and the continuation lines that follow
//! it (each starting with one space) form the signature; the payload that was signed is the
//! object with those lines removed. For SHA-256 repositories the header is `gpgsig-sha256`.
//!
//! Git concatenates every signature header it finds and drops headers of the other hash
//! algorithm from the payload, so a commit with a second signature header gets a new object id
//! while an old signature still verifies. tally refuses any commit with more than one signature
//! header instead of reproducing that.
//!
//! The header block must also have the shape `fsck.c: fsck_commit` requires (`tree`, then any
//! `parent`s, then exactly one `author`, then `committer`; no NUL; the last header line ends
//! in LF), with no second `tree`, `author` or `committer` anywhere: git's readers disagree about
//! a repeated header (`git log --format=%ce` shows the *last* `committer` line, `fsck` reads
//! only the first and stops), so a commit that has one could be shown with another committer
//! than the one tally checked. tally enforces this whether or not the server sets
//! `receive.fsckObjects`. Identities are read as in [`ident`].

use gix::ObjectId;

pub mod ident;

pub use ident::{Identity, IdentityDefect};

/// What the header block says about signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureHeader {
    /// No `gpgsig`/`gpgsig-sha256` header.
    Unsigned,
    /// Exactly one signature header, of the kind this repository's hash uses.
    One {
        /// The signature text with the header name and continuation spaces removed.
        signature: Vec<u8>,
        /// The commit object without the signature header: the bytes that were signed.
        payload: Vec<u8>,
    },
    /// Exactly one signature header, but for the other hash algorithm (git ignores it).
    OtherAlgorithm {
        /// The header name found (`gpgsig` or `gpgsig-sha256`).
        header: String,
    },
    /// More than one signature header.
    Multiple {
        /// How many headers there are.
        count: usize,
    },
}

/// The parts of a commit object tally checks.
#[derive(Debug, Clone)]
pub struct Commit {
    /// The commit's own id.
    pub id: ObjectId,
    /// Root tree.
    pub tree: ObjectId,
    /// Parent ids in order.
    pub parents: Vec<ObjectId>,
    /// The author line.
    pub author: Identity,
    /// The committer line.
    pub committer: Identity,
    /// The signature split from the payload.
    pub signature: SignatureHeader,
    /// The first line of the message, for messages to the pusher.
    pub summary: String,
}

/// Why a commit object is refused. Messages leave out the commit id: whoever shows the
/// error names the commit (see `revision::Violation`).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommitError {
    /// A NUL byte in the header block (`fsck`: nulInHeader, fatal).
    #[error("NUL byte in the commit header at offset {offset}")]
    NulInHeader {
        /// The commit.
        id: ObjectId,
        /// Byte offset in the object.
        offset: usize,
    },
    /// A NUL byte in the message (`fsck`: nulInCommit). `git commit` refuses to write one, and
    /// git's message readers stop at it, so what was signed is not what git shows.
    #[error("NUL byte in the commit message at offset {offset}")]
    NulInMessage {
        /// The commit.
        id: ObjectId,
        /// Byte offset in the object.
        offset: usize,
    },
    /// The last header line has no LF and no message follows (`fsck`: unterminatedHeader).
    #[error("the commit header does not end with a newline")]
    UnterminatedHeader {
        /// The commit.
        id: ObjectId,
    },
    /// A header git requires is absent.
    #[error("missing {header} header")]
    Missing {
        /// The commit.
        id: ObjectId,
        /// The header.
        header: &'static str,
    },
    /// A header that must appear once appears again (`tree`, `author`, `committer`,
    /// `encoding`).
    #[error("second {header} header on line {line} (git shows one, tally would check another)")]
    Duplicate {
        /// The commit.
        id: ObjectId,
        /// The header.
        header: &'static str,
        /// Line of the repeated header, from 1.
        line: usize,
    },
    /// A header where git's fsck requires another (`tree`, `parent`s, `author`, `committer`
    /// open every commit, in that order).
    #[error("{found:?} header on line {line} where git requires {expected}")]
    OutOfOrder {
        /// The commit.
        id: ObjectId,
        /// The header name found (lossy).
        found: String,
        /// What git's fsck expects there.
        expected: &'static str,
        /// Line, from 1.
        line: usize,
    },
    /// A continuation line (starting with a space) after a header that is one line.
    #[error("line {line} continues the {header} header, which is one line")]
    Continuation {
        /// The commit.
        id: ObjectId,
        /// The header continued (or `nothing` before the first header).
        header: &'static str,
        /// Line, from 1.
        line: usize,
    },
    /// A tree or parent id does not parse.
    #[error("malformed {header} header: {reason}")]
    Malformed {
        /// The commit.
        id: ObjectId,
        /// The header.
        header: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An author or committer line git's fsck refuses.
    #[error("malformed {header} line: {defect}")]
    Identity {
        /// The commit.
        id: ObjectId,
        /// `author` or `committer`.
        header: &'static str,
        /// Which rule it breaks.
        defect: IdentityDefect,
    },
    /// An `encoding` other than UTF-8: git re-encodes the whole header block, names and
    /// emails included, before showing it (`pretty.c: repo_logmsg_reencode`), so the bytes
    /// tally checked are not what git shows.
    #[error("commit encoding {encoding:?}; only UTF-8 is accepted")]
    Encoding {
        /// The commit.
        id: ObjectId,
        /// The header's value (lossy).
        encoding: String,
    },
}

/// Where each header line must be: the order `fsck_commit` checks.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Tree,
    ParentsOrAuthor,
    Committer,
    Rest,
}

impl Stage {
    fn expected(self) -> &'static str {
        match self {
            Stage::Tree => "tree first",
            Stage::ParentsOrAuthor => "parent or author after tree",
            Stage::Committer => "committer after author",
            Stage::Rest => "no tree, parent, author or committer after committer",
        }
    }
}

/// A header line: its name, value, and where it is in the object.
struct Line<'a> {
    number: usize,
    start: usize,
    end: usize,
    name: &'a [u8],
    value: &'a [u8],
    continuation: bool,
    /// No space after the name: git does not take such a line as its signature header.
    bare: bool,
}

/// Splits the header block into lines (each ending in LF, which is left out of `value`).
fn lines(headers: &[u8]) -> impl Iterator<Item = Line<'_>> {
    let mut pos = 0;
    let mut number = 0;
    std::iter::from_fn(move || {
        if pos >= headers.len() {
            return None;
        }
        let end = memchr(b'\n', &headers[pos..]).map_or(headers.len(), |i| pos + i + 1);
        let content = headers[pos..end]
            .strip_suffix(b"\n")
            .unwrap_or(&headers[pos..end]);
        number += 1;
        let continuation = content.first() == Some(&b' ');
        let (name, value) = match memchr(b' ', content) {
            _ if continuation => (&b""[..], &content[1..]),
            Some(i) => (&content[..i], &content[i + 1..]),
            None => (content, &b""[..]),
        };
        let line = Line {
            number,
            start: pos,
            end,
            name,
            value,
            continuation,
            bare: !continuation && memchr(b' ', content).is_none(),
        };
        pos = end;
        Some(line)
    })
}

/// Where the header block ends and the message begins (`fsck.c: verify_headers`).
fn split_header(id: ObjectId, raw: &[u8]) -> Result<(usize, usize), CommitError> {
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            0 => return Err(CommitError::NulInHeader { id, offset: i }),
            b'\n' if i == 0 => return Ok((0, 1)),
            b'\n' if raw.get(i + 1) == Some(&b'\n') => return Ok((i + 1, i + 2)),
            _ => {}
        }
        i += 1;
    }
    if raw.last() == Some(&b'\n') {
        Ok((raw.len(), raw.len()))
    } else {
        Err(CommitError::UnterminatedHeader { id })
    }
}

impl Commit {
    /// Parses a raw commit object (`git cat-file commit` bytes), refusing what git's fsck
    /// refuses and any header git's readers could disagree about.
    ///
    /// `sha256` selects which signature header belongs to this repository (`gpgsig-sha256`
    /// for SHA-256 object ids, `gpgsig` otherwise) and the length of tree and parent ids.
    pub fn parse(id: ObjectId, raw: &[u8], sha256: bool) -> Result<Commit, CommitError> {
        // 1. The header block ends at the first empty line; no NUL anywhere.
        let (header_end, body_start) = split_header(id, raw)?;
        if let Some(i) = memchr(0, &raw[body_start..]) {
            return Err(CommitError::NulInMessage {
                id,
                offset: body_start + i,
            });
        }
        let headers = &raw[..header_end];
        // 2. The headers every commit has.
        for header in ["tree", "author", "committer"] {
            if !lines(headers).any(|l| !l.continuation && l.name == header.as_bytes()) {
                return Err(CommitError::Missing { id, header });
            }
        }
        // 3. Each header line in git's order, once each, and the signature headers.
        let mut reader = Headers::new(id, sha256);
        for line in lines(headers) {
            reader.line(&line)?;
        }
        // 4. The commit, with the signature and the payload it signs.
        reader.finish(raw, body_start)
    }
}

/// The state of reading a commit's header lines, one at a time (step 3 of [`Commit::parse`]).
struct Headers<'a> {
    id: ObjectId,
    /// This repository's signature header: `gpgsig` (SHA-1) or `gpgsig-sha256`.
    own_header: &'static [u8],
    /// The length of a tree or parent id in hex.
    hex_len: usize,
    stage: Stage,
    tree: Option<ObjectId>,
    parents: Vec<ObjectId>,
    author: Option<Identity>,
    committer: Option<Identity>,
    encoding_seen: bool,
    /// Every `gpgsig*` header's name.
    sig_headers: Vec<&'a [u8]>,
    /// This repository's signature header: start, end, and the signature text.
    own_sig: Option<(usize, usize, Vec<u8>)>,
    /// Whether continuation lines now continue `own_sig`.
    in_sig: bool,
    /// The header the next continuation line would continue, if it is one line only.
    one_line: Option<&'static str>,
}

impl<'a> Headers<'a> {
    fn new(id: ObjectId, sha256: bool) -> Headers<'a> {
        Headers {
            id,
            own_header: if sha256 { b"gpgsig-sha256" } else { b"gpgsig" },
            hex_len: if sha256 { 64 } else { 40 },
            stage: Stage::Tree,
            tree: None,
            parents: Vec::new(),
            author: None,
            committer: None,
            encoding_seen: false,
            sig_headers: Vec::new(),
            own_sig: None,
            in_sig: false,
            one_line: Some("nothing"),
        }
    }

    fn line(&mut self, line: &Line<'a>) -> Result<(), CommitError> {
        if line.continuation {
            return self.continuation(line);
        }
        self.in_sig = false;
        self.one_line = None;
        let id = self.id;
        let out_of_order = |stage: Stage| CommitError::OutOfOrder {
            id,
            found: String::from_utf8_lossy(line.name).into_owned(),
            expected: stage.expected(),
            line: line.number,
        };
        let duplicate = |header: &'static str| CommitError::Duplicate {
            id,
            header,
            line: line.number,
        };
        match (line.name, self.stage) {
            (b"tree", Stage::Tree) => {
                self.one_line = Some("tree");
                self.tree = Some(parse_id(id, "tree", line.value, self.hex_len)?);
                self.stage = Stage::ParentsOrAuthor;
            }
            (b"tree", _) => return Err(duplicate("tree")),
            (b"parent", Stage::ParentsOrAuthor) => {
                self.one_line = Some("parent");
                self.parents
                    .push(parse_id(id, "parent", line.value, self.hex_len)?);
            }
            (b"parent", stage) => return Err(out_of_order(stage)),
            (b"author", Stage::ParentsOrAuthor) => {
                self.one_line = Some("author");
                self.author = Some(parse_identity(id, "author", line.value)?);
                self.stage = Stage::Committer;
            }
            (b"author", Stage::Tree) => return Err(out_of_order(Stage::Tree)),
            (b"author", _) => return Err(duplicate("author")),
            (b"committer", Stage::Committer) => {
                self.one_line = Some("committer");
                self.committer = Some(parse_identity(id, "committer", line.value)?);
                self.stage = Stage::Rest;
            }
            (b"committer", Stage::Rest) => return Err(duplicate("committer")),
            (b"committer", stage) => return Err(out_of_order(stage)),
            (_, stage) if stage != Stage::Rest => return Err(out_of_order(stage)),
            (b"encoding", _) => {
                if self.encoding_seen {
                    return Err(duplicate("encoding"));
                }
                self.encoding_seen = true;
                self.one_line = Some("encoding");
                if !is_utf8_name(line.value) {
                    return Err(CommitError::Encoding {
                        id,
                        encoding: String::from_utf8_lossy(line.value).into_owned(),
                    });
                }
            }
            (name, _) if name.starts_with(b"gpgsig") => self.signature(line),
            // Other headers (mergetag, extensions) are not read by tally nor shown by git
            // as author or committer; continuation lines may follow them.
            _ => {}
        }
        Ok(())
    }

    /// A line that continues the previous header (it starts with a space).
    fn continuation(&mut self, line: &Line<'a>) -> Result<(), CommitError> {
        if let Some(header) = self.one_line {
            return Err(CommitError::Continuation {
                id: self.id,
                header,
                line: line.number,
            });
        }
        if let (true, Some((_, sig_end, text))) = (self.in_sig, self.own_sig.as_mut()) {
            text.extend_from_slice(line.value);
            text.push(b'\n');
            *sig_end = line.end;
        }
        Ok(())
    }

    /// A `gpgsig*` header. `gpgsig` alone is not git's signature header (it needs the space),
    /// but git drops it from the payload like another algorithm's: count it.
    fn signature(&mut self, line: &Line<'a>) {
        self.sig_headers.push(line.name);
        if line.name == self.own_header && !line.bare && self.own_sig.is_none() {
            let mut text = line.value.to_vec();
            text.push(b'\n');
            self.own_sig = Some((line.start, line.end, text));
            self.in_sig = true;
        }
    }

    fn finish(self, raw: &[u8], body_start: usize) -> Result<Commit, CommitError> {
        let id = self.id;
        let (Some(tree), Some(author), Some(committer)) = (self.tree, self.author, self.committer)
        else {
            // Each was found by the pre-scan, so the order check returned first.
            return Err(CommitError::Missing {
                id,
                header: "committer",
            });
        };
        let signature = match (self.sig_headers.len(), self.own_sig) {
            (0, _) => SignatureHeader::Unsigned,
            (1, Some((start, end, signature))) => {
                let mut payload = Vec::with_capacity(raw.len() - (end - start));
                payload.extend_from_slice(&raw[..start]);
                payload.extend_from_slice(&raw[end..]);
                SignatureHeader::One { signature, payload }
            }
            (1, None) => SignatureHeader::OtherAlgorithm {
                header: String::from_utf8_lossy(self.sig_headers[0]).into_owned(),
            },
            (count, _) => SignatureHeader::Multiple { count },
        };
        let body = &raw[body_start.min(raw.len())..];
        let first = body.split(|b| *b == b'\n').next().unwrap_or(b"");
        Ok(Commit {
            id,
            tree,
            parents: self.parents,
            author,
            committer,
            signature,
            summary: String::from_utf8_lossy(first).into_owned(),
        })
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|b| *b == needle)
}

/// Whether an `encoding` value names UTF-8 the way git's `is_encoding_utf8` does.
fn is_utf8_name(value: &[u8]) -> bool {
    value.eq_ignore_ascii_case(b"utf-8") || value.eq_ignore_ascii_case(b"utf8")
}

fn parse_id(
    id: ObjectId,
    header: &'static str,
    value: &[u8],
    hex_len: usize,
) -> Result<ObjectId, CommitError> {
    let malformed = |reason: String| CommitError::Malformed { id, header, reason };
    if value.len() != hex_len {
        return Err(malformed(format!(
            "expected {hex_len} hex digits, found {} bytes",
            value.len()
        )));
    }
    ObjectId::from_hex(value).map_err(|e| malformed(e.to_string()))
}

fn parse_identity(
    id: ObjectId,
    header: &'static str,
    value: &[u8],
) -> Result<Identity, CommitError> {
    Identity::parse(value).map_err(|defect| CommitError::Identity { id, header, defect })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn id() -> ObjectId {
        ObjectId::from_hex(b"1111111111111111111111111111111111111111").unwrap()
    }

    const SIGNED: &[u8] = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\
parent 2222222222222222222222222222222222222222\n\
author A U Thor <a@example.com> 1700000000 +0100\n\
committer C O Mitter <c@example.com> 1700000100 -0230\n\
gpgsig -----BEGIN SSH SIGNATURE-----\n \
U1NIU0lH\n \
-----END SSH SIGNATURE-----\n\
\n\
subject line\n\nbody gpgsig not a header\n";

    const TREE: &str = "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n";
    const PARENT: &str = "parent 2222222222222222222222222222222222222222\n";
    const AUTHOR: &str = "author A <a@x> 1 +0000\n";
    const COMMITTER: &str = "committer C <c@x> 2 +0000\n";

    fn parse(headers: &[&str]) -> Result<Commit, CommitError> {
        let mut raw = headers.concat();
        raw.push_str("\nmsg\n");
        Commit::parse(id(), raw.as_bytes(), false)
    }

    #[test]
    fn splits_signature_and_payload_like_git() {
        let c = Commit::parse(id(), SIGNED, false).unwrap();
        assert_eq!(c.parents.len(), 1);
        assert_eq!(c.author.email, "a@example.com");
        assert_eq!(c.committer.email, "c@example.com");
        assert_eq!(c.committer.seconds, 1_700_000_100);
        assert_eq!(c.committer.offset, "-0230");
        assert_eq!(c.summary, "subject line");
        match c.signature {
            SignatureHeader::One { signature, payload } => {
                assert_eq!(
                    signature,
                    b"-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n"
                );
                let expected = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\
parent 2222222222222222222222222222222222222222\n\
author A U Thor <a@example.com> 1700000000 +0100\n\
committer C O Mitter <c@example.com> 1700000100 -0230\n\
\n\
subject line\n\nbody gpgsig not a header\n";
                assert_eq!(payload, expected);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn second_signature_header_is_reported_not_merged() {
        let mut raw = SIGNED.to_vec();
        let at = raw.windows(7).position(|w| w == b"\n\nsubje").unwrap() + 1;
        raw.splice(at..at, b"gpgsig-sha256 extra\n more\n".iter().copied());
        let c = Commit::parse(id(), &raw, false).unwrap();
        assert_eq!(c.signature, SignatureHeader::Multiple { count: 2 });
    }

    #[test]
    fn signature_header_of_other_hash_is_not_a_signature() {
        let raw = String::from_utf8(SIGNED.to_vec())
            .unwrap()
            .replace("gpgsig ", "gpgsig-sha256 ");
        let c = Commit::parse(id(), raw.as_bytes(), false).unwrap();
        assert_eq!(
            c.signature,
            SignatureHeader::OtherAlgorithm {
                header: "gpgsig-sha256".into()
            }
        );
    }

    /// git takes `gpgsig ` (with the space) as the signature header; a bare `gpgsig` line is
    /// dropped from the payload like another algorithm's header, so it is not one signature.
    #[test]
    fn bare_signature_header_name_is_not_the_signature() {
        let c = parse(&[TREE, AUTHOR, COMMITTER, "gpgsig\n"]).unwrap();
        assert_eq!(
            c.signature,
            SignatureHeader::OtherAlgorithm {
                header: "gpgsig".into()
            }
        );
    }

    #[test]
    fn unsigned_commit_has_no_signature() {
        let c = parse(&[TREE, AUTHOR, COMMITTER]).unwrap();
        assert_eq!(c.signature, SignatureHeader::Unsigned);
        assert!(c.parents.is_empty());
    }

    #[test]
    fn missing_tree_author_or_committer_is_refused() {
        for (headers, header) in [
            (&[AUTHOR, COMMITTER][..], "tree"),
            (&[TREE, COMMITTER][..], "author"),
            (&[TREE, PARENT, AUTHOR][..], "committer"),
        ] {
            assert!(
                matches!(parse(headers), Err(CommitError::Missing { header: h, .. }) if h == header),
                "{headers:?}"
            );
        }
    }

    /// Issue 10: `git log --format=%ce` shows the last `committer` line, fsck reads the first.
    #[test]
    fn duplicate_tree_author_or_committer_is_refused() {
        let second_committer = "committer B <b@y> 3 +0000\n";
        for (headers, header, line) in [
            (&[TREE, TREE, AUTHOR, COMMITTER][..], "tree", 2),
            (&[TREE, AUTHOR, AUTHOR, COMMITTER][..], "author", 3),
            (
                &[TREE, AUTHOR, COMMITTER, second_committer][..],
                "committer",
                4,
            ),
            (
                &[TREE, AUTHOR, COMMITTER, "foo bar\n", second_committer][..],
                "committer",
                5,
            ),
            (&[TREE, AUTHOR, COMMITTER, AUTHOR][..], "author", 4),
            (&[TREE, AUTHOR, COMMITTER, TREE][..], "tree", 4),
            (
                &[
                    TREE,
                    AUTHOR,
                    COMMITTER,
                    "encoding UTF-8\n",
                    "encoding utf8\n",
                ][..],
                "encoding",
                5,
            ),
        ] {
            assert_eq!(
                parse(headers).unwrap_err(),
                CommitError::Duplicate {
                    id: id(),
                    header,
                    line
                },
                "{headers:?}"
            );
        }
    }

    #[test]
    fn header_order_is_the_one_fsck_requires() {
        for (headers, found, line) in [
            (&[AUTHOR, TREE, COMMITTER][..], "author", 1),
            (&[PARENT, TREE, AUTHOR, COMMITTER][..], "parent", 1),
            (&[TREE, COMMITTER, AUTHOR][..], "committer", 2),
            (&[TREE, AUTHOR, PARENT, COMMITTER][..], "parent", 3),
            (&[TREE, AUTHOR, COMMITTER, PARENT][..], "parent", 4),
            (
                &[TREE, "encoding UTF-8\n", AUTHOR, COMMITTER][..],
                "encoding",
                2,
            ),
            (&[TREE, AUTHOR, "gpgsig x\n", COMMITTER][..], "gpgsig", 3),
        ] {
            assert!(
                matches!(parse(headers), Err(CommitError::OutOfOrder { found: f, line: l, .. }) if f == found && l == line),
                "{headers:?}: {:?}",
                parse(headers)
            );
        }
        assert!(parse(&[TREE, PARENT, PARENT, AUTHOR, COMMITTER, "mergetag x\n y\n"]).is_ok());
    }

    #[test]
    fn continuation_of_a_one_line_header_is_refused() {
        for (headers, header) in [
            (&[" x\n", TREE, AUTHOR, COMMITTER][..], "nothing"),
            (&[TREE, " x\n", AUTHOR, COMMITTER][..], "tree"),
            (&[TREE, AUTHOR, COMMITTER, " x\n"][..], "committer"),
            (
                &[TREE, AUTHOR, COMMITTER, "encoding UTF-8\n", " x\n"][..],
                "encoding",
            ),
        ] {
            assert!(
                matches!(parse(headers), Err(CommitError::Continuation { header: h, .. }) if h == header),
                "{headers:?}"
            );
        }
    }

    #[test]
    fn malformed_identities_name_their_defect() {
        for (headers, header, defect) in [
            (
                &[TREE, AUTHOR, "committer nobody 1 +0000\n"][..],
                "committer",
                IdentityDefect::NoEmail,
            ),
            (
                &[TREE, AUTHOR, "committer x <x@y> soon +0000\n"][..],
                "committer",
                IdentityDefect::BadDate,
            ),
            (
                &[TREE, AUTHOR, "committer x <x@y>\n"][..],
                "committer",
                IdentityDefect::NoSpaceBeforeDate,
            ),
            (
                &[TREE, "author x<x@y> 1 +0000\n", COMMITTER][..],
                "author",
                IdentityDefect::NoSpaceBeforeEmail,
            ),
        ] {
            assert_eq!(
                parse(headers).unwrap_err(),
                CommitError::Identity {
                    id: id(),
                    header,
                    defect
                },
                "{headers:?}"
            );
        }
    }

    /// git shows `b` as the email of `a <b> c <c@example.com>` (first `<...>`); the old reader
    /// took the last one.
    #[test]
    fn name_with_angle_brackets_is_refused() {
        assert_eq!(
            parse(&[TREE, AUTHOR, "committer a <b> c <c@example.com> 5 +0000\n"]).unwrap_err(),
            CommitError::Identity {
                id: id(),
                header: "committer",
                defect: IdentityDefect::BadDate
            }
        );
    }

    #[test]
    fn nul_bytes_are_refused() {
        let mut raw = [TREE, AUTHOR, COMMITTER, "\nmsg\n"].concat().into_bytes();
        raw[TREE.len() + 3] = 0;
        assert_eq!(
            Commit::parse(id(), &raw, false).unwrap_err(),
            CommitError::NulInHeader {
                id: id(),
                offset: TREE.len() + 3
            }
        );
        let raw = [TREE, AUTHOR, COMMITTER, "\nm\0sg\n"].concat();
        let offset = raw.len() - 4;
        assert_eq!(
            Commit::parse(id(), raw.as_bytes(), false).unwrap_err(),
            CommitError::NulInMessage { id: id(), offset }
        );
    }

    #[test]
    fn unterminated_header_is_refused() {
        let raw = [TREE, AUTHOR, COMMITTER.trim_end()].concat();
        assert_eq!(
            Commit::parse(id(), raw.as_bytes(), false).unwrap_err(),
            CommitError::UnterminatedHeader { id: id() }
        );
        // No message at all is not a crime, as long as the last header ends in LF.
        let raw = [TREE, AUTHOR, COMMITTER].concat();
        assert!(Commit::parse(id(), raw.as_bytes(), false).is_ok());
    }

    #[test]
    fn only_utf8_encoding_is_accepted() {
        for ok in ["UTF-8", "utf8", "Utf-8"] {
            let enc = format!("encoding {ok}\n");
            assert!(parse(&[TREE, AUTHOR, COMMITTER, &enc]).is_ok(), "{ok}");
        }
        assert_eq!(
            parse(&[TREE, AUTHOR, COMMITTER, "encoding UTF-7\n"]).unwrap_err(),
            CommitError::Encoding {
                id: id(),
                encoding: "UTF-7".into()
            }
        );
    }

    #[test]
    fn ids_of_the_wrong_length_are_refused() {
        let sha256_tree = format!("tree {}\n", "4".repeat(64));
        assert!(matches!(
            parse(&[&sha256_tree, AUTHOR, COMMITTER]),
            Err(CommitError::Malformed { header: "tree", .. })
        ));
        assert!(matches!(
            parse(&[TREE, "parent 22\n", AUTHOR, COMMITTER]),
            Err(CommitError::Malformed {
                header: "parent",
                ..
            })
        ));
    }

    #[test]
    fn truncated_object_never_panics() {
        for end in 0..SIGNED.len() {
            let _ = Commit::parse(id(), &SIGNED[..end], false);
        }
    }
}

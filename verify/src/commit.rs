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

use gix::ObjectId;

/// The committer (or author) line of a commit: name, email and the timestamp git records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Name as written, before the `<`.
    pub name: String,
    /// Email between `<` and `>`.
    pub email: String,
    /// Seconds since the Unix epoch.
    pub seconds: i64,
    /// The time zone offset as written (`+0100`).
    pub offset: String,
}

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
    /// The committer line.
    pub committer: Identity,
    /// The signature split from the payload.
    pub signature: SignatureHeader,
    /// The first line of the message, for messages to the pusher.
    pub summary: String,
}

/// Why a commit object could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommitError {
    /// A header git requires is absent.
    #[error("commit {id}: missing {header} header")]
    Missing {
        /// The commit.
        id: ObjectId,
        /// The header.
        header: &'static str,
    },
    /// A header's value does not parse.
    #[error("commit {id}: malformed {header} header: {reason}")]
    Malformed {
        /// The commit.
        id: ObjectId,
        /// The header.
        header: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl Commit {
    /// Parses a raw commit object (`git cat-file commit` bytes).
    ///
    /// `sha256` selects which signature header belongs to this repository (`gpgsig-sha256`
    /// for SHA-256 object ids, `gpgsig` otherwise).
    pub fn parse(id: ObjectId, raw: &[u8], sha256: bool) -> Result<Commit, CommitError> {
        let own_header: &[u8] = if sha256 { b"gpgsig-sha256" } else { b"gpgsig" };
        let mut tree = None;
        let mut parents = Vec::new();
        let mut committer = None;
        let mut sig_headers: Vec<Vec<u8>> = Vec::new();
        let mut own_sig: Option<(usize, usize, Vec<u8>)> = None; // start, end, signature text
        let mut in_sig = false;

        let mut pos = 0;
        let body_start;
        loop {
            if pos >= raw.len() {
                body_start = raw.len();
                break;
            }
            let end = memchr(b'\n', &raw[pos..]).map_or(raw.len(), |i| pos + i + 1);
            let line = &raw[pos..end];
            if line == b"\n" {
                body_start = end;
                break;
            }
            let content = line.strip_suffix(b"\n").unwrap_or(line);
            if content.first() == Some(&b' ') {
                // A continuation line belongs to the header above it.
                if let (true, Some((_, sig_end, text))) = (in_sig, own_sig.as_mut()) {
                    text.extend_from_slice(&line[1..]);
                    *sig_end = end;
                }
                pos = end;
                continue;
            }
            in_sig = false;
            let (name, value) = match memchr(b' ', content) {
                Some(i) => (&content[..i], &content[i + 1..]),
                None => (content, &b""[..]),
            };
            match name {
                b"tree" if tree.is_none() => tree = Some(parse_id(id, "tree", value)?),
                b"parent" => parents.push(parse_id(id, "parent", value)?),
                b"committer" if committer.is_none() => {
                    committer = Some(parse_identity(id, value)?);
                }
                _ if name.starts_with(b"gpgsig") => {
                    sig_headers.push(name.to_vec());
                    if name == own_header && own_sig.is_none() {
                        let mut text = value.to_vec();
                        if line.ends_with(b"\n") {
                            text.push(b'\n');
                        }
                        own_sig = Some((pos, end, text));
                        in_sig = true;
                    }
                }
                _ => {}
            }
            pos = end;
        }

        let tree = tree.ok_or(CommitError::Missing { id, header: "tree" })?;
        let committer = committer.ok_or(CommitError::Missing {
            id,
            header: "committer",
        })?;
        let signature = match (sig_headers.len(), own_sig) {
            (0, _) => SignatureHeader::Unsigned,
            (1, Some((start, end, signature))) => {
                let mut payload = Vec::with_capacity(raw.len() - (end - start));
                payload.extend_from_slice(&raw[..start]);
                payload.extend_from_slice(&raw[end..]);
                SignatureHeader::One { signature, payload }
            }
            (1, None) => SignatureHeader::OtherAlgorithm {
                header: String::from_utf8_lossy(&sig_headers[0]).into_owned(),
            },
            (count, _) => SignatureHeader::Multiple { count },
        };
        let body = &raw[body_start.min(raw.len())..];
        let first = body.split(|b| *b == b'\n').next().unwrap_or(b"");
        let summary = String::from_utf8_lossy(first).into_owned();
        Ok(Commit {
            id,
            tree,
            parents,
            committer,
            signature,
            summary,
        })
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|b| *b == needle)
}

fn parse_id(id: ObjectId, header: &'static str, value: &[u8]) -> Result<ObjectId, CommitError> {
    ObjectId::from_hex(value).map_err(|e| CommitError::Malformed {
        id,
        header,
        reason: e.to_string(),
    })
}

/// Parses `Name <email> 1700000000 +0100`, reading from the right as git does
/// (`split_ident_line`), so that names containing `<` still parse.
fn parse_identity(id: ObjectId, value: &[u8]) -> Result<Identity, CommitError> {
    let bad = |reason: &str| CommitError::Malformed {
        id,
        header: "committer",
        reason: reason.to_owned(),
    };
    let close = value
        .iter()
        .rposition(|b| *b == b'>')
        .ok_or_else(|| bad("no '>' after the email"))?;
    let open = value[..close]
        .iter()
        .rposition(|b| *b == b'<')
        .ok_or_else(|| bad("no '<' before the email"))?;
    let name = String::from_utf8_lossy(value[..open].trim_ascii_end()).into_owned();
    let email = std::str::from_utf8(&value[open + 1..close])
        .map_err(|_| bad("email is not UTF-8"))?
        .to_owned();
    let rest = std::str::from_utf8(&value[close + 1..])
        .map_err(|_| bad("date is not UTF-8"))?
        .trim();
    let mut parts = rest.split_ascii_whitespace();
    let seconds = parts
        .next()
        .ok_or_else(|| bad("no timestamp"))?
        .parse::<i64>()
        .map_err(|_| bad("timestamp is not a number"))?;
    let offset = parts.next().unwrap_or("+0000").to_owned();
    Ok(Identity {
        name,
        email,
        seconds,
        offset,
    })
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

    #[test]
    fn splits_signature_and_payload_like_git() {
        let c = Commit::parse(id(), SIGNED, false).unwrap();
        assert_eq!(c.parents.len(), 1);
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

    #[test]
    fn unsigned_commit_has_no_signature() {
        let raw =
            b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\ncommitter x <x@y> 1 +0000\n\nmsg\n";
        let c = Commit::parse(id(), raw, false).unwrap();
        assert_eq!(c.signature, SignatureHeader::Unsigned);
        assert!(c.parents.is_empty());
    }

    #[test]
    fn missing_tree_is_an_error() {
        let raw = b"committer x <x@y> 1 +0000\n\nmsg\n";
        assert!(matches!(
            Commit::parse(id(), raw, false),
            Err(CommitError::Missing { header: "tree", .. })
        ));
    }

    #[test]
    fn malformed_committer_is_an_error() {
        for raw in [
            &b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\ncommitter nobody 1 +0000\n\n"[..],
            b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\ncommitter x <x@y> soon +0000\n\n",
            b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\ncommitter x <x@y>\n\n",
        ] {
            assert!(matches!(
                Commit::parse(id(), raw, false),
                Err(CommitError::Malformed {
                    header: "committer",
                    ..
                })
            ));
        }
    }

    #[test]
    fn name_with_angle_bracket_parses_from_the_right() {
        let raw = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\ncommitter a <b> c <c@example.com> 5 +0000\n\n";
        let c = Commit::parse(id(), raw, false).unwrap();
        assert_eq!(c.committer.email, "c@example.com");
    }

    #[test]
    fn truncated_object_never_panics() {
        for end in 0..SIGNED.len() {
            let _ = Commit::parse(id(), &SIGNED[..end], false);
        }
    }
}

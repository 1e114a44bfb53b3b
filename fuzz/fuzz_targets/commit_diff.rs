//! Differential target for the commit parser: whatever tally accepts, git must read the same.
//!
//! Running git per input is far too slow for a fuzzer, so this target carries its own small
//! model of git's readers, written from git's documented behaviour and kept deliberately
//! literal (byte walks, no shared code with tally):
//! - `fsck.c: verify_headers`, `fsck_commit`, `fsck_ident` (is the object one git's fsck
//!   accepts?),
//! - `pretty.c: parse_commit_header` + `ident.c: split_ident_line` (which author and committer
//!   `git log --format=%an%ae%at%cn%ce%ct` shows: the *last* such header line),
//! - `commit.c: parse_buffer_signed_by_header` (signature and payload `git verify-commit`
//!   hands to ssh-keygen).
//!
//! Whenever `Commit::parse` accepts an input, the model must agree: fsck accepts, git shows
//! the same author and committer, and the signature and payload are git's byte for byte. And
//! an armor tally accepts must be the one `ssh-keygen -Y sign` writes for its blob, so no two
//! spellings of one signature both pass. The model itself is checked against real git by
//! `scripts/fuzz-diff-git.sh`, which replays this target's corpus through git.
#![no_main]

use base64ct::{Base64, Encoding};
use libfuzzer_sys::fuzz_target;
use tally_verify::commit::{Commit, Identity, SignatureHeader};
use tally_verify::sshsig::SshSig;

/// git's `isspace` (ctype.c): space, TAB, LF, CR.
fn isspace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The header block up to (not including) the empty line, or the whole object.
fn header_block(raw: &[u8]) -> &[u8] {
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\n' && (i == 0 || raw.get(i + 1) == Some(&b'\n')) {
            return &raw[..if i == 0 { 0 } else { i + 1 }];
        }
        i += 1;
    }
    raw
}

/// fsck_ident over `line` (starting after "author "/"committer ", ending at its LF).
/// Returns the index just past the LF on success.
fn model_fsck_ident(buf: &[u8], mut p: usize) -> Option<usize> {
    let nl = buf[p..].iter().position(|b| *b == b'\n')? + p;
    let at = |i: usize| -> u8 { if i < buf.len() { buf[i] } else { 0 } };
    if at(p) == b'<' {
        return None;
    }
    loop {
        if p >= nl {
            return None;
        }
        match buf[p] {
            b'>' => return None,
            b'<' => break,
            _ => p += 1,
        }
    }
    if p == 0 || buf[p - 1] != b' ' {
        return None;
    }
    p += 1;
    loop {
        if p >= nl || buf[p] == b'<' {
            return None;
        }
        if buf[p] == b'>' {
            break;
        }
        p += 1;
    }
    p += 1;
    if at(p) != b' ' {
        return None;
    }
    p += 1;
    while at(p) == b' ' || at(p) == b'\t' {
        p += 1;
    }
    if !at(p).is_ascii_digit() {
        return None;
    }
    if at(p) == b'0' && at(p + 1) != b' ' {
        return None;
    }
    let start = p;
    while at(p).is_ascii_digit() {
        p += 1;
    }
    // date_overflows: must fit a signed 64-bit time_t.
    std::str::from_utf8(&buf[start..p])
        .ok()?
        .parse::<i64>()
        .ok()?;
    if at(p) != b' ' {
        return None;
    }
    p += 1;
    if !(matches!(at(p), b'+' | b'-')
        && (1..=4).all(|k| at(p + k).is_ascii_digit())
        && at(p + 5) == b'\n')
    {
        return None;
    }
    Some(nl + 1)
}

/// fsck_commit, ERROR-level findings only (a NUL in the message is a warning there).
fn model_fsck(raw: &[u8]) -> bool {
    // verify_headers
    let mut terminated = false;
    for i in 0..raw.len() {
        if raw[i] == 0 {
            return false;
        }
        if raw[i] == b'\n' && raw.get(i + 1) == Some(&b'\n') {
            terminated = true;
            break;
        }
    }
    if !terminated && raw.last() != Some(&b'\n') {
        return false;
    }
    let oid_line = |p: usize, prefix: &[u8]| -> Option<usize> {
        let rest = raw.get(p..)?.strip_prefix(prefix)?;
        let hex = rest.get(..40)?;
        if !hex.iter().all(|b| b.is_ascii_hexdigit()) || rest.get(40) != Some(&b'\n') {
            return None;
        }
        Some(p + prefix.len() + 41)
    };
    let Some(mut p) = oid_line(0, b"tree ") else {
        return false;
    };
    while raw[p..].starts_with(b"parent ") {
        match oid_line(p, b"parent ") {
            Some(next) => p = next,
            None => return false,
        }
    }
    let mut authors = 0;
    while raw[p..].starts_with(b"author ") {
        authors += 1;
        match model_fsck_ident(raw, p + 7) {
            Some(next) => p = next,
            None => return false,
        }
    }
    if authors != 1 || !raw[p..].starts_with(b"committer ") {
        return false;
    }
    model_fsck_ident(raw, p + 10).is_some()
}

/// What split_ident_line yields for name, email and date (None: no `<...>`; date None when
/// git shows no date).
fn model_split_ident(line: &[u8]) -> Option<(Vec<u8>, Vec<u8>, Option<u64>)> {
    let mail_begin = line
        .iter()
        .take_while(|b| **b != 0)
        .position(|b| *b == b'<')?
        + 1;
    let mut name_end = 0;
    for cp in (0..mail_begin - 1).rev() {
        if !isspace(line[cp]) {
            name_end = cp + 1;
            break;
        }
    }
    let mail_end = line[mail_begin..].iter().position(|b| *b == b'>')? + mail_begin;
    let last_gt = line.iter().rposition(|b| *b == b'>')?;
    let mut cp = last_gt + 1;
    while cp < line.len() && isspace(line[cp]) {
        cp += 1;
    }
    let digits = line[cp..].iter().take_while(|b| b.is_ascii_digit()).count();
    let date = (digits > 0)
        .then(|| {
            std::str::from_utf8(&line[cp..cp + digits])
                .ok()?
                .parse::<u64>()
                .ok()
        })
        .flatten();
    Some((
        line[..name_end].to_vec(),
        line[mail_begin..mail_end].to_vec(),
        date,
    ))
}

/// The value of the last header line starting with `name ` (pretty.c keeps overwriting).
fn model_shown(raw: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    let mut shown = None;
    for line in header_block(raw).split(|b| *b == b'\n') {
        if line.len() > name.len() && line.starts_with(name) && line[name.len()] == b' ' {
            shown = Some(line[name.len() + 1..].to_vec());
        }
    }
    shown
}

/// parse_buffer_signed_by_header for a SHA-1 repository: (signature, payload).
fn model_signed(raw: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let (mut in_sig, mut saw, mut other) = (false, false, false);
    let (mut sig, mut payload) = (Vec::new(), Vec::new());
    let mut line = 0;
    while line < raw.len() {
        let next = raw[line..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(raw.len(), |i| line + i + 1);
        let text = &raw[line..next];
        let own = if in_sig && text[0] == b' ' {
            Some(&text[1..])
        } else if text.starts_with(b"gpgsig ") {
            other = false;
            Some(&text[7..])
        } else {
            if text.starts_with(b"gpgsig") {
                other = true;
            } else if other && text[0] != b' ' {
                other = false;
            }
            None
        };
        let mut next = next;
        if let Some(s) = own {
            sig.extend_from_slice(s);
            saw = true;
            in_sig = true;
        } else {
            if text[0] == b'\n' {
                next = raw.len();
            }
            if !other {
                payload.extend_from_slice(&raw[line..next]);
            }
            in_sig = false;
        }
        line = next;
    }
    saw.then_some((sig, payload))
}

fn same_identity(tally: &Identity, shown: &[u8]) -> bool {
    let Some((name, email, date)) = model_split_ident(shown) else {
        return false;
    };
    tally.name == String::from_utf8_lossy(&name)
        && tally.email.as_bytes() == email.as_slice()
        && u64::try_from(tally.seconds).ok() == date
}

/// The armor `ssh-keygen -Y sign` writes for `blob`.
fn canonical_armor(blob: &[u8]) -> Vec<u8> {
    let b64 = Base64::encode_string(blob);
    let mut out = b"-----BEGIN SSH SIGNATURE-----\n".to_vec();
    for chunk in b64.as_bytes().chunks(70) {
        out.extend_from_slice(chunk);
        out.push(b'\n');
    }
    out.extend_from_slice(b"-----END SSH SIGNATURE-----\n");
    out
}

fuzz_target!(|data: &[u8]| {
    let id = gix::ObjectId::null(gix::hash::Kind::Sha1);
    let Ok(commit) = Commit::parse(id, data, false) else {
        return;
    };
    assert!(model_fsck(data), "tally accepts what git's fsck refuses");
    let committer = model_shown(data, b"committer").expect("a committer line");
    assert!(
        same_identity(&commit.committer, &committer),
        "git shows committer {:?}, tally read {:?}",
        String::from_utf8_lossy(&committer),
        commit.committer
    );
    let author = model_shown(data, b"author").expect("an author line");
    assert!(
        same_identity(&commit.author, &author),
        "git shows author {:?}, tally read {:?}",
        String::from_utf8_lossy(&author),
        commit.author
    );
    let git = model_signed(data);
    match &commit.signature {
        SignatureHeader::One { signature, payload } => {
            let (git_sig, git_payload) = git.expect("git finds the signature tally found");
            assert_eq!(&git_sig, signature, "signature differs from git's");
            assert_eq!(&git_payload, payload, "payload differs from git's");
            if let Ok(sig) = SshSig::from_armored(signature) {
                let b64: Vec<u8> = signature
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.starts_with(b"-----"))
                    .flatten()
                    .copied()
                    .collect();
                let blob = Base64::decode_vec(std::str::from_utf8(&b64).expect("ascii"))
                    .expect("accepted armor decodes");
                assert_eq!(
                    &canonical_armor(&blob),
                    signature,
                    "accepted armor is not ssh-keygen's"
                );
                let _ = sig.verify("git", payload);
            }
        }
        SignatureHeader::Unsigned => {
            assert!(git.is_none(), "git finds a signature tally did not");
        }
        SignatureHeader::OtherAlgorithm { .. } | SignatureHeader::Multiple { .. } => {}
    }
});

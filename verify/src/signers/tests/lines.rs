//! Lines: comments, blank lines, whitespace, line endings and NUL bytes.

use super::*;

#[test]
fn comments_and_blank_lines_are_skipped_and_counted() {
    let text =
        format!("# a comment\n\n   \n\t# indented comment\n\r\nalice@example.com {ED25519}\n#last");
    let signers = parse(&text).unwrap();
    assert_eq!(signers.entries().len(), 1);
    assert_eq!(signers.entries()[0].line, 6);
}

#[test]
fn empty_and_comment_only_files_have_no_signers() {
    for text in ["", "\n", "# nobody\n", "  \t\r\n\n"] {
        let signers = parse(text).unwrap();
        assert!(signers.is_empty(), "{text:?}");
    }
    assert!(AllowedSigners::default().is_empty());
}

#[test]
fn hash_after_the_principals_is_not_a_comment() {
    // Only a line *starting* with '#' is a comment; here '#' is the principal.
    let e = one(&format!("a#b {ED25519}"));
    assert_eq!(e.principals, "a#b");
    assert!(parse(&format!("#a {ED25519}")).unwrap().is_empty());
    // ...and a '#' after the key is part of the comment.
    let e = one(&format!("a {ED25519} # alice's laptop"));
    assert_eq!(e.comment.as_deref(), Some("# alice's laptop"));
}

#[test]
fn leading_whitespace_and_tabs_separate_fields() {
    let blob = ED25519.split(' ').nth(1).unwrap();
    let e = one(&format!(
        " \t alice@example.com\t \tssh-ed25519\t{blob}\t laptop  "
    ));
    assert_eq!(e.principals, "alice@example.com");
    assert_eq!(e.key, key(ED25519));
    assert_eq!(e.comment.as_deref(), Some("laptop"));
}

#[test]
fn crlf_line_endings_are_accepted() {
    let text = format!(
        "# windows\r\n\r\nalice@example.com {ED25519} laptop\r\nbob@example.com namespaces=\"git\" {P256}\r\n"
    );
    let signers = parse(&text).unwrap();
    let [a, b] = signers.entries() else {
        panic!("{:?}", signers.entries())
    };
    assert_eq!((a.line, a.comment.as_deref()), (3, Some("laptop")));
    assert_eq!((b.line, b.comment.as_deref()), (4, None));
    assert_eq!(b.namespaces.as_deref(), Some("git"));
}

#[test]
fn carriage_return_after_principals_is_whitespace_as_in_strdelimw() {
    let e = one(&format!("alice@example.com\r {ED25519}"));
    assert_eq!(e.principals, "alice@example.com");
}

#[test]
fn last_line_needs_no_newline() {
    let signers = parse(&format!("a@example.com {ED25519}\nb@example.com {P256}")).unwrap();
    assert_eq!(signers.entries().len(), 2);
    assert_eq!(signers.entries()[1].line, 2);
}

#[test]
fn comment_keeps_inner_spaces() {
    let e = one(&format!("a@example.com {ED25519} alice  on   her laptop "));
    assert_eq!(e.comment.as_deref(), Some("alice  on   her laptop"));
}

#[test]
fn nul_byte_is_refused() {
    assert_refused!(
        format!("a@example.com {ED25519}\0evil"),
        SignersError::NulByte { .. },
        1
    );
    assert_refused!(
        format!("# ok\n\0{ED25519}"),
        SignersError::NulByte { .. },
        2
    );
}

#[test]
fn error_names_the_first_bad_line_after_good_ones() {
    let text = format!(
        "# signers\na@example.com {ED25519}\n\nb@example.com {P256}\nc@example.com valid-afer=\"20240101\" {P384}\nd@example.com nonsense"
    );
    assert_refused!(text, SignersError::UnknownOption { .. }, 5);
}

#[test]
fn a_bad_line_anywhere_refuses_the_whole_file() {
    // OpenSSH stops at the first matching line and never reads later mistakes; tally
    // reads them all, failing closed.
    let text = format!("a@example.com {ED25519}\nb@example.com {ED25519_SHORT}");
    assert_refused!(text, SignersError::BadKey { .. }, 2);
}

#[test]
fn a_public_key_line_without_principal_says_to_add_one() {
    // A .pub file given as allowed_signers: its line starts with the key type.
    let e = err(&format!("{ED25519} alice@laptop\n"));
    assert!(matches!(e, SignersError::NoPrincipal { line: 1 }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "allowed_signers line 1 has no principal: start the line with the signer's email, e.g. \"alice@example.com ssh-ed25519 AAAA...\""
    );
    let e = err(&format!("alice@example.com {ED25519}\n  {P256}\n"));
    assert!(matches!(e, SignersError::NoPrincipal { line: 2 }), "{e:?}");
    // A principal that happens to be a key type's name, followed by a key, is a principal
    // (OpenSSH reads it so too).
    let e = one(&format!("ssh-ed25519 {ED25519}"));
    assert_eq!(e.principals, "ssh-ed25519");
}

//! Loading a file from disk, and the errors that name it.

use super::*;

#[test]
fn load_reads_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("allowed_signers");
    std::fs::write(&path, format!("alice@example.com {ED25519}\n")).unwrap();
    let signers = AllowedSigners::load(&path).unwrap();
    assert_eq!(signers.entries().len(), 1);
}

#[test]
fn load_of_a_missing_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope");
    let e = AllowedSigners::load(&path).unwrap_err();
    assert!(matches!(e, SignersError::Io { .. }), "{e:?}");
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    assert_eq!(e.line(), None);
}

#[test]
fn load_error_names_the_path_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("allowed_signers");
    std::fs::write(&path, format!("a {ED25519}\nb namespaces=git {ED25519}\n")).unwrap();
    let e = AllowedSigners::load(&path).unwrap_err();
    let SignersError::InFile { error, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(
        matches!(**error, SignersError::UnquotedValue { line: 2, .. }),
        "{error:?}"
    );
    assert_eq!(e.line(), Some(2));
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("{}:2: the value of namespaces= ", path.display())),
        "{msg}"
    );
}

#[test]
fn load_refuses_invalid_utf8_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("allowed_signers");
    let mut bytes = format!("# ok\na {ED25519}\n# caf").into_bytes();
    bytes.extend_from_slice(b"\xe9\n");
    std::fs::write(&path, bytes).unwrap();
    let e = AllowedSigners::load(&path).unwrap_err();
    assert_eq!(e.line(), Some(3));
    assert!(e.to_string().contains("UTF-8"), "{e}");
}

#[test]
fn errors_in_a_file_read_as_path_line_what() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signers");
    std::fs::write(&path, format!("# mine\n{ED25519} me@laptop\n")).unwrap();
    let e = AllowedSigners::load(&path).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}:2: line 2 has no principal: start the line with the signer's email, e.g. \"alice@example.com ssh-ed25519 AAAA...\"",
            path.display()
        )
    );
}

//! The options field: each option, and every malformed way to write one.

use super::*;

#[test]
fn cert_authority_marks_a_ca_key() {
    let text = format!("*@example.com cert-authority {CA_ED25519}\nalice@example.com {ED25519}");
    let signers = parse(&text).unwrap();
    let ca = key(CA_ED25519);
    let alice = key(ED25519);
    assert!(signers.entries()[0].cert_authority);
    assert_eq!(
        signers
            .authorities_for_key(&ca)
            .map(|e| e.line)
            .collect::<Vec<_>>(),
        [1]
    );
    // A CA line does not vouch for signatures made with the CA key itself.
    assert_eq!(signers.entries_for_key(&ca).count(), 0);
    assert_eq!(
        signers
            .entries_for_key(&alice)
            .map(|e| e.line)
            .collect::<Vec<_>>(),
        [2]
    );
    assert_eq!(signers.authorities_for_key(&alice).count(), 0);
}

#[test]
fn the_same_key_on_several_lines_is_found_on_each() {
    let text = format!(
        "a@example.com {ED25519}\nb@example.com {P256}\nc@example.com namespaces=\"file\" {ED25519}\nd@example.com cert-authority {ED25519}"
    );
    let signers = parse(&text).unwrap();
    let k = key(ED25519);
    let lines: Vec<_> = signers.entries_for_key(&k).map(|e| e.line).collect();
    assert_eq!(lines, [1, 3]);
    let lines: Vec<_> = signers.authorities_for_key(&k).map(|e| e.line).collect();
    assert_eq!(lines, [4]);
    assert_eq!(signers.entries_for_key(&key(P384)).count(), 0);
}

#[test]
fn rsa_alias_lines_hold_the_same_key() {
    let blob = RSA3072.split(' ').nth(1).unwrap();
    let text = format!("a {RSA3072}\nb rsa-sha2-512 {blob}");
    let signers = parse(&text).unwrap();
    assert_eq!(signers.entries_for_key(&key(RSA3072)).count(), 2);
}

#[test]
fn option_names_are_case_insensitive() {
    let e = one(&format!(
        "a@example.com Cert-Authority,NAMESPACES=\"git\",Valid-After=\"20240101Z\",VALID-BEFORE=\"20250101Z\" {CA_ED25519}"
    ));
    assert!(e.cert_authority);
    assert_eq!(e.namespaces.as_deref(), Some("git"));
    assert_eq!(e.valid_after, Some(ts("2024-01-01T00:00:00Z")));
    assert_eq!(e.valid_before, Some(ts("2025-01-01T00:00:00Z")));
}

#[test]
fn all_options_together() {
    let e = one(&format!(
        "*@example.com cert-authority,namespaces=\"git,file\",valid-after=\"20240101Z\",valid-before=\"20241231235959Z\" {CA_ED25519} corp CA"
    ));
    assert!(e.cert_authority);
    assert_eq!(e.namespaces.as_deref(), Some("git,file"));
    assert_eq!(e.valid_after, Some(ts("2024-01-01T00:00:00Z")));
    assert_eq!(e.valid_before, Some(ts("2024-12-31T23:59:59Z")));
    assert_eq!(e.comment.as_deref(), Some("corp CA"));
}

#[test]
fn namespaces_is_a_pattern_list() {
    let e = one(&format!("a namespaces=\"git,file\" {ED25519}"));
    assert!(e.allows_namespace("git"));
    assert!(e.allows_namespace("file"));
    assert!(!e.allows_namespace("ssh"));
    assert!(!e.allows_namespace("Git"));
    assert!(!e.allows_namespace(""));
    let e = one(&format!("a namespaces=\"!file,*\" {ED25519}"));
    assert!(e.allows_namespace("git"));
    assert!(!e.allows_namespace("file"));
    let e = one(&format!("a namespaces=\"g?t\" {ED25519}"));
    assert!(e.allows_namespace("git"));
    assert!(!e.allows_namespace("gits"));
}

#[test]
fn no_namespaces_allows_every_namespace() {
    let e = one(&format!("a {ED25519}"));
    assert!(e.allows_namespace("git"));
    assert!(e.allows_namespace("anything"));
}

#[test]
fn empty_namespaces_allows_none() {
    let e = one(&format!("a namespaces=\"\" {ED25519}"));
    assert_eq!(e.namespaces.as_deref(), Some(""));
    assert!(!e.allows_namespace("git"));
    assert!(!e.allows_namespace(""));
}

#[test]
fn quoted_value_may_hold_spaces_commas_and_escaped_quotes() {
    let e = one(&format!("a namespaces=\"git, file\" {ED25519}"));
    assert_eq!(e.namespaces.as_deref(), Some("git, file"));
    assert!(e.allows_namespace("git"));
    assert!(!e.allows_namespace("file")); // the sub-pattern is " file"
    assert!(e.allows_namespace(" file"));
    let e = one(&format!("a namespaces=\"a\\\"b\" {ED25519}"));
    assert_eq!(e.namespaces.as_deref(), Some("a\"b"));
    let e = one(&format!("a namespaces=\"a\\b\" {ED25519}"));
    assert_eq!(e.namespaces.as_deref(), Some("a\\b"));
}

#[test]
fn empty_option_items_are_skipped_as_openssh_does() {
    let e = one(&format!("a ,cert-authority {CA_ED25519}"));
    assert!(e.cert_authority);
    let e = one(&format!(
        "a cert-authority,,namespaces=\"git\" {CA_ED25519}"
    ));
    assert!(e.cert_authority);
    assert_eq!(e.namespaces.as_deref(), Some("git"));
}

#[test]
fn repeated_cert_authority_is_allowed_as_in_openssh() {
    assert!(one(&format!("a cert-authority,cert-authority {CA_ED25519}")).cert_authority);
}

#[test]
fn misspelt_option_is_refused() {
    let e = assert_refused!(
        format!("# x\n\na valid-afer=\"20240101\" {ED25519}"),
        SignersError::UnknownOption { ref option, .. } if option == "valid-afer=\"20240101\"",
        3
    );
    assert_eq!(
        e.to_string(),
        "allowed_signers line 3: unknown option \"valid-afer=\\\"20240101\\\"\"; expected cert-authority, namespaces=, valid-after= or valid-before="
    );
}

#[test]
fn unknown_option_after_a_good_one_is_refused() {
    assert_refused!(
        format!("a cert-authority,no-touch-required {CA_ED25519}"),
        SignersError::UnknownOption { ref option, .. } if option == "no-touch-required",
        1
    );
    assert_refused!(
        format!("a cert-authority,principals=\"x\" {CA_ED25519}"),
        SignersError::UnknownOption { .. },
        1
    );
}

#[test]
fn unquoted_value_is_refused() {
    for text in [
        format!("a namespaces=git {ED25519}"),
        format!("a namespaces= {ED25519}"),
        format!("a valid-after=20240101 {ED25519}"),
        format!("a cert-authority,valid-before=20240101 {ED25519}"),
    ] {
        assert_refused!(text, SignersError::UnquotedValue { .. }, 1);
    }
    let e = err(&format!("a namespaces=git {ED25519}"));
    assert!(e.to_string().contains("namespaces=\"git\""), "{e}");
}

#[test]
fn option_without_value_is_refused() {
    assert_refused!(
        format!("a namespaces {ED25519}"),
        SignersError::MissingValue {
            option: "namespaces",
            ..
        },
        1
    );
    assert_refused!(
        format!("a cert-authority,Valid-Before {ED25519}"),
        SignersError::MissingValue {
            option: "valid-before",
            ..
        },
        1
    );
}

#[test]
fn trailing_comma_is_refused() {
    assert_refused!(
        format!("a cert-authority, {ED25519}"),
        SignersError::TrailingComma { .. },
        1
    );
    assert_refused!(
        format!("a namespaces=\"git\", {ED25519}"),
        SignersError::TrailingComma { .. },
        1
    );
}

#[test]
fn space_after_comma_in_options_is_refused() {
    // The space ends the options at "cert-authority,".
    assert_refused!(
        format!("a cert-authority, namespaces=\"git\" {ED25519}"),
        SignersError::TrailingComma { .. },
        1
    );
}

#[test]
fn text_glued_to_an_option_is_refused() {
    for (text, garbage) in [
        (format!("a cert-authorityX {ED25519}"), "X"),
        (format!("a cert-authority=yes {ED25519}"), "=yes"),
        (
            format!("a namespaces=\"git\"x,cert-authority {ED25519}"),
            "x",
        ),
        (
            format!("a namespaces=\"git\"\"file\" {ED25519}"),
            "\"file\"",
        ),
    ] {
        assert_refused!(
            text,
            SignersError::GarbageAfterOption { garbage: ref g, .. } if g == garbage,
            1
        );
    }
}

#[test]
fn unterminated_quote_in_options_is_refused() {
    assert_refused!(
        format!("a namespaces=\"git {ED25519}"),
        SignersError::UnterminatedQuote { .. },
        1
    );
    assert_refused!(
        format!("a namespaces=\"git\\\" {ED25519}"),
        SignersError::UnterminatedQuote { .. },
        1
    );
}

#[test]
fn repeated_options_are_refused() {
    for (options, name) in [
        ("namespaces=\"git\",namespaces=\"file\"", "namespaces"),
        (
            "valid-after=\"20240101Z\",valid-after=\"20240102Z\"",
            "valid-after",
        ),
        (
            "valid-before=\"20240101Z\",VALID-BEFORE=\"20240102Z\"",
            "valid-before",
        ),
        // Refused before the second value is read, as in sshsigopt_parse.
        (
            "valid-after=\"20240101Z\",valid-after=\"garbage\"",
            "valid-after",
        ),
    ] {
        assert_refused!(
            format!("a {options} {ED25519}"),
            SignersError::DuplicateOption { option, .. } if option == name,
            1
        );
    }
}

#[test]
fn window_that_closes_before_it_opens_is_refused() {
    assert_refused!(
        format!("a valid-after=\"20250101Z\",valid-before=\"20240101Z\" {ED25519}"),
        SignersError::EmptyValidity { .. },
        1
    );
    // valid-before must be strictly after valid-after.
    assert_refused!(
        format!("a valid-before=\"20240101Z\",valid-after=\"20240101Z\" {ED25519}"),
        SignersError::EmptyValidity { .. },
        1
    );
    one(&format!(
        "a valid-after=\"20240101Z\",valid-before=\"20240101000001Z\" {ED25519}"
    ));
}

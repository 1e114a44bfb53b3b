//! The principals field and OpenSSH pattern-lists.

use super::*;

#[test]
fn several_principals_each_match() {
    let e = one(&format!("alice@example.com,bob@example.com {ED25519}"));
    assert_eq!(e.principals, "alice@example.com,bob@example.com");
    assert!(e.matches_principal("alice@example.com"));
    assert!(e.matches_principal("bob@example.com"));
    assert!(!e.matches_principal("carol@example.com"));
    assert!(!e.matches_principal("alice@example.com,bob@example.com"));
    assert!(!e.matches_principal(""));
}

#[test]
fn domain_wildcard_does_not_match_lookalike_domains() {
    let e = one(&format!("*@example.com {ED25519}"));
    assert!(e.matches_principal("alice@example.com"));
    assert!(e.matches_principal("@example.com"));
    assert!(!e.matches_principal("alice@example.com.evil.org"));
    assert!(!e.matches_principal("alice@evilexample.com"));
    assert!(!e.matches_principal("alice@EXAMPLE.COM"));
    assert!(!e.matches_principal("alice@example.co"));
}

#[test]
fn negated_principal_wins_in_any_position() {
    for principals in [
        "!bad@example.com,*@example.com",
        "*@example.com,!bad@example.com",
    ] {
        let e = one(&format!("{principals} {ED25519}"));
        assert!(!e.matches_principal("bad@example.com"), "{principals}");
        assert!(e.matches_principal("good@example.com"), "{principals}");
    }
}

#[test]
fn negation_alone_matches_no_one() {
    let e = one(&format!("!bad@example.com {ED25519}"));
    assert!(!e.matches_principal("good@example.com"));
    assert!(!e.matches_principal("bad@example.com"));
}

#[test]
fn principal_match_is_case_sensitive() {
    let e = one(&format!("Alice@Example.com {ED25519}"));
    assert!(e.matches_principal("Alice@Example.com"));
    assert!(!e.matches_principal("alice@example.com"));
}

#[test]
fn quoted_principals_may_hold_spaces() {
    let e = one(&format!(
        "\"alice smith@example.com,bob@example.com\" {ED25519}"
    ));
    assert_eq!(e.principals, "alice smith@example.com,bob@example.com");
    assert!(e.matches_principal("alice smith@example.com"));
}

#[test]
fn quote_may_start_mid_word_as_in_strdelimw() {
    let e = one(&format!("al\"ice @ex\" {ED25519}"));
    assert_eq!(e.principals, "alice @ex");
}

#[test]
fn closing_quote_ends_the_principals_field() {
    // strdelimw returns at the closing quote, so the key may follow without a space.
    let e = one(&format!("\"alice@example.com\"{ED25519}"));
    assert_eq!(e.principals, "alice@example.com");
    assert_eq!(e.key, key(ED25519));
}

#[test]
fn unterminated_quote_in_principals_is_refused() {
    assert_refused!(
        format!("\"alice@example.com {ED25519}"),
        SignersError::UnterminatedQuote { .. },
        1
    );
}

#[test]
fn empty_quoted_principals_are_refused() {
    assert_refused!(
        format!("\"\" {ED25519}"),
        SignersError::EmptyPrincipals { .. },
        1
    );
}

// ---- match_pattern_list -------------------------------------------------------------------

#[test]
fn pattern_list_wildcards() {
    assert!(match_pattern_list("alice@example.com", "*"));
    assert!(match_pattern_list("", "*"));
    assert!(match_pattern_list("abc", "a?c"));
    assert!(!match_pattern_list("ac", "a?c"));
    assert!(match_pattern_list("ac", "a*c"));
    assert!(match_pattern_list("abbbc", "a*c"));
    assert!(!match_pattern_list("abbbcd", "a*c"));
    assert!(match_pattern_list("a*c", "a*c"));
    assert!(match_pattern_list("aXbYc", "a*b*c"));
    assert!(match_pattern_list("x", "y,x"));
}

#[test]
fn question_mark_matches_one_byte_not_one_character() {
    // OpenSSH matches bytes: 'é' is two bytes in UTF-8.
    assert!(!match_pattern_list("é", "?"));
    assert!(match_pattern_list("é", "??"));
}

#[test]
fn empty_list_matches_nothing() {
    assert!(!match_pattern_list("", ""));
    assert!(!match_pattern_list("a", ""));
}

#[test]
fn empty_subpattern_matches_only_the_empty_string() {
    assert!(match_pattern_list("", "a,,b"));
    assert!(!match_pattern_list("c", "a,,b"));
    // A trailing comma ends the list without an empty sub-pattern.
    assert!(!match_pattern_list("", "a,"));
    assert!(match_pattern_list("a", "a,"));
    // A leading comma does start one.
    assert!(match_pattern_list("", ",a"));
    assert!(!match_pattern_list("", "!"));
}

#[test]
fn overlong_subpattern_makes_the_whole_list_fail_as_in_openssh() {
    let long = "a".repeat(1023);
    // OpenSSH returns "no match" at once, even after an earlier positive match.
    assert!(!match_pattern_list(&long, &long));
    assert!(!match_pattern_list("x", &format!("x,{long}")));
    let longest = "a".repeat(1022);
    assert!(match_pattern_list(&longest, &longest));
    // The '!' does not count toward the length.
    assert!(!match_pattern_list(&longest, &format!("*,!{longest}")));
}

#[test]
fn nul_ends_both_strings_as_in_c() {
    assert!(match_pattern_list("alice\0junk", "alice"));
    assert!(match_pattern_list("alice", "alice\0,!alice"));
}

#[test]
fn many_stars_do_not_backtrack_exponentially() {
    let s = "a".repeat(5000);
    let pattern = format!("{}b", "*a".repeat(200));
    assert!(!match_pattern_list(&s, &pattern));
    assert!(match_pattern_list(&s, &"*a".repeat(200)));
}

//! Properties over generated input: no panics, lines named in range, entries read back.

use super::*;

/// Pieces that steer random lines into every branch of the parser.
fn fragment() -> impl Strategy<Value = String> {
    let blob = ED25519.split(' ').nth(1).unwrap().to_owned();
    prop_oneof![
        Just(" ".to_owned()),
        Just("\t".to_owned()),
        Just("\r".to_owned()),
        Just("\n".to_owned()),
        Just("\"".to_owned()),
        Just("\\\"".to_owned()),
        Just(",".to_owned()),
        Just("=".to_owned()),
        Just("#".to_owned()),
        Just("!".to_owned()),
        Just("*".to_owned()),
        Just("a@example.com".to_owned()),
        Just("cert-authority".to_owned()),
        Just("namespaces=".to_owned()),
        Just("valid-after=".to_owned()),
        Just("valid-before=".to_owned()),
        Just("\"20240101Z\"".to_owned()),
        Just("\"19700101\"".to_owned()),
        Just("ssh-ed25519".to_owned()),
        Just("rsa-sha2-256".to_owned()),
        Just("ssh-ed25519-cert-v01@openssh.com".to_owned()),
        Just(blob),
        Just(ED25519.to_owned()),
        "\\PC{0,8}",
    ]
}

proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_text(text in "\\PC*") {
        let _ = AllowedSigners::parse_in(&text, &berlin());
    }

    #[test]
    fn parse_never_panics_on_near_miss_lines(
        parts in prop::collection::vec(fragment(), 0..16),
    ) {
        let text = parts.concat();
        if let Err(e) = AllowedSigners::parse_in(&text, &berlin()) {
            // Every content error names a line within the text.
            let line = e.line().unwrap();
            prop_assert!(line >= 1 && line <= text.split('\n').count());
        }
    }

    #[test]
    fn match_pattern_agrees_with_a_backtracking_reference(
        s in "[ab]{0,8}",
        pattern in "[ab*?]{0,8}",
    ) {
        let (s, pattern) = (s.as_bytes(), pattern.as_bytes());
        prop_assert_eq!(match_pattern(s, pattern), reference(s, pattern));
    }

    #[test]
    fn written_entries_read_back(
        principals in "[a-z*?!@.]{1,12}(,[a-z*?!@.]{1,12}){0,3}",
        ca in any::<bool>(),
        namespaces in prop::option::of("[a-z*!,]{0,12}"),
        after in prop::option::of(1i64..2_000_000_000),
        length in 1i64..1_000_000_000,
        before in any::<bool>(),
        comment in prop::option::of("[a-zA-Z0-9@.]{1,10}( [a-z]{1,5})?"),
    ) {
        let mut options = Vec::new();
        if ca {
            options.push("cert-authority".to_owned());
        }
        if let Some(ns) = &namespaces {
            options.push(format!("namespaces=\"{ns}\""));
        }
        let fmt = |s: i64| {
            Timestamp::from_second(s).unwrap().strftime("%Y%m%d%H%M%SZ").to_string()
        };
        if let Some(a) = after {
            options.push(format!("valid-after=\"{}\"", fmt(a)));
        }
        let before = before.then(|| after.unwrap_or(0) + length);
        if let Some(b) = before {
            options.push(format!("valid-before=\"{}\"", fmt(b)));
        }
        let mut line = principals.clone();
        if !options.is_empty() {
            line = format!("{line} {}", options.join(","));
        }
        line = format!("{line} {P256}");
        if let Some(c) = &comment {
            line = format!("{line} {c}");
        }
        let signers = AllowedSigners::parse_in(&line, &berlin()).unwrap();
        let e = &signers.entries()[0];
        prop_assert_eq!(&e.principals, &principals);
        prop_assert_eq!(e.cert_authority, ca);
        prop_assert_eq!(&e.namespaces, &namespaces);
        prop_assert_eq!(e.valid_after.map(|t| t.as_second()), after);
        prop_assert_eq!(e.valid_before.map(|t| t.as_second()), before);
        prop_assert_eq!(&e.comment, &comment);
        prop_assert_eq!(&e.key, &key(P256));
    }
}

/// A plain backtracking wildcard matcher: the recursive `match_pattern` OpenSSH had
/// before its NFA rewrite.
fn reference(s: &[u8], p: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| reference(&s[i..], rest)),
        Some((&c, rest)) => s
            .split_first()
            .is_some_and(|(&d, s)| (c == b'?' || c == d) && reference(s, rest)),
    }
}

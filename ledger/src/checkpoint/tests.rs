#![allow(clippy::unwrap_used)]

use super::*;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn vkey(seed: u8) -> VerifierKey {
    VerifierKey::new("tally/repo", key(seed).verifying_key()).unwrap()
}

fn sample() -> Checkpoint {
    Checkpoint {
        origin: "tally/repo".to_owned(),
        size: 42,
        root: [7; 32],
    }
}

#[test]
fn body_is_the_tlog_checkpoint_text() {
    assert_eq!(
        sample().body(),
        "tally/repo\n42\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n"
    );
}

#[test]
fn sign_then_verify() {
    let signed = sample().sign(1_767_225_600, &key(1)).unwrap();
    let verified = signed.verify(&vkey(1)).unwrap();
    assert_eq!(verified.origin(), "tally/repo");
    assert_eq!(verified.size(), 42);
    assert_eq!(verified.root(), &[7; 32]);
    assert_eq!(verified.time(), 1_767_225_600);
    let lines: Vec<&str> = signed.text().lines().collect();
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[3], "");
    assert!(lines[4].starts_with("\u{2014} tally/repo "));
    assert!(lines[5].starts_with("\u{2014} tally/repo "));
    assert_eq!(SignedCheckpoint::parse(signed.text()).unwrap(), signed);
}

/// Ed25519 signatures are deterministic, so a fixed key and checkpoint give a fixed note.
#[test]
fn golden_note() {
    let signed = sample().sign(1_767_225_600, &key(1)).unwrap();
    let id = vkey(1).key_id();
    let cosig_id = vkey(1).cosignature_key_id();
    let sig_line = signed.text().lines().nth(4).unwrap();
    let raw = Base64::decode_vec(sig_line.rsplit(' ').next().unwrap()).unwrap();
    assert_eq!(raw[..4], id);
    assert_eq!(raw.len(), 68);
    let cosig_line = signed.text().lines().nth(5).unwrap();
    let raw = Base64::decode_vec(cosig_line.rsplit(' ').next().unwrap()).unwrap();
    assert_eq!(raw[..4], cosig_id);
    assert_eq!(raw[4..12], 1_767_225_600u64.to_be_bytes());
    assert_eq!(raw.len(), 76);
    // The key ID is the one C2SP defines, computed independently here.
    let mut pre = b"tally/repo\n\x01".to_vec();
    pre.extend_from_slice(key(1).verifying_key().as_bytes());
    assert_eq!(id, Sha256::digest(&pre)[..4]);
    // Reproduced independently (Python `cryptography` building the note from the C2SP
    // specs) before being frozen here.
    assert_eq!(
        signed.text(),
        "tally/repo\n42\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n\n\
         \u{2014} tally/repo wqv+H1dBfEIygWjWmLAuLGJarT7cyqrXRUB+GTjvAHK7/pwnSOEKMsKEV+fzU6AvF3CMg488P3IufpQ+XlE7KZ+Mlg0=\n\
         \u{2014} tally/repo ITMzHQAAAABpVbkA6q1mKKFWfuyeHFi5CMQB6ByOsOgVHzmmEvhEJt/zk3zviqTq6ww8hYo7VhqCsYqsGG5/WECRw0aWLTibsHOrCw==\n"
    );
    assert_eq!(
        hex::encode(&Sha256::digest(signed.text().as_bytes())),
        "7b8f20c0f64490b8b49ac0d28203c4c5651f20a447f169bd6f1cf39486ad4d73"
    );
    assert_eq!(
        vkey(1).to_string(),
        "tally/repo+c2abfe1f+AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c"
    );
}

#[test]
fn cosignature_signs_the_documented_message() {
    let signed = sample().sign(99, &key(1)).unwrap();
    let cosig_line = signed.text().lines().nth(5).unwrap();
    let raw = Base64::decode_vec(cosig_line.rsplit(' ').next().unwrap()).unwrap();
    let sig = Signature::from_bytes(&raw[12..].try_into().unwrap());
    let message = format!("cosignature/v1\ntime 99\n{}", sample().body());
    key(1)
        .verifying_key()
        .verify_strict(message.as_bytes(), &sig)
        .unwrap();
}

#[test]
fn verifier_key_round_trips_and_checks_its_id() {
    let v = vkey(1);
    let text = v.to_string();
    assert!(text.starts_with("tally/repo+"));
    assert_eq!(VerifierKey::parse(&text).unwrap(), v);
    let mut parts: Vec<&str> = text.split('+').collect();
    let wrong = "00000000";
    parts[1] = wrong;
    assert!(matches!(
        VerifierKey::parse(&parts.join("+")),
        Err(CheckpointError::VerifierKeyIdMismatch { .. })
    ));
    for bad in [
        "",
        "a+b",
        "tally/repo+0000+AQ==",
        "a b+00000000+AQ==",
        &format!("{text}+x"),
    ] {
        assert!(VerifierKey::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn verifier_keys_whose_base64_has_a_plus_round_trip() {
    let mut with_plus = 0;
    for seed in 0..=255u8 {
        let v = VerifierKey::new("tally/repo", key(seed).verifying_key()).unwrap();
        let text = v.to_string();
        with_plus += usize::from(text.matches('+').count() > 2);
        assert_eq!(VerifierKey::parse(&text).unwrap(), v, "{text}");
    }
    assert!(with_plus > 0);
}

#[test]
fn unknown_keys_are_ignored() {
    let signed = sample().sign(5, &key(1)).unwrap();
    // Another key's signature lines appended, and a line under another name.
    let other = Checkpoint {
        origin: "witness.example/w1".to_owned(),
        ..sample()
    }
    .sign(5, &key(2))
    .unwrap();
    let extra: String = other
        .text()
        .lines()
        .skip(4)
        .map(|l| format!("{l}\n"))
        .collect();
    let text = format!("{}{extra}", signed.text());
    let parsed = SignedCheckpoint::parse(&text).unwrap();
    assert_eq!(parsed.verify(&vkey(1)).unwrap().time(), 5);
}

#[test]
fn a_bad_signature_from_the_known_key_fails() {
    let signed = sample().sign(5, &key(1)).unwrap();
    let forged = Checkpoint {
        root: [8; 32],
        ..sample()
    }
    .sign(5, &key(2))
    .unwrap();
    // Splice key 2's signature bytes under key 1's key ID.
    let lines: Vec<&str> = signed.text().lines().collect();
    let forged_lines: Vec<&str> = forged.text().lines().collect();
    let mut raw = Base64::decode_vec(forged_lines[4].rsplit(' ').next().unwrap()).unwrap();
    raw[..4].copy_from_slice(&vkey(1).key_id());
    let line = format!("\u{2014} tally/repo {}", Base64::encode_string(&raw));
    let text = format!(
        "{}\n{}\n{}\n\n{line}\n{}\n",
        lines[0], lines[1], lines[2], lines[5]
    );
    let parsed = SignedCheckpoint::parse(&text).unwrap();
    assert!(matches!(
        parsed.verify(&vkey(1)),
        Err(CheckpointError::BadSignature { .. })
    ));
}

#[test]
fn a_changed_body_fails() {
    let signed = sample().sign(5, &key(1)).unwrap();
    let text = signed.text().replacen("\n42\n", "\n43\n", 1);
    let parsed = SignedCheckpoint::parse(&text).unwrap();
    assert!(matches!(
        parsed.verify(&vkey(1)),
        Err(CheckpointError::BadSignature { .. })
    ));
}

#[test]
fn a_changed_timestamp_fails() {
    let signed = sample().sign(5, &key(1)).unwrap();
    let lines: Vec<&str> = signed.text().lines().collect();
    let mut raw = Base64::decode_vec(lines[5].rsplit(' ').next().unwrap()).unwrap();
    raw[11] = 6;
    let line = format!("\u{2014} tally/repo {}", Base64::encode_string(&raw));
    let text = format!(
        "{}\n{}\n{}\n\n{}\n{line}\n",
        lines[0], lines[1], lines[2], lines[4]
    );
    let parsed = SignedCheckpoint::parse(&text).unwrap();
    assert!(matches!(
        parsed.verify(&vkey(1)),
        Err(CheckpointError::BadTimestamp { .. })
    ));
}

#[test]
fn both_signatures_are_required() {
    let signed = sample().sign(5, &key(1)).unwrap();
    let lines: Vec<&str> = signed.text().lines().collect();
    let head = format!("{}\n{}\n{}\n\n", lines[0], lines[1], lines[2]);
    let only_sig = SignedCheckpoint::parse(&format!("{head}{}\n", lines[4])).unwrap();
    assert!(matches!(
        only_sig.verify(&vkey(1)),
        Err(CheckpointError::MissingTimestamp { .. })
    ));
    let only_time = SignedCheckpoint::parse(&format!("{head}{}\n", lines[5])).unwrap();
    assert!(matches!(
        only_time.verify(&vkey(1)),
        Err(CheckpointError::MissingSignature { .. })
    ));
    let twice =
        SignedCheckpoint::parse(&format!("{head}{}\n{}\n{}\n", lines[4], lines[4], lines[5]))
            .unwrap();
    assert!(matches!(
        twice.verify(&vkey(1)),
        Err(CheckpointError::DuplicateSignature { .. })
    ));
    // Signed by another key entirely: nothing from the known key.
    let other = sample().sign(5, &key(2)).unwrap();
    assert!(matches!(
        other.verify(&vkey(1)),
        Err(CheckpointError::MissingSignature { .. })
    ));
}

#[test]
fn origin_must_be_the_key_name() {
    let signed = Checkpoint {
        origin: "tally/other".to_owned(),
        ..sample()
    }
    .sign(5, &key(1))
    .unwrap();
    assert!(matches!(
        signed.verify(&vkey(1)),
        Err(CheckpointError::OriginMismatch { .. })
    ));
}

#[test]
fn parse_is_strict() {
    let signed = sample().sign(5, &key(1)).unwrap();
    let text = signed.text();
    let cases: Vec<(String, &str)> = vec![
        (text.trim_end().to_owned(), "no final newline"),
        (text.replacen("\n\n", "\n", 1), "no blank line"),
        (text.replacen("\n42\n", "\n042\n", 1), "leading zero"),
        (text.replacen("\n42\n", "\n+42\n", 1), "sign"),
        (
            text.replacen("\n42\n", "\n18446744073709551616\n", 1),
            "overflow",
        ),
        (text.replacen("=\n\n", "\n\n", 1), "unpadded root"),
        (
            text.replacen("\n\n", "\nextension\n\n", 1),
            "extension line",
        ),
        (text.replacen("\u{2014} ", "- ", 1), "ascii dash"),
        (
            text.replacen("tally/repo\n", "tally/repo\r\n", 1),
            "carriage return",
        ),
        (
            text.replacen("tally/repo\n", "tally repo\n", 1),
            "space in origin",
        ),
        (
            format!("{text}\u{2014} x\n"),
            "signature line without signature",
        ),
        (format!("{text}\u{2014} x AAAA\n"), "signature of 3 bytes"),
        (format!("{text}\u{2014} x AAAAAA==\n"), "key ID only"),
        ("x".repeat(MAX_NOTE_LEN + 1), "too large"),
    ];
    for (text, why) in cases {
        assert!(SignedCheckpoint::parse(&text).is_err(), "accepted: {why}");
    }
    let many: String = (0..=MAX_SIGNATURES)
        .map(|_| "\u{2014} x AAAAAAA=\n")
        .collect();
    let text = format!(
        "tally/repo\n0\n{}\n\n{many}",
        Base64::encode_string(&[0; 32])
    );
    assert_eq!(
        SignedCheckpoint::parse(&text),
        Err(CheckpointError::TooManySignatures)
    );
}

#[test]
fn verify_all_names_the_first_bad_note() {
    let key = vkey(1);
    let mut notes: Vec<SignedCheckpoint> = (0..100u64)
        .map(|i| {
            Checkpoint {
                size: i,
                ..sample()
            }
            .sign(1000 + i, &self::key(1))
            .unwrap()
        })
        .collect();
    let all = SignedCheckpoint::verify_all(&notes, &key).unwrap();
    assert_eq!(all.len(), 100);
    assert_eq!(all[57].size(), 57);
    assert_eq!(all[57].time(), 1057);
    assert!(SignedCheckpoint::verify_all(&[], &key).unwrap().is_empty());
    // Signed by another key: the signature lines are not this key's at all.
    notes[70] = sample().sign(1, &self::key(2)).unwrap();
    // A valid signature, but of another checkpoint.
    let other = sample().sign(5, &self::key(1)).unwrap();
    let body_len = notes[40].text().find("\n\n").unwrap() + 2;
    let forged = format!(
        "{}{}",
        &notes[40].text()[..body_len],
        &other.text()[other.text().find("\n\n").unwrap() + 2..]
    );
    notes[40] = SignedCheckpoint::parse(&forged).unwrap();
    assert_eq!(
        SignedCheckpoint::verify_all(&notes, &key).unwrap_err(),
        (
            40,
            CheckpointError::BadSignature {
                key_name: "tally/repo".into(),
                key: key.fingerprint(),
            }
        )
    );
    assert!(matches!(
        SignedCheckpoint::verify_all(&notes[41..], &key),
        Err((29, CheckpointError::MissingSignature { .. }))
    ));
}

#[test]
fn empty_tree_checkpoint() {
    let c = Checkpoint {
        origin: "tally/repo".to_owned(),
        size: 0,
        root: crate::merkle::EMPTY_ROOT,
    };
    let v = c
        .sign(0, &key(3))
        .unwrap()
        .verify(&VerifierKey::new("tally/repo", key(3).verifying_key()).unwrap())
        .unwrap();
    assert_eq!(v.size(), 0);
    assert_eq!(v.time(), 0);
}

#[test]
fn refuses_times_beyond_i64() {
    assert_eq!(
        sample().sign(1 << 63, &key(1)),
        Err(CheckpointError::TimeOutOfRange { time: 1 << 63 })
    );
}

#[test]
fn refuses_bad_origins() {
    for origin in ["", "a b", "a+b", "a\tb", "a\u{a0}b"] {
        let c = Checkpoint {
            origin: origin.to_owned(),
            ..sample()
        };
        assert!(
            matches!(c.sign(1, &key(1)), Err(CheckpointError::BadOrigin { .. })),
            "{origin:?}"
        );
    }
}

proptest::proptest! {
    #[test]
    fn parse_never_panics(text in ".{0,300}") {
        let _ = SignedCheckpoint::parse(&text);
        let _ = VerifierKey::parse(&text);
    }

    /// Batch verification agrees with one-by-one verification: on a run of notes with one
    /// byte flipped somewhere, it fails exactly when some note fails alone, naming the
    /// first such note with the same error.
    #[test]
    fn verify_all_agrees_with_verify(
        count in 1usize..20,
        which in 0usize..20,
        at in 0usize..400,
        bit in 0u8..8,
    ) {
        let key = vkey(1);
        let mut notes: Vec<SignedCheckpoint> = (0..count)
            .map(|i| {
                Checkpoint { size: i as u64, ..sample() }
                    .sign(1_767_225_600 + i as u64, &self::key(1))
                    .unwrap()
            })
            .collect();
        let which = which % count;
        let mut bytes = notes[which].text().as_bytes().to_vec();
        let i = at % bytes.len();
        bytes[i] ^= 1 << bit;
        if let Ok(text) = std::str::from_utf8(&bytes)
            && let Ok(parsed) = SignedCheckpoint::parse(text)
        {
            notes[which] = parsed;
        }
        let alone: Vec<_> = notes.iter().map(|n| n.verify(&key)).collect();
        let first_bad = alone.iter().position(Result::is_err);
        match SignedCheckpoint::verify_all(&notes, &key) {
            Ok(all) => {
                proptest::prop_assert_eq!(first_bad, None);
                let alone: Vec<_> = alone.into_iter().map(Result::unwrap).collect();
                proptest::prop_assert_eq!(all, alone);
            }
            Err((index, error)) => {
                proptest::prop_assert_eq!(Some(index), first_bad);
                proptest::prop_assert_eq!(Err(error), alone[index].clone());
            }
        }
    }

    #[test]
    fn any_flipped_byte_of_a_note_fails_to_verify(at in 0usize..400, bit in 0u8..8) {
        let signed = sample().sign(1_767_225_600, &key(1)).unwrap();
        let mut bytes = signed.text().as_bytes().to_vec();
        let i = at % bytes.len();
        bytes[i] ^= 1 << bit;
        if let Ok(text) = std::str::from_utf8(&bytes)
            && let Ok(parsed) = SignedCheckpoint::parse(text)
        {
            proptest::prop_assert!(parsed.verify(&vkey(1)).is_err(), "flip at {} verified", i);
        }
    }
}

#![allow(clippy::unwrap_used)]

use super::*;
use crate::merkle::leaf_hash;
use proptest::prelude::*;
use sha2::{Digest, Sha256};

/// A fully populated accepted entry with fixed contents (used by the golden tests).
pub(crate) fn sample_accepted() -> Entry {
    Entry {
        seq: 7,
        kind: Kind::Accepted,
        time: jiff::Timestamp::new(1_767_225_600, 123_456_789).unwrap(),
        repository: "0f6c2f4e-example".to_owned(),
        refname: "refs/heads/main".to_owned(),
        old: Some(vec![0x11; 20]),
        new: Some(vec![0x22; 20]),
        new_tree: Some(vec![0x33; 20]),
        commits: vec![
            CommitSigner {
                commit: vec![0x44; 20],
                principal: "alice@example.com".to_owned(),
                fingerprint: "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU".to_owned(),
            },
            CommitSigner {
                commit: vec![0x22; 20],
                principal: "bob@example.com".to_owned(),
                fingerprint: "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s".to_owned(),
            },
        ],
        pusher: "alice".to_owned(),
        policy_digest: [0x55; 32],
        reasons: vec![],
        aborts: None,
        prev_hash: [0x66; 32],
    }
}

fn sample_rejected() -> Entry {
    Entry {
        seq: 0,
        kind: Kind::Rejected,
        time: jiff::Timestamp::new(0, 0).unwrap(),
        repository: "r".to_owned(),
        refname: "refs/heads/main".to_owned(),
        old: Some(vec![0xaa; 32]),
        new: Some(vec![0xbb; 32]),
        new_tree: None,
        commits: vec![CommitSigner {
            commit: vec![0xbb; 32],
            principal: String::new(),
            fingerprint: String::new(),
        }],
        pusher: "mallory".to_owned(),
        policy_digest: [0; 32],
        reasons: vec![
            "commit bbbb: not signed (fix: git commit -S)".to_owned(),
            "deploy.sh: not an allowed file".to_owned(),
        ],
        aborts: None,
        prev_hash: [0; 32],
    }
}

fn sample_aborted() -> Entry {
    Entry {
        seq: 8,
        kind: Kind::Aborted,
        time: jiff::Timestamp::new(1_767_225_601, 0).unwrap(),
        repository: "0f6c2f4e-example".to_owned(),
        refname: "refs/heads/main".to_owned(),
        old: None,
        new: None,
        new_tree: None,
        commits: vec![],
        pusher: String::new(),
        policy_digest: [0x55; 32],
        reasons: vec![],
        aborts: Some(7),
        prev_hash: [0x77; 32],
    }
}

fn hexs(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

// Golden hashes: computed once from this encoding and frozen. If one of these changes, the
// encoding changed, and every existing ledger would stop verifying: bump VERSION instead.
#[test]
fn golden_accepted() {
    let bytes = sample_accepted().encode().unwrap();
    assert_eq!(bytes.len(), 433);
    assert_eq!(
        hexs(&Sha256::digest(&bytes)),
        "7255d1e5c7285de61f5e275cbc55977d924e3c7d7b8c376486106dbf17a7a358"
    );
    assert_eq!(
        hexs(&leaf_hash(&bytes)),
        "2252231893b6ffcec113f4ccf3462645d5263669f679c026670778f8ea5ec91c"
    );
}

#[test]
fn golden_rejected() {
    let bytes = sample_rejected().encode().unwrap();
    assert_eq!(
        hexs(&Sha256::digest(&bytes)),
        "f259c06fde059b45c2926f81e89174f8346733cee6dde91d6bf68800ae7d574c"
    );
    assert_eq!(
        hexs(&leaf_hash(&bytes)),
        "41b0a0916d1a78b4a386e39b55c0f41567ef281e320ed2010f28812e44392b37"
    );
}

#[test]
fn golden_aborted() {
    let bytes = sample_aborted().encode().unwrap();
    assert_eq!(bytes.len(), 168);
    assert_eq!(
        hexs(&Sha256::digest(&bytes)),
        "fd9c956aab527959eacd3e7759853278457f81c8359fee9a767d3152bed43666"
    );
    assert_eq!(
        hexs(&leaf_hash(&bytes)),
        "13432126eb62aeb0b3feac4eab838ac7561a0d3c46d86216d4b8ac83bb72ecfa"
    );
}

#[test]
fn golden_prefix_is_the_documented_layout() {
    let bytes = sample_aborted().encode().unwrap();
    let mut expected = Vec::new();
    expected.extend_from_slice(b"tally/ledger/entry\0");
    expected.push(1); // version
    expected.extend_from_slice(&8u64.to_be_bytes()); // seq
    expected.push(3); // kind: aborted
    expected.extend_from_slice(&1_767_225_601i64.to_be_bytes());
    expected.extend_from_slice(&0u32.to_be_bytes());
    expected.extend_from_slice(&16u32.to_be_bytes());
    expected.extend_from_slice(b"0f6c2f4e-example");
    expected.extend_from_slice(&15u32.to_be_bytes());
    expected.extend_from_slice(b"refs/heads/main");
    expected.extend_from_slice(&[0, 0, 0]); // old, new, new_tree absent
    expected.extend_from_slice(&0u32.to_be_bytes()); // no commits
    expected.extend_from_slice(&0u32.to_be_bytes()); // empty pusher
    expected.extend_from_slice(&[0x55; 32]);
    expected.extend_from_slice(&0u32.to_be_bytes()); // no reasons
    expected.push(1);
    expected.extend_from_slice(&7u64.to_be_bytes());
    expected.extend_from_slice(&[0x77; 32]);
    assert_eq!(bytes, expected);
}

#[test]
fn round_trips_samples() {
    for entry in [sample_accepted(), sample_rejected(), sample_aborted()] {
        let bytes = entry.encode().unwrap();
        assert_eq!(Entry::decode(&bytes).unwrap(), entry);
    }
}

#[test]
fn negative_time_round_trips() {
    let mut entry = sample_rejected();
    entry.time = jiff::Timestamp::new(-5, -1).unwrap();
    let bytes = entry.encode().unwrap();
    assert_eq!(
        &bytes[29..41],
        &[
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfa, 0x3b, 0x9a, 0xc9, 0xff
        ]
    );
    assert_eq!(Entry::decode(&bytes).unwrap(), entry);
}

#[test]
fn rejects_a_foreign_label() {
    let mut bytes = sample_accepted().encode().unwrap();
    bytes[0] = b'T';
    assert_eq!(Entry::decode(&bytes), Err(EntryError::BadLabel));
}

#[test]
fn rejects_an_unknown_version() {
    let mut bytes = sample_accepted().encode().unwrap();
    bytes[19] = 2;
    assert_eq!(
        Entry::decode(&bytes),
        Err(EntryError::UnsupportedVersion { found: 2 })
    );
}

#[test]
fn rejects_trailing_bytes() {
    let mut bytes = sample_accepted().encode().unwrap();
    bytes.push(0);
    assert_eq!(
        Entry::decode(&bytes),
        Err(EntryError::TrailingBytes { count: 1 })
    );
}

#[test]
fn rejects_every_truncation() {
    let bytes = sample_accepted().encode().unwrap();
    for len in 0..bytes.len() {
        assert!(
            matches!(
                Entry::decode(&bytes[..len]),
                Err(EntryError::Truncated { .. }
                    | EntryError::BadLabel
                    | EntryError::CountTooLarge { .. })
            ),
            "truncated to {len}"
        );
    }
}

#[test]
fn rejects_an_unknown_kind() {
    let mut bytes = sample_accepted().encode().unwrap();
    bytes[28] = 9;
    assert_eq!(
        Entry::decode(&bytes),
        Err(EntryError::UnknownKind { found: 9 })
    );
}

#[test]
fn rejects_nanos_of_a_second_or_more() {
    let mut bytes = sample_accepted().encode().unwrap();
    bytes[37..41].copy_from_slice(&1_000_000_000u32.to_be_bytes());
    assert_eq!(
        Entry::decode(&bytes),
        Err(EntryError::BadNanos {
            nanos: 1_000_000_000
        })
    );
}

#[test]
fn rejects_a_time_out_of_range() {
    let mut bytes = sample_accepted().encode().unwrap();
    bytes[29..37].copy_from_slice(&i64::MAX.to_be_bytes());
    assert_eq!(
        Entry::decode(&bytes),
        Err(EntryError::TimeOutOfRange { seconds: i64::MAX })
    );
}

#[test]
fn rejects_an_over_long_length() {
    let mut bytes = sample_accepted().encode().unwrap();
    // The repository's length prefix sits right after the time.
    bytes[41..45].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        Entry::decode(&bytes),
        Err(EntryError::Truncated { field: "repository", needed, .. }) if needed == u32::MAX as usize
    ));
}

#[test]
fn rejects_invalid_utf8() {
    let mut bytes = sample_accepted().encode().unwrap();
    bytes[45] = 0xff;
    assert_eq!(
        Entry::decode(&bytes),
        Err(EntryError::InvalidUtf8 {
            field: "repository"
        })
    );
}

#[test]
fn rejects_a_count_larger_than_the_input_without_allocating() {
    let entry = Entry {
        commits: vec![],
        ..sample_accepted()
    };
    let mut bytes = entry.encode().unwrap();
    let at = 45 + 16 + 4 + 15 + 3 * 25;
    assert_eq!(&bytes[at..at + 4], &[0, 0, 0, 0]);
    bytes[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        Entry::decode(&bytes),
        Err(EntryError::CountTooLarge {
            field: "commits",
            count: u32::MAX,
            ..
        })
    ));
}

#[test]
fn rejects_a_bad_presence_byte() {
    let entry = sample_accepted();
    let mut bytes = entry.encode().unwrap();
    let at = 45 + 16 + 4 + 15;
    assert_eq!(bytes[at], 1);
    bytes[at] = 2;
    assert_eq!(
        Entry::decode(&bytes),
        Err(EntryError::BadPresence {
            field: "old",
            tag: 2
        })
    );
}

#[test]
fn rejects_object_ids_of_the_wrong_length() {
    let mut entry = sample_accepted();
    entry.new = Some(vec![1; 21]);
    assert_eq!(
        entry.encode(),
        Err(EntryError::BadObjectId {
            field: "new",
            len: 21
        })
    );
    let mut entry = sample_accepted();
    entry.commits[0].commit = vec![];
    assert_eq!(
        entry.encode(),
        Err(EntryError::BadObjectId {
            field: "commit",
            len: 0
        })
    );
}

#[test]
fn enforces_the_aborts_rules_both_ways() {
    let mut entry = sample_accepted();
    entry.aborts = Some(1);
    assert_eq!(
        entry.encode(),
        Err(EntryError::AbortsMismatch {
            kind: Kind::Accepted
        })
    );
    let mut entry = sample_aborted();
    entry.aborts = None;
    assert_eq!(
        entry.encode(),
        Err(EntryError::AbortsMismatch {
            kind: Kind::Aborted
        })
    );
    let mut entry = sample_aborted();
    entry.aborts = Some(8);
    assert_eq!(
        entry.encode(),
        Err(EntryError::AbortsNotEarlier { seq: 8, target: 8 })
    );

    // And a decoder does not take the encoder's word for it.
    let mut bytes = sample_accepted().encode().unwrap();
    let at = bytes.len() - 33;
    assert_eq!(bytes[at], 0);
    bytes[at] = 1;
    bytes.splice(at + 1..at + 1, 3u64.to_be_bytes());
    assert_eq!(
        Entry::decode(&bytes),
        Err(EntryError::AbortsMismatch {
            kind: Kind::Accepted
        })
    );
}

#[test]
fn rejects_oversized_input_up_front() {
    let bytes = vec![0u8; MAX_ENCODED_LEN + 1];
    assert_eq!(
        Entry::decode(&bytes),
        Err(EntryError::TooLarge {
            len: MAX_ENCODED_LEN + 1
        })
    );
    let mut entry = sample_accepted();
    entry.reasons = vec!["x".repeat(MAX_ENCODED_LEN)];
    assert!(matches!(entry.encode(), Err(EntryError::TooLarge { .. })));
}

#[test]
fn kind_names_round_trip() {
    for kind in Kind::ALL {
        assert_eq!(kind.as_str().parse::<Kind>().unwrap(), kind);
        assert_eq!(Kind::from_code(kind.code()), Some(kind));
    }
    assert!("Accepted".parse::<Kind>().is_err());
    assert_eq!(Kind::from_code(0), None);
}

#[test]
fn serialises_to_json_with_hex_ids() {
    let json = serde_json::to_value(sample_aborted()).unwrap();
    assert_eq!(json["kind"], "aborted");
    assert_eq!(json["ref"], "refs/heads/main");
    assert_eq!(json["old"], serde_json::Value::Null);
    assert_eq!(json["aborts"], 7);
    assert_eq!(json["time"], "2026-01-01T00:00:01Z");
    assert_eq!(json["prev_hash"], "77".repeat(32));
    let json = serde_json::to_value(sample_accepted()).unwrap();
    assert_eq!(json["commits"][0]["commit"], "44".repeat(20));
    assert_eq!(json["commits"][0]["principal"], "alice@example.com");
    assert_eq!(json["time"], "2026-01-01T00:00:00.123456789Z");
}

pub(crate) fn arb_object_id() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 20),
        proptest::collection::vec(any::<u8>(), 32)
    ]
}

pub(crate) fn arb_entry() -> impl Strategy<Value = Entry> {
    let commit =
        (arb_object_id(), ".{0,12}", ".{0,12}").prop_map(|(commit, principal, fingerprint)| {
            CommitSigner {
                commit,
                principal,
                fingerprint,
            }
        });
    (
        (
            0u64..1 << 40,
            prop_oneof![
                Just(Kind::Accepted),
                Just(Kind::Rejected),
                Just(Kind::Aborted),
                Just(Kind::PolicyChange)
            ],
        ),
        (-100_000_000_000i64..100_000_000_000, 0u32..1_000_000_000),
        (".{0,12}", ".{0,24}"),
        (
            proptest::option::of(arb_object_id()),
            proptest::option::of(arb_object_id()),
            proptest::option::of(arb_object_id()),
        ),
        proptest::collection::vec(commit, 0..4),
        ".{0,12}",
        any::<[u8; 32]>(),
        proptest::collection::vec(".{0,20}", 0..3),
        any::<[u8; 32]>(),
        any::<u64>(),
    )
        .prop_map(
            |(
                (seq, kind),
                (seconds, nanos),
                (repository, refname),
                (old, new, new_tree),
                commits,
                pusher,
                policy_digest,
                reasons,
                prev_hash,
                target,
            )| {
                let aborts =
                    (kind == Kind::Aborted).then(|| if seq == 0 { 0 } else { target % seq });
                let seq = if kind == Kind::Aborted && seq == 0 {
                    1
                } else {
                    seq
                };
                Entry {
                    seq,
                    kind,
                    time: join_time(seconds, nanos).unwrap(),
                    repository,
                    refname,
                    old,
                    new,
                    new_tree,
                    commits,
                    pusher,
                    policy_digest,
                    reasons,
                    aborts,
                    prev_hash,
                }
            },
        )
}

proptest! {
    #[test]
    fn encode_decode_round_trips(entry in arb_entry()) {
        let bytes = entry.encode().unwrap();
        prop_assert_eq!(Entry::decode(&bytes).unwrap(), entry.clone());
        // The encoding is canonical: decoding then encoding gives back the same bytes.
        prop_assert_eq!(Entry::decode(&bytes).unwrap().encode().unwrap(), bytes);
    }

    #[test]
    fn decode_never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Entry::decode(&bytes);
    }

    #[test]
    fn decode_never_panics_on_mutations(entry in arb_entry(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = entry.encode().unwrap();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        if let Ok(decoded) = Entry::decode(&bytes) {
            // Whatever decodes re-encodes to exactly the bytes it came from.
            prop_assert_eq!(decoded.encode().unwrap(), bytes);
        }
    }
}

//! Unit tests of export bundles: writing, verifying, and each kind of tampering, on ledgers
//! built in memory (the end-to-end tests in `tests/e2e/export.rs` use real pushes).

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};
use ssh_key::{HashAlg, LineEnding};

use crate::checkpoint::{Checkpoint, SignedCheckpoint};
use crate::entry::{CommitSigner, Entry, EntryView, Kind, tests::sample_accepted};
use crate::hex::{self, Hex};
use crate::merkle::{Frontier, Hash, leaf_hash};

use super::hashing::ChunkReader;
use super::manifest::{check_manifest_signature, sign_manifest};
use super::rows::{csv_field, parse_csv_record};
use super::stream::Rows;
use super::*;

const ORIGIN: &str = "tally/unit";

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

/// A chain of entries: even seqs accepted on main, odd seqs rejected on `other`, one second
/// apart from 2026-01-01T00:00:00Z; entry 3's reason has a comma, quotes and a line feed.
fn ledger(n: u64) -> Vec<Vec<u8>> {
    let mut prev = crate::GENESIS;
    let mut out = Vec::new();
    for seq in 0..n {
        let rejected = seq % 2 == 1;
        let entry = Entry {
            seq,
            kind: if rejected {
                Kind::Rejected
            } else {
                Kind::Accepted
            },
            time: jiff::Timestamp::new(1_767_225_600 + seq as i64, 0).unwrap(),
            repository: "unit".to_owned(),
            refname: if rejected {
                "refs/heads/other".to_owned()
            } else {
                "refs/heads/main".to_owned()
            },
            commits: vec![
                CommitSigner {
                    commit: vec![seq as u8; 20],
                    principal: "alice@example.com".to_owned(),
                    fingerprint: "SHA256:abc".to_owned(),
                },
                CommitSigner {
                    commit: vec![0xee; 20],
                    principal: String::new(),
                    fingerprint: String::new(),
                },
            ],
            reasons: if rejected {
                vec![
                    format!("0123456789 a,b \"c\".sh: file type not allowed (entry {seq})"),
                    "second\r\nreason".to_owned(),
                ]
            } else {
                vec![]
            },
            // Each accepted move starts where the one before it ended (chain continuity).
            old: if rejected {
                Some(vec![0x11; 20])
            } else {
                (seq >= 2).then(|| vec![(seq - 1) as u8; 20])
            },
            new: Some(if rejected {
                vec![0x22; 20]
            } else {
                vec![(seq + 1) as u8; 20]
            }),
            prev_hash: prev,
            ..sample_accepted()
        };
        let bytes = entry.encode().unwrap();
        prev = leaf_hash(&bytes);
        out.push(bytes);
    }
    out
}

fn checkpoint_of(entries: &[Vec<u8>], key: &SigningKey) -> SignedCheckpoint {
    let mut frontier = Frontier::new();
    for bytes in entries {
        frontier.append(&leaf_hash(bytes));
    }
    Checkpoint {
        origin: ORIGIN.to_owned(),
        size: frontier.size(),
        root: frontier.root(),
    }
    .sign(1_767_300_000, key)
    .unwrap()
}

fn write(out: &Path, entries: &[Vec<u8>], range: Range) -> Summary {
    let key = key();
    let mut writer = BundleWriter::create(out, "unit", range).unwrap();
    for bytes in entries {
        writer.push(bytes).unwrap();
    }
    let checkpoint = checkpoint_of(entries, &key);
    writer
        .finish(Seal {
            checkpoint: &checkpoint,
            key: &key,
            policy: b"[branches]\nprotected = [\"main\"]\n",
            allowed_signers: b"alice@example.com ssh-ed25519 AAAA\n",
            revoked_keys: None,
            exported_at: jiff::Timestamp::new(1_767_300_001, 0).unwrap(),
            exported_by: "tally test",
        })
        .unwrap()
}

fn bundle(range: Range) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle");
    write(&out, &ledger(9), range);
    (dir, out)
}

fn verify(dir: &Path) -> BundleReport {
    verify_bundle(dir, &key().verifying_key()).unwrap()
}

fn problems(dir: &Path) -> Vec<String> {
    let report = verify(dir);
    assert!(!report.ok, "tampering went unnoticed");
    report.problems.iter().map(ToString::to_string).collect()
}

fn assert_problem(problems: &[String], parts: &[&str]) {
    assert!(
        problems
            .iter()
            .any(|p| parts.iter().all(|part| p.contains(part))),
        "no problem mentions all of {parts:?}: {problems:#?}"
    );
}

/// Re-signs MANIFEST after a change, as someone holding the key could; isolates the content
/// checks from the hash and signature checks.
fn reseal(dir: &Path) {
    let mut manifest = String::new();
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != MANIFEST && n != MANIFEST_SIG)
        .collect();
    names.sort();
    for name in names {
        let bytes = fs::read(dir.join(&name)).unwrap();
        manifest.push_str(&format!("{}  {name}\n", Hex(&Sha256::digest(&bytes))));
    }
    fs::write(dir.join(MANIFEST), &manifest).unwrap();
    fs::write(
        dir.join(MANIFEST_SIG),
        sign_manifest(&key(), manifest.as_bytes()).unwrap(),
    )
    .unwrap();
}

#[test]
fn a_fresh_bundle_verifies() {
    let (_tmp, dir) = bundle(Range::default());
    let report = verify(&dir);
    assert!(report.ok, "{:#?}", report.problems);
    assert_eq!(report.rows, 9);
    assert_eq!(report.size, Some(9));
    assert_eq!(report.origin.as_deref(), Some(ORIGIN));
    let names: BTreeSet<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut expected: BTreeSet<String> = REQUIRED.iter().map(|s| (*s).to_owned()).collect();
    expected.insert(POLICY.into());
    expected.insert(ALLOWED_SIGNERS.into());
    assert_eq!(names, expected);
    // No staging directory is left beside the bundle.
    let siblings: Vec<_> = fs::read_dir(dir.parent().unwrap()).unwrap().collect();
    assert_eq!(siblings.len(), 1);
}

#[test]
fn rows_match_the_documented_columns_and_quoting() {
    let (_tmp, dir) = bundle(Range::default());
    let csv = fs::read(dir.join(ENTRIES_CSV)).unwrap();
    assert!(csv.starts_with(
        b"seq,time,kind,ref,old,new,new_tree,commits,principals,fingerprints,pusher,\
          policy_digest,reasons,aborts,repository,prev_hash,leaf_hash\r\n"
    ));
    let mut rows = Rows {
        name: ENTRIES_CSV,
        reader: ChunkReader::open(File::open(dir.join(ENTRIES_CSV)).unwrap()),
        buf: Vec::new(),
        expected: Vec::new(),
        rows: 0,
        lines: 0,
        stopped: false,
    };
    assert!(rows.next_csv_record().unwrap()); // header
    let mut records = Vec::new();
    while rows.next_csv_record().unwrap() {
        records.push(parse_csv_record(&rows.buf).unwrap());
    }
    assert_eq!(records.len(), 9);
    let rejected = &records[3];
    assert_eq!(rejected[0], "3");
    assert_eq!(rejected[1], "2026-01-01T00:00:03Z");
    assert_eq!(rejected[2], "rejected");
    assert_eq!(rejected[3], "refs/heads/other");
    assert_eq!(rejected[4], "11".repeat(20));
    assert_eq!(
        rejected[7],
        format!("{}\n{}", "03".repeat(20), "ee".repeat(20))
    );
    assert_eq!(rejected[8], "alice@example.com\n");
    assert_eq!(
        rejected[12],
        "0123456789 a,b \"c\".sh: file type not allowed (entry 3)\nsecond\r\nreason"
    );
    assert_eq!(rejected[13], "");
    let jsonl = fs::read_to_string(dir.join(ENTRIES_JSONL)).unwrap();
    let line: serde_json::Value = serde_json::from_str(jsonl.lines().nth(3).unwrap()).unwrap();
    assert_eq!(line["reasons"][1], "second\r\nreason");
    assert_eq!(line["commits"][1]["principal"], "");
    assert_eq!(line["aborts"], serde_json::Value::Null);
    // Same fields, same order, same values as `tally log --json` (Entry's Serialize).
    let entry = Entry::decode(&ledger(9)[3]).unwrap();
    let mut logged = serde_json::to_value(&entry).unwrap();
    logged["leaf_hash"] = hex::encode(&leaf_hash(&ledger(9)[3])).into();
    assert_eq!(line, logged);
    // In the documented order.
    let text = jsonl.lines().nth(3).unwrap();
    let positions: Vec<usize> = JSON_FIELDS
        .iter()
        .map(|k| text.find(&format!("\"{k}\":")).unwrap())
        .collect();
    assert!(positions.is_sorted(), "{text}");
    assert_eq!(line.as_object().unwrap().len(), JSON_FIELDS.len());
}

#[test]
fn csv_fields_round_trip() {
    for value in [
        "",
        "plain",
        "a,b",
        "say \"hi\"",
        "two\nlines",
        "cr\rlf\r\n",
        "\"",
        ",",
    ] {
        let mut out = Vec::new();
        csv_field(&mut out, value.as_bytes());
        out.push(b',');
        csv_field(&mut out, b"x");
        out.extend_from_slice(b"\r\n");
        assert_eq!(
            parse_csv_record(&out).unwrap(),
            vec![value.to_owned(), "x".to_owned()],
            "{value:?}"
        );
    }
    assert!(parse_csv_record(b"\"open").is_err());
    assert!(parse_csv_record(b"a\"b").is_err());
    assert!(parse_csv_record(b"\"a\"b").is_err());
}

#[test]
fn ranges_select_by_branch_and_half_open_time() {
    let entries = ledger(9);
    let view = |i: usize| EntryView::parse(&entries[i]).unwrap();
    let t = |s: i64| Some(jiff::Timestamp::new(1_767_225_600 + s, 0).unwrap());
    let window = Range {
        branch: None,
        since: t(2),
        until: t(5),
    };
    let selected: Vec<u64> = (0..9)
        .filter(|i| window.contains(&view(*i)))
        .map(|i| i as u64)
        .collect();
    assert_eq!(selected, vec![2, 3, 4]);
    let main = Range {
        branch: Some("refs/heads/main".into()),
        ..Range::default()
    };
    let selected: Vec<u64> = (0..9)
        .filter(|i| main.contains(&view(*i)))
        .map(|i| i as u64)
        .collect();
    assert_eq!(selected, vec![0, 2, 4, 6, 8]);
}

#[test]
fn a_ranged_bundle_verifies_and_records_its_range() {
    let t = |s: i64| Some(jiff::Timestamp::new(1_767_225_600 + s, 0).unwrap());
    let range = Range {
        branch: Some("refs/heads/main".into()),
        since: t(1),
        until: t(7),
    };
    let (_tmp, dir) = bundle(range);
    let report = verify(&dir);
    assert!(report.ok, "{:#?}", report.problems);
    assert_eq!(report.rows, 3);
    let d: Description = serde_json::from_slice(&fs::read(dir.join(DESCRIPTION)).unwrap()).unwrap();
    assert_eq!(d.first_seq, Some(2));
    assert_eq!(d.last_seq, Some(6));
    assert_eq!(d.size, 9);
    assert_eq!(d.since.as_deref(), Some("2026-01-01T00:00:01Z"));
    // Widening the recorded range, even re-signed, no longer matches the rows.
    let widened = fs::read_to_string(dir.join(DESCRIPTION))
        .unwrap()
        .replace("\"2026-01-01T00:00:01Z\"", "null");
    fs::write(dir.join(DESCRIPTION), widened).unwrap();
    reseal(&dir);
    assert_problem(&problems(&dir), &["entries.jsonl row 1", "seq 0"]);
}

#[test]
fn an_empty_range_verifies() {
    let t = Some(jiff::Timestamp::new(2_000_000_000, 0).unwrap());
    let (_tmp, dir) = bundle(Range {
        since: t,
        ..Range::default()
    });
    let report = verify(&dir);
    assert!(report.ok, "{:#?}", report.problems);
    assert_eq!(report.rows, 0);
    assert_eq!(fs::read(dir.join(ENTRIES_JSONL)).unwrap(), b"");
}

#[test]
fn a_changed_row_is_named_even_when_resealed() {
    let (_tmp, dir) = bundle(Range::default());
    let csv = fs::read_to_string(dir.join(ENTRIES_CSV)).unwrap().replacen(
        &"02".repeat(20),
        &format!("{}03", "02".repeat(19)),
        1,
    );
    fs::write(dir.join(ENTRIES_CSV), csv).unwrap();
    let found = problems(&dir);
    assert_problem(&found, &["entries.csv", "SHA-256", "MANIFEST says"]);
    assert_problem(&found, &["entries.csv row 3", "column commits", "seq 2"]);
    reseal(&dir);
    let found = problems(&dir);
    assert_eq!(found.len(), 1, "{found:#?}");
    // Header on line 1, accepted rows span 4 lines, rejected ones 6.
    assert_problem(&found, &["entries.csv row 3 (line 12)"]);
}

#[test]
fn reordered_extra_and_missing_rows_are_named() {
    let (_tmp, dir) = bundle(Range::default());
    let original = fs::read_to_string(dir.join(ENTRIES_JSONL)).unwrap();
    let mut lines: Vec<&str> = original.lines().collect();
    lines.swap(4, 5);
    fs::write(dir.join(ENTRIES_JSONL), lines.join("\n") + "\n").unwrap();
    reseal(&dir);
    assert_problem(
        &problems(&dir),
        &["entries.jsonl row 5 (line 5)", "field \"seq\" is 5"],
    );

    lines.swap(4, 5);
    let mut extra = lines.clone();
    extra.push(lines[8]);
    fs::write(dir.join(ENTRIES_JSONL), extra.join("\n") + "\n").unwrap();
    reseal(&dir);
    assert_problem(&problems(&dir), &["entries.jsonl row 10", "extra row"]);

    fs::write(dir.join(ENTRIES_JSONL), lines[..7].join("\n") + "\n").unwrap();
    reseal(&dir);
    assert_problem(
        &problems(&dir),
        &["entries.jsonl: row 8 (entry seq 7) is missing"],
    );
}

#[test]
fn raw_entries_must_chain_and_hash_to_the_checkpoint() {
    let (_tmp, dir) = bundle(Range::default());
    let bin = fs::read(dir.join(LEDGER_BIN)).unwrap();
    // Truncated: the last entry is cut short.
    fs::write(dir.join(LEDGER_BIN), &bin[..bin.len() - 10]).unwrap();
    reseal(&dir);
    assert_problem(&problems(&dir), &["ledger.bin entry 8", "truncated"]);
    // One entry dropped entirely: the chain breaks at the next one.
    let first_len = u32::from_be_bytes(bin[..4].try_into().unwrap()) as usize;
    let second = 4 + first_len;
    let second_len = u32::from_be_bytes(bin[second..second + 4].try_into().unwrap()) as usize;
    let mut dropped = bin[..second].to_vec();
    dropped.extend_from_slice(&bin[second + 4 + second_len..]);
    fs::write(dir.join(LEDGER_BIN), &dropped).unwrap();
    reseal(&dir);
    assert_problem(
        &problems(&dir),
        &["ledger.bin entry 1", "expected entry 1, found entry 2"],
    );
    // The last entry dropped: everything chains, but the root is not the signed one.
    let mut offset = 0;
    let mut last = 0;
    while offset < bin.len() {
        last = offset;
        offset += 4 + u32::from_be_bytes(bin[offset..offset + 4].try_into().unwrap()) as usize;
    }
    fs::write(dir.join(LEDGER_BIN), &bin[..last]).unwrap();
    reseal(&dir);
    assert_problem(
        &problems(&dir),
        &["ledger.bin: holds 8 entries, but the checkpoint signs size 9"],
    );
}

#[test]
fn files_must_be_exactly_the_bundle() {
    let (_tmp, dir) = bundle(Range::default());
    fs::write(dir.join("notes.txt"), "hello").unwrap();
    assert_problem(&problems(&dir), &["notes.txt", "extra file"]);
    fs::remove_file(dir.join("notes.txt")).unwrap();
    fs::remove_file(dir.join(POLICY)).unwrap();
    assert_problem(&problems(&dir), &["policy.toml: missing"]);
}

#[test]
fn the_manifest_must_be_signed_by_the_pinned_key() {
    let (_tmp, dir) = bundle(Range::default());
    let manifest = fs::read_to_string(dir.join(MANIFEST)).unwrap();
    // Changed manifest, old signature.
    fs::write(dir.join(MANIFEST), manifest.replacen('a', "b", 1)).unwrap();
    assert_problem(&problems(&dir), &["MANIFEST.sig", "does not verify"]);
    // Signed by another key.
    let other = SigningKey::from_bytes(&[9; 32]);
    fs::write(dir.join(MANIFEST), &manifest).unwrap();
    fs::write(
        dir.join(MANIFEST_SIG),
        sign_manifest(&other, manifest.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_problem(
        &problems(&dir),
        &["MANIFEST.sig", "not by the pinned ledger key"],
    );
    // Verified with another pinned key: the signature and the checkpoint both fail.
    reseal(&dir);
    let report = verify_bundle(&dir, &other.verifying_key()).unwrap();
    let found: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    assert_problem(&found, &["MANIFEST.sig", "not by the pinned ledger key"]);
    assert_problem(&found, &["checkpoint:"]);
    assert_problem(&found, &["ledger_key.pub", "not the pinned ledger key"]);
}

#[test]
fn a_wrong_namespace_is_refused() {
    let manifest = b"x";
    let private = ssh_key::PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(
        &key().to_bytes(),
    ));
    let sig = private
        .sign("git", HashAlg::Sha512, manifest)
        .unwrap()
        .to_pem(LineEnding::LF)
        .unwrap();
    let err =
        check_manifest_signature(sig.as_bytes(), manifest, &key().verifying_key()).unwrap_err();
    assert!(err.contains("namespace"), "{err}");
    let good = sign_manifest(&key(), manifest).unwrap();
    check_manifest_signature(good.as_bytes(), manifest, &key().verifying_key()).unwrap();
    assert!(good.starts_with("-----BEGIN SSH SIGNATURE-----\n"));
}

#[test]
fn the_writer_refuses_a_non_empty_directory_and_a_damaged_ledger() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("x"), "x").unwrap();
    assert!(matches!(
        BundleWriter::create(dir.path(), "unit", Range::default()),
        Err(ExportError::NotEmpty { .. })
    ));

    let out = dir.path().join("b");
    let mut entries = ledger(3);
    entries.swap(1, 2);
    let mut writer = BundleWriter::create(&out, "unit", Range::default()).unwrap();
    writer.push(&entries[0]).unwrap();
    let err = writer.push(&entries[1]).unwrap_err();
    assert!(err.is_verification_failure(), "{err}");
    drop(writer);
    assert!(!out.exists());
    // Nothing is left behind.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

    // A checkpoint that does not sign the entries pushed.
    let entries = ledger(3);
    let mut writer = BundleWriter::create(&out, "unit", Range::default()).unwrap();
    for bytes in &entries[..2] {
        writer.push(bytes).unwrap();
    }
    let checkpoint = checkpoint_of(&entries, &key());
    let err = writer
        .finish(Seal {
            checkpoint: &checkpoint,
            key: &key(),
            policy: b"",
            allowed_signers: b"",
            revoked_keys: None,
            exported_at: jiff::Timestamp::UNIX_EPOCH,
            exported_by: "test",
        })
        .unwrap_err();
    assert!(err.to_string().contains("signs size 3"), "{err}");
    assert!(!out.exists());
}

#[test]
fn an_empty_existing_directory_is_filled() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("empty");
    fs::create_dir(&out).unwrap();
    write(&out, &ledger(2), Range::default());
    assert!(verify(&out).ok);
}

#[test]
fn policy_files_are_digested_like_the_hooks_do() {
    // The same construction as tally-hooks' `Policy::load`; pinned so a change is noticed.
    let digest = policy_digest(b"p", b"s", b"");
    let mut h = Sha256::new();
    h.update(b"tally policy digest v1\n");
    h.update(1u64.to_be_bytes());
    h.update(b"p");
    h.update(1u64.to_be_bytes());
    h.update(b"s");
    h.update(0u64.to_be_bytes());
    assert_eq!(digest, <Hash>::from(h.finalize()));

    let (_tmp, dir) = bundle(Range::default());
    fs::write(dir.join(POLICY), "[branches]\nprotected = [\"*\"]\n").unwrap();
    reseal(&dir);
    assert_problem(&problems(&dir), &["policy files: their digest is"]);
}

#[test]
fn the_manifest_must_list_exactly_the_bundle_and_symlinks_do_not_count() {
    let (_tmp, dir) = bundle(Range::default());
    let manifest = fs::read_to_string(dir.join(MANIFEST)).unwrap();
    let without_readme: String = manifest
        .lines()
        .filter(|l| !l.ends_with("  README"))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(
        dir.join(MANIFEST),
        format!("{without_readme}{}  notes.txt\n", "00".repeat(32)),
    )
    .unwrap();
    let found = problems(&dir);
    assert_problem(&found, &["README: not listed in MANIFEST"]);
    assert_problem(&found, &["MANIFEST line 9", "notes.txt"]);
    assert_problem(&found, &["MANIFEST.sig", "does not verify"]);

    fs::write(dir.join(MANIFEST), &manifest).unwrap();
    let readme = dir.join(README);
    let elsewhere = dir.parent().unwrap().join("README.elsewhere");
    fs::rename(&readme, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &readme).unwrap();
    let found = problems(&dir);
    assert_problem(&found, &["README: not part of a tally export bundle"]);
    assert_problem(&found, &["README: missing"]);
}

/// The exact bytes of one `entries.jsonl` row, pinned: bundles already issued must keep
/// verifying, so a change of rendering (field order, escaping, hex case) has to fail here.
#[test]
fn a_jsonl_row_keeps_its_exact_bytes() {
    let raw = &ledger(4)[3];
    let view = EntryView::parse(raw).unwrap();
    let mut out = Vec::new();
    rows::json_row(&view, &leaf_hash(raw), &mut out);
    let text = String::from_utf8(out).unwrap();
    let expected = format!(
        concat!(
            r#"{{"seq":3,"kind":"rejected","time":"2026-01-01T00:00:03Z","repository":"unit","#,
            r#""ref":"refs/heads/other","old":"{old}","new":"{new}","new_tree":"{tree}","#,
            r#""commits":[{{"commit":"{c}","principal":"alice@example.com","fingerprint":"SHA256:abc"}},"#,
            r#"{{"commit":"{ee}","principal":"","fingerprint":""}}],"pusher":"alice","#,
            r#""policy_digest":"{digest}","reasons":["0123456789 a,b \"c\".sh: file type not allowed (entry 3)","second\r\nreason"],"#,
            r#""aborts":null,"prev_hash":"{prev}","leaf_hash":"{leaf}"}}"#,
            "\n"
        ),
        old = "11".repeat(20),
        new = "22".repeat(20),
        tree = "33".repeat(20),
        c = "03".repeat(20),
        ee = "ee".repeat(20),
        digest = Hex(&view.policy_digest),
        prev = Hex(&view.prev_hash),
        leaf = Hex(&leaf_hash(raw)),
    );
    assert_eq!(text, expected);
}

#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn durations_parse_in_the_units_operators_write() {
    let secs = |t: &str| parse_duration(t).unwrap().as_secs();
    assert_eq!(secs("90s"), 90);
    assert_eq!(secs("10m"), 600);
    assert_eq!(secs("2h"), 7200);
    assert_eq!(secs("1d"), 86_400);
    assert_eq!(secs("1w"), 604_800);
    assert_eq!(secs("1h30m"), 5400);
    for bad in [
        "",
        "10",
        "m",
        "1x",
        "-1h",
        "1.5h",
        "0s",
        "1 h",
        "99999999999999999999d",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
}

fn checkpoint_at(time: u64) -> VerifiedCheckpoint {
    let key = tally_ledger::SigningKey::from_bytes(&[9; 32]);
    let checkpoint = tally_ledger::Checkpoint {
        origin: "tally/test".into(),
        size: 1,
        root: [1; 32],
    };
    let vkey = VerifierKey::new("tally/test", key.verifying_key()).unwrap();
    checkpoint.sign(time, &key).unwrap().verify(&vkey).unwrap()
}

fn options(now: i64, max_age: Option<u64>) -> Options {
    Options {
        git_dir: PathBuf::new(),
        ledger_key: PathBuf::new(),
        allowed_signers: PathBuf::new(),
        branch: "main".into(),
        remote: "origin".into(),
        state: None,
        max_age: max_age.map(Duration::from_secs),
        trust_from: None,
        policy: None,
        now: Timestamp::from_second(now).unwrap(),
    }
}

#[test]
fn freshness_refuses_stale_and_future_checkpoints() {
    let t = 1_767_225_600;
    let at = checkpoint_at(t);
    let ok = |now, max| check_freshness(&at, None, &options(now, max)).is_empty();
    assert!(ok(t as i64 + 600, Some(600)));
    assert!(
        ok(t as i64 + 10_000, None),
        "no --max-age, no wall-clock check"
    );
    let reasons = check_freshness(&at, None, &options(t as i64 + 601, Some(600)));
    assert!(matches!(
        reasons[..],
        [AgentError::Stale {
            age_seconds: 601,
            ..
        }]
    ));
    assert!(ok(t as i64 - 300, Some(600)), "within the clock skew");
    let reasons = check_freshness(&at, None, &options(t as i64 - 301, Some(600)));
    assert!(matches!(reasons[..], [AgentError::FutureCheckpoint { .. }]));
}

#[test]
fn branch_names_become_full_refs() {
    assert_eq!(full_branch("main").unwrap(), "refs/heads/main");
    assert_eq!(full_branch("env/prod").unwrap(), "refs/heads/env/prod");
    assert_eq!(full_branch("refs/heads/main").unwrap(), "refs/heads/main");
    for bad in ["", "refs/tags/v1", "a..b", "bad name", "x.lock"] {
        assert!(full_branch(bad).is_err(), "{bad:?}");
    }
}

fn approval(first_run: bool, pinned_size: Option<u64>) -> Approval {
    let id = |n: u8| ObjectId::from_bytes_or_panic(&[n; 20]);
    Approval {
        branch: "refs/heads/main".into(),
        commit: id(2),
        tree: id(3),
        seq: 7,
        previous: (!first_run).then(|| id(2)),
        commits: Vec::new(),
        checkpoint: checkpoint_at(1_000),
        note: String::new(),
        tracking: "refs/tally/remotes/origin/main".into(),
        state: PathBuf::from("/clone/.git/tally/agent/main.json"),
        first_run,
        pinned_size,
        ledger_key: "SHA256:key".into(),
    }
}

#[test]
fn a_report_dates_the_checkpoint_by_the_given_clock_and_says_nothing_new() {
    let at = |seconds: i64| Timestamp::from_second(1_000 + seconds).unwrap();
    assert_eq!(
        approval(false, Some(1)).report(at(180)),
        [
            "nothing new: main is still at 0202020202020202020202020202020202020202 (ledger entry #7)",
            "checkpoint of 1 entry (no new entries since the last run), signed 3 min ago by ledger key SHA256:key",
        ]
    );
    assert!(approval(false, Some(1)).warnings().is_empty());
    let first = approval(true, None).report(at(7_200));
    assert_eq!(
        first[..2],
        [
            "approved main at 0202020202020202020202020202020202020202 (ledger entry #7)",
            "checkpoint of 1 entry, signed 2 h ago by ledger key SHA256:key",
        ]
    );
    assert!(first[3].starts_with("warning: first run: "), "{first:?}");
    assert_eq!(first[3..], approval(true, None).warnings());
}

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

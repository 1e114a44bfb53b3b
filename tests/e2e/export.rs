//! End-to-end tests of `tally export` and `tally export verify` (issue 5): a ledger built by
//! real pushes with the real `git` and `ssh-keygen`, exported, then checked by the verifier,
//! by standard tools (`sha256sum`, `ssh-keygen -Y`, Python's `csv` module), and after each kind
//! of tampering.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::common::*;

/// A file name the policy refuses, whose refusal reason then holds a comma and double quotes.
const AWKWARD: &str = "a,b \"c\".sh";

/// A guarded repository with a ledger of accepted and rejected entries on two branches.
struct Fixture {
    env: TestEnv,
    /// The pinned ledger key: `tally ledger key` output, as an auditor receives it.
    ledger_key: PathBuf,
}

impl Fixture {
    /// `tally init` (main and release protected), then: an accepted push to main; a refused
    /// push of a shell script with an awkward name; a refused push with two problems (so the
    /// reasons cell holds a line break); an accepted push creating release; another to main.
    fn new() -> Fixture {
        let env = TestEnv::new();
        let server = env.server(&alice_and_bob(), &["main", "release"]);
        let work = env.clone_as(&server, "work", &alice());
        work.commit("base")
            .file("app.yaml", "replicas: 1\n")
            .create();
        work.push_main_ok();

        let base = work.head();
        work.commit("smuggle").file(AWKWARD, "echo hi\n").create();
        work.push(&["origin", "HEAD:refs/heads/main"])
            .assert_refused();
        work.reset_hard(&base);
        work.commit("unsigned and smuggling")
            .file("deploy.sh", "rm -rf /\n")
            .unsigned()
            .create();
        work.push(&["origin", "HEAD:refs/heads/main"])
            .assert_refused();
        work.reset_hard(&base);

        work.commit("release")
            .file("release.yaml", "v: 1\n")
            .by(&bob())
            .create();
        work.push(&["origin", "HEAD:refs/heads/release"])
            .assert_accepted();
        work.reset_hard(&base);
        work.commit("scale")
            .file("app.yaml", "replicas: 2\n")
            .create();
        work.push_main_ok();

        let key = server.tally(&["ledger", "key"]);
        assert!(
            key.status.success(),
            "{}",
            String::from_utf8_lossy(&key.stderr)
        );
        let ledger_key = env.root().join("pinned-ledger.pub");
        std::fs::write(&ledger_key, &key.stdout).unwrap();
        Fixture { env, ledger_key }
    }

    fn server(&self) -> Server<'_> {
        self.env.server_at(self.env.root().join("server.git"))
    }

    /// `tally export --repo <server> --out <root>/<name> <args>`.
    fn export(&self, name: &str, args: &[&str]) -> (Output, PathBuf) {
        let out = self.env.root().join(name);
        let output = self
            .env
            .tally()
            .arg("export")
            .arg("--repo")
            .arg(&self.server().path)
            .arg("--out")
            .arg(&out)
            .args(args)
            .output()
            .unwrap();
        (output, out)
    }

    /// Exports, asserting success.
    fn export_ok(&self, name: &str, args: &[&str]) -> PathBuf {
        let (output, out) = self.export(name, args);
        assert!(
            output.status.success(),
            "tally export failed with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        out
    }

    /// `tally export verify <dir> --ledger-key <pinned> <args>`.
    fn verify(&self, dir: &Path, args: &[&str]) -> Output {
        self.env
            .tally()
            .args(["export", "verify"])
            .arg(dir)
            .arg("--ledger-key")
            .arg(&self.ledger_key)
            .args(args)
            .output()
            .unwrap()
    }

    fn assert_intact(&self, dir: &Path) -> String {
        let out = self.verify(dir, &[]);
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(
            out.status.success() && stdout.starts_with("bundle intact: "),
            "export verify exited {}\nstdout: {stdout}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Asserts `export verify` exits 1 with a problem line containing every one of `parts`.
    fn assert_detected(&self, dir: &Path, what: &str, parts: &[&str]) {
        let out = self.verify(dir, &[]);
        let stderr = unwrapped(&String::from_utf8_lossy(&out.stderr));
        assert_eq!(
            out.status.code(),
            Some(1),
            "{what}: export verify should exit 1; stderr:\n{stderr}"
        );
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with("tally: export verify: ")
                    && parts.iter().all(|p| l.contains(p))),
            "{what}: no problem line contains all of {parts:?}; stderr:\n{stderr}"
        );
    }

    /// The ledger's entries, oldest first, as `tally log --json` gives them.
    fn log(&self) -> Vec<Value> {
        let mut entries = self.server().log(&[]);
        entries.reverse();
        entries
    }

    fn run_in(&self, dir: &Path, program: &str, args: &[&str], stdin: Option<&Path>) -> Output {
        let mut cmd = Command::new(program);
        self.env.hermetic(&mut cmd);
        cmd.current_dir(dir).args(args);
        if let Some(path) = stdin {
            cmd.stdin(std::fs::File::open(path).unwrap());
        }
        cmd.output().unwrap()
    }
}

/// The rows of `entries.jsonl`.
fn jsonl(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("entries.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn seqs(rows: &[Value]) -> Vec<u64> {
    rows.iter().map(|r| r["seq"].as_u64().unwrap()).collect()
}

/// A copy of a bundle directory, to tamper with.
fn copy_bundle(from: &Path, to: &Path) -> PathBuf {
    std::fs::create_dir(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    to.to_owned()
}

/// The CSV cell values a row's JSON object calls for, in the documented column order.
fn csv_values(row: &Value) -> Vec<String> {
    let text = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let commits = row["commits"].as_array().unwrap();
    let joined = |field: &str| {
        commits
            .iter()
            .map(|c| text(&c[field]))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let reasons: Vec<String> = row["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(text)
        .collect();
    vec![
        text(&row["seq"]),
        text(&row["time"]),
        text(&row["kind"]),
        text(&row["ref"]),
        text(&row["old"]),
        text(&row["new"]),
        text(&row["new_tree"]),
        joined("commit"),
        joined("principal"),
        joined("fingerprint"),
        text(&row["pusher"]),
        text(&row["policy_digest"]),
        reasons.join("\n"),
        text(&row["aborts"]),
        text(&row["repository"]),
        text(&row["prev_hash"]),
        text(&row["leaf_hash"]),
    ]
}

/// `entries.csv` read by Python's standard `csv` module, as JSON: a list of records.
fn python_csv(fixture: &Fixture, dir: &Path) -> Vec<Vec<String>> {
    let out = fixture.run_in(
        dir,
        "python3",
        &[
            "-c",
            "import csv, json, sys\n\
             with open('entries.csv', newline='', encoding='utf-8') as f:\n\
             \x20   json.dump(list(csv.reader(f, strict=True)), sys.stdout)\n",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "python3 csv: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn round_trip_of_accepted_and_rejected_entries() {
    let fixture = Fixture::new();
    let dir = fixture.export_ok("bundle", &[]);
    let stdout = fixture.assert_intact(&dir);
    let log = fixture.log();
    assert!(
        stdout.contains(&format!(
            "{} rows (every entry) of {} entries",
            log.len(),
            log.len()
        )),
        "{stdout}"
    );

    // The JSON rows are exactly what `tally log --json` shows, oldest first.
    let rows = jsonl(&dir);
    assert_eq!(rows, log);
    let kinds: Vec<&str> = rows.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert!(
        kinds.contains(&"accepted") && kinds.contains(&"rejected"),
        "{kinds:?}"
    );
    let awkward = rows
        .iter()
        .flat_map(|r| r["reasons"].as_array().unwrap())
        .filter_map(Value::as_str)
        .find(|r| r.contains(AWKWARD))
        .expect("a refusal reason names the awkward file");
    assert!(awkward.contains("not allowed"), "{awkward}");

    // The bundle's layout.
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "MANIFEST",
            "MANIFEST.sig",
            "README",
            "allowed_signers",
            "checkpoint",
            "entries.csv",
            "entries.jsonl",
            "export.json",
            "ledger.bin",
            "ledger_key.pub",
            "policy.toml",
        ]
    );
    let server = fixture.server();
    assert_eq!(
        std::fs::read(dir.join("policy.toml")).unwrap(),
        std::fs::read(server.policy_path()).unwrap()
    );
    let description: Value =
        serde_json::from_slice(&std::fs::read(dir.join("export.json")).unwrap()).unwrap();
    assert_eq!(description["format"], "tally-export/1");
    assert_eq!(description["rows"], log.len());
    // The policy files' digest is the one the latest entries record.
    assert_eq!(
        description["policy_digest"],
        log.last().unwrap()["policy_digest"]
    );

    // JSON output.
    let out = fixture.verify(&dir, &["--json"]);
    assert!(out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["rows"], log.len());
    assert_eq!(report["problems"], Value::Array(vec![]));

    // The README tells the auditor how to check it.
    let readme = std::fs::read_to_string(dir.join("README")).unwrap();
    assert!(readme.contains("tally export verify"), "{readme}");
    assert!(readme.contains("sha256sum -c MANIFEST"), "{readme}");
}

#[test]
fn standard_tools_check_the_manifest_and_its_signature() {
    let fixture = Fixture::new();
    let dir = fixture.export_ok("bundle", &[]);

    let out = fixture.run_in(&dir, "sha256sum", &["-c", "--strict", "MANIFEST"], None);
    assert!(
        out.status.success(),
        "sha256sum -c: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(listed, 9, "every file but MANIFEST and MANIFEST.sig");

    let manifest = dir.join("MANIFEST");
    let out = fixture.run_in(
        &dir,
        "ssh-keygen",
        &[
            "-Y",
            "check-novalidate",
            "-n",
            "tally-export",
            "-s",
            "MANIFEST.sig",
        ],
        Some(&manifest),
    );
    assert!(
        out.status.success(),
        "ssh-keygen -Y check-novalidate: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Pinned to the ledger key, as the README shows.
    let pinned = std::fs::read_to_string(&fixture.ledger_key).unwrap();
    let signers = fixture.env.write(
        "ledger.signers",
        &format!("ledger namespaces=\"tally-export\" {pinned}"),
    );
    let verify = |dir: &Path| {
        fixture.run_in(
            dir,
            "ssh-keygen",
            &[
                "-Y",
                "verify",
                "-f",
                signers.to_str().unwrap(),
                "-I",
                "ledger",
                "-n",
                "tally-export",
                "-s",
                "MANIFEST.sig",
            ],
            Some(&dir.join("MANIFEST")),
        )
    };
    let out = verify(&dir);
    assert!(
        out.status.success(),
        "ssh-keygen -Y verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // And ssh-keygen rejects a changed manifest too.
    let changed = copy_bundle(&dir, &fixture.env.root().join("changed"));
    let text = std::fs::read_to_string(changed.join("MANIFEST")).unwrap();
    std::fs::write(changed.join("MANIFEST"), text.replacen("  ", "  x", 1)).unwrap();
    assert!(!verify(&changed).status.success());
}

#[test]
fn csv_parses_back_exactly_with_a_standard_reader() {
    let fixture = Fixture::new();
    let dir = fixture.export_ok("bundle", &[]);
    let records = python_csv(&fixture, &dir);
    assert_eq!(
        records[0],
        [
            "seq",
            "time",
            "kind",
            "ref",
            "old",
            "new",
            "new_tree",
            "commits",
            "principals",
            "fingerprints",
            "pusher",
            "policy_digest",
            "reasons",
            "aborts",
            "repository",
            "prev_hash",
            "leaf_hash"
        ]
    );
    let rows = jsonl(&dir);
    assert_eq!(records.len(), rows.len() + 1);
    for (record, row) in records[1..].iter().zip(&rows) {
        assert_eq!(record, &csv_values(row), "row for seq {}", row["seq"]);
    }
    // The awkward cells survived: a comma and quotes in one reason, line breaks between two.
    let reasons: Vec<&String> = records[1..].iter().map(|r| &r[12]).collect();
    assert!(reasons.iter().any(|r| r.contains(AWKWARD)), "{reasons:#?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains('\n') && r.contains("not signed")),
        "{reasons:#?}"
    );
    // RFC 4180 line ends outside the quoted cells.
    let bytes = std::fs::read(dir.join("entries.csv")).unwrap();
    assert!(bytes.ends_with(b"\r\n"));
}

#[test]
fn every_tampering_is_detected() {
    let fixture = Fixture::new();
    let dir = fixture.export_ok("bundle", &[]);
    fixture.assert_intact(&dir);
    let root = fixture.env.root();
    let mut n = 0;
    let mut case = |what: &str, tamper: &dyn Fn(&Path), parts: &[&str]| {
        n += 1;
        let copy = copy_bundle(&dir, &root.join(format!("tampered-{n}")));
        tamper(&copy);
        fixture.assert_detected(&copy, what, parts);
    };
    let edit = |path: PathBuf, f: &dyn Fn(String) -> String| {
        let text = std::fs::read_to_string(&path).unwrap();
        let changed = f(text.clone());
        assert_ne!(
            changed,
            text,
            "the tampering changed nothing in {}",
            path.display()
        );
        std::fs::write(path, changed).unwrap();
    };

    case(
        "a missing file",
        &|d| std::fs::remove_file(d.join("entries.csv")).unwrap(),
        &["entries.csv", "missing"],
    );
    case(
        "a truncated file",
        &|d| {
            let bytes = std::fs::read(d.join("ledger.bin")).unwrap();
            std::fs::write(d.join("ledger.bin"), &bytes[..bytes.len() - 7]).unwrap();
        },
        &["ledger.bin entry", "truncated"],
    );
    case(
        "a truncated file (rows)",
        &|d| {
            let bytes = std::fs::read(d.join("entries.jsonl")).unwrap();
            std::fs::write(d.join("entries.jsonl"), &bytes[..bytes.len() / 2]).unwrap();
        },
        &["entries.jsonl", "SHA-256"],
    );
    case(
        "an extra row",
        &|d| {
            edit(d.join("entries.jsonl"), &|t| {
                let last = t.lines().last().unwrap().to_owned();
                format!("{t}{last}\n")
            })
        },
        &["entries.jsonl row", "extra row"],
    );
    case(
        "a changed character",
        &|d| {
            edit(d.join("entries.csv"), &|t| {
                t.replacen("not allowed", "not alloved", 1)
            })
        },
        &["entries.csv row", "column reasons"],
    );
    case(
        "a changed character (hash)",
        &|d| {
            edit(d.join("entries.csv"), &|t| {
                t.replacen("not allowed", "not alloved", 1)
            })
        },
        &["entries.csv: SHA-256"],
    );
    case(
        "a reordered row",
        &|d| {
            edit(d.join("entries.jsonl"), &|t| {
                let mut lines: Vec<&str> = t.lines().collect();
                lines.swap(1, 2);
                lines.join("\n") + "\n"
            })
        },
        &["entries.jsonl row 2 (line 2)", "field \"seq\""],
    );
    case(
        "a changed manifest",
        &|d| {
            edit(d.join("MANIFEST"), &|t| {
                // Make MANIFEST agree with a changed file: the signature no longer does.
                let csv = std::fs::read(d.join("entries.csv")).unwrap();
                let mut changed = csv.clone();
                changed.extend_from_slice(b"9,x\r\n");
                std::fs::write(d.join("entries.csv"), &changed).unwrap();
                let old = sha256_hex(&csv);
                t.replace(&old, &sha256_hex(&changed))
            })
        },
        &["MANIFEST.sig", "does not verify"],
    );
    let mallory = keys().mallory.private.clone();
    let hermetic = fixture.env.hermetic_env();
    case(
        "a manifest signed by another key",
        &|d| {
            std::fs::remove_file(d.join("MANIFEST.sig")).unwrap();
            let mut cmd = Command::new("ssh-keygen");
            hermetic.apply(&mut cmd);
            run_ok(
                cmd.args(["-q", "-Y", "sign", "-n", "tally-export", "-f"])
                    .arg(&mallory)
                    .arg(d.join("MANIFEST")),
            );
        },
        &["MANIFEST.sig", "not by the pinned ledger key"],
    );
    case(
        "an extra file",
        &|d| std::fs::write(d.join("notes.txt"), "trust me\n").unwrap(),
        &["notes.txt", "extra file"],
    );
    case(
        "a changed policy file",
        &|d| {
            edit(d.join("allowed_signers"), &|t| {
                t.replacen("alice", "mallory", 1)
            })
        },
        &["allowed_signers: SHA-256"],
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

#[test]
fn a_bundle_checked_against_another_key_fails() {
    let fixture = Fixture::new();
    let dir = fixture.export_ok("bundle", &[]);
    let out = fixture
        .env
        .tally()
        .args(["export", "verify"])
        .arg(&dir)
        .arg("--ledger-key")
        .arg(&keys().mallory.public)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("MANIFEST.sig: signed by the key"),
        "{stderr}"
    );
    assert!(stderr.contains("checkpoint:"), "{stderr}");
}

#[test]
fn ranges_by_branch_and_by_time() {
    let fixture = Fixture::new();
    let log = fixture.log();

    // By branch: that branch's entries and the ledger-wide ones (tally init's policy entry).
    let dir = fixture.export_ok("release", &["--branch", "release"]);
    fixture.assert_intact(&dir);
    let rows = jsonl(&dir);
    let expected: Vec<u64> = log
        .iter()
        .filter(|e| e["ref"] == "refs/heads/release" || e["ref"] == "")
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs(&rows), expected);
    assert!(rows.iter().any(|r| r["ref"] == "refs/heads/release"));
    assert!(rows.iter().all(|r| r["ref"] != "refs/heads/main"));
    // The raw entries still cover the whole ledger.
    let description: Value =
        serde_json::from_slice(&std::fs::read(dir.join("export.json")).unwrap()).unwrap();
    assert_eq!(description["size"], log.len());
    assert_eq!(description["branch"], "refs/heads/release");

    // By time: from one entry's time (inclusive) to a later entry's time (exclusive).
    let time = |e: &Value| {
        e["time"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap()
    };
    let distinct: Vec<usize> = (1..log.len())
        .filter(|&i| time(&log[i]) != time(&log[i - 1]))
        .collect();
    assert!(distinct.len() >= 3, "entries need distinct times: {log:#?}");
    let (since, until) = (time(&log[distinct[0]]), time(&log[distinct[2]]));
    let dir = fixture.export_ok(
        "window",
        &["--since", &since.to_string(), "--until", &until.to_string()],
    );
    fixture.assert_intact(&dir);
    let expected: Vec<u64> = log
        .iter()
        .filter(|e| time(e) >= since && time(e) < until)
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(seqs(&jsonl(&dir)), expected);
    let records = python_csv(&fixture, &dir);
    assert_eq!(records.len(), expected.len() + 1);

    // Both at once, with an offset other than Z.
    let dir = fixture.export_ok(
        "both",
        &[
            "--branch",
            "refs/heads/main",
            "--since",
            &since.to_string(),
            "--until",
            "2099-01-01T02:00:00+02:00",
        ],
    );
    fixture.assert_intact(&dir);
    let rows = jsonl(&dir);
    let expected: Vec<u64> = log
        .iter()
        .filter(|e| time(e) >= since && (e["ref"] == "refs/heads/main" || e["ref"] == ""))
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs(&rows), expected);
}

#[test]
fn an_empty_range_verifies() {
    let fixture = Fixture::new();
    let dir = fixture.export_ok("empty", &["--since", "2099-01-01T00:00:00Z"]);
    let stdout = fixture.assert_intact(&dir);
    assert!(stdout.starts_with("bundle intact: 0 rows"), "{stdout}");
    assert_eq!(std::fs::read(dir.join("entries.jsonl")).unwrap(), b"");
    let records = python_csv(&fixture, &dir);
    assert_eq!(records.len(), 1, "only the header: {records:?}");
    // An extra row in an empty range is still caught.
    let full = fixture.export_ok("full", &[]);
    std::fs::copy(full.join("entries.jsonl"), dir.join("entries.jsonl")).unwrap();
    fixture.assert_detected(
        &dir,
        "rows outside the range",
        &["entries.jsonl row 1", "extra row"],
    );
}

#[test]
fn export_refuses_bad_usage_with_exit_2() {
    let fixture = Fixture::new();
    let busy = fixture.env.root().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("keep.txt"), "mine\n").unwrap();
    let (out, _) = fixture.export("busy", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not empty"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_dir(&busy).unwrap().count(), 1);

    // An existing empty directory is fine.
    std::fs::create_dir(fixture.env.root().join("empty")).unwrap();
    let dir = fixture.export_ok("empty", &[]);
    fixture.assert_intact(&dir);

    let (out, _) = fixture.export("t1", &["--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    let (out, _) = fixture.export(
        "t2",
        &[
            "--since",
            "2026-02-01T00:00:00Z",
            "--until",
            "2026-01-01T00:00:00Z",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(!fixture.env.root().join("t2").exists());

    let out = fixture.verify(&fixture.env.root().join("no-such-bundle"), &[]);
    assert_eq!(out.status.code(), Some(2));
}

/// A directory that holds no bundle at all (a wrong path, the repository, an empty directory)
/// is a usage problem, exit 2 with one line that says so; a bundle whose signed files were
/// removed is still a bundle found wanting, exit 1, each missing file named.
#[test]
fn a_directory_that_is_not_a_bundle_is_a_usage_error_and_a_gutted_bundle_is_refused() {
    let fixture = Fixture::new();
    let empty = fixture.env.root().join("not-a-bundle");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("notes.txt"), "hello\n").unwrap();
    for dir in [empty.as_path(), fixture.server().path.as_path()] {
        let out = fixture.verify(dir, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("not an export bundle"), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }

    let dir = fixture.export_ok("gutted", &[]);
    for name in ["MANIFEST", "MANIFEST.sig", "export.json", "checkpoint"] {
        std::fs::remove_file(dir.join(name)).unwrap();
    }
    fixture.assert_detected(
        &dir,
        "no MANIFEST",
        &["MANIFEST", "missing from the bundle"],
    );
}

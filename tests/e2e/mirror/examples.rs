//! The mirror's examples and documentation stay honest: every YAML file under `examples/`
//! parses as the push hook parses YAML, every `tally_mirror_*` metric they or
//! `docs/mirror.md` name is one the mirror exports, and every flag they give `tally mirror` is
//! one `tally mirror --help` lists. A renamed metric or flag breaks this test, not an alert or
//! a unit file in production.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use tally_mirror::metrics::Metrics;
use tally_mirror::status::{BranchStatus, Served, Status};
use tally_verify::syntax::{self, Format, Limits};

use crate::common::TALLY;

/// The repository's root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `dir`, recursively, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The example files.
fn examples() -> Vec<PathBuf> {
    let files = files_under(&root().join("examples"));
    assert!(
        files
            .iter()
            .any(|f| f.ends_with("systemd/tally-mirror.service")),
        "examples/systemd/tally-mirror.service is missing: {files:?}"
    );
    files
}

/// The examples, `docs/mirror.md` and `README.md`, with their text.
fn documents() -> Vec<(PathBuf, String)> {
    let mut files = examples();
    files.push(root().join("docs/mirror.md"));
    files.push(root().join("README.md"));
    files
        .into_iter()
        .map(|f| {
            let text =
                std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            (f, text)
        })
        .collect()
}

fn shown(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn every_yaml_example_parses_as_the_push_hook_parses_yaml() {
    let limits = Limits::default();
    let mut checked = 0;
    for file in examples() {
        let name = file.to_string_lossy().into_owned();
        let Some(format) = Format::for_path(&name) else {
            continue;
        };
        let bytes = std::fs::read(&file).unwrap();
        if let Err(e) = syntax::validate(format, &bytes, &limits) {
            panic!("{}: {e}", shown(&file));
        }
        if format == Format::Yaml {
            checked += 1;
        }
    }
    assert!(checked >= 6, "only {checked} YAML examples found");
}

/// The sample names of the mirror's exposition (Prometheus text format 0.0.4, what PromQL
/// queries), with one series made in every family, plus the names its `# TYPE` lines give
/// (a histogram's own name).
fn exported_metrics() -> BTreeSet<String> {
    let m = Metrics::new(&["refs/heads/main".to_owned()]);
    let branch = "refs/heads/main";
    m.cycle();
    m.fetched(0.5);
    m.served(branch, None, "0123456789abcdef0123456789abcdef01234567");
    m.success(branch, 1_700_000_000.0);
    m.failure(branch, &["fetch"], 1);
    m.ledger(3);
    m.upload_pack(1);
    m.git_request("upload_pack", 200);
    m.webhook(202);
    let status = Status {
        name: "deploy.git".to_owned(),
        branches: vec![BranchStatus {
            branch: branch.to_owned(),
            served: Some(Served {
                commit: gix::ObjectId::null(gix::hash::Kind::Sha1),
                seq: 2,
                checkpoint_size: 3,
                checkpoint_time: 1_700_000_000,
            }),
            last_attempt: None,
            last_success: None,
            last_error: None,
            consecutive_failures: 0,
        }],
        ledger_entries: Some(3),
        started: jiff::Timestamp::UNIX_EPOCH,
        cycles: 1,
    };
    let text = m.encode(&status, jiff::Timestamp::now(), false);
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let name = if let Some(rest) = line.strip_prefix("# TYPE ") {
            rest.split(' ').next()
        } else if line.starts_with('#') {
            None
        } else {
            line.split(['{', ' ']).next()
        };
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            names.insert(name.to_owned());
        }
    }
    names
}

/// Every `tally_mirror_*` name in `text`.
fn metric_names(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("tally_mirror_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        out.push(&tail[..end]);
        rest = &tail[end..];
    }
    out
}

#[test]
fn every_metric_the_examples_and_the_docs_name_is_exported() {
    let exported = exported_metrics();
    let mut named = 0;
    for (file, text) in documents() {
        for name in metric_names(&text) {
            named += 1;
            assert!(
                exported.contains(name),
                "{} names {name}, which tally mirror does not export; it exports:\n{}",
                shown(&file),
                exported.iter().cloned().collect::<Vec<_>>().join("\n")
            );
        }
    }
    assert!(named >= 10, "only {named} metric names found");
    // And the other way round: docs/mirror.md describes every metric.
    let doc = std::fs::read_to_string(root().join("docs/mirror.md")).unwrap();
    let documented: BTreeSet<&str> = metric_names(&doc).into_iter().collect();
    for name in &exported {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| exported.contains(*f)))
            .unwrap_or(name);
        assert!(
            documented.contains(family),
            "docs/mirror.md does not describe the metric {family}"
        );
    }
}

/// Every `--flag` in `text` (a word that starts with two dashes and a lowercase letter).
fn flags_in(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 2 < bytes.len() {
        let starts = bytes[i] == b'-'
            && bytes[i + 1] == b'-'
            && bytes[i + 2].is_ascii_lowercase()
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || b"-_".contains(&bytes[i - 1])));
        if starts {
            let end = bytes[i + 2..]
                .iter()
                .position(|b| !(b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-'))
                .map_or(bytes.len(), |p| i + 2 + p);
            out.push(text[i..end].to_owned());
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

/// The flags `tally mirror --help` lists.
fn mirror_flags() -> BTreeSet<String> {
    let out = Command::new(TALLY)
        .args(["mirror", "--help"])
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success(), "tally mirror --help failed");
    flags_in(&String::from_utf8(out.stdout).unwrap())
        .into_iter()
        .collect()
}

/// The command lines that run `tally mirror` in a Markdown file: in a code block, from
/// `tally mirror` to the end of the line (continued by a trailing `\`); in running text, to
/// the end of the inline code span.
fn markdown_mirror_commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            i += 1;
            continue;
        }
        let mut search = 0;
        while let Some(at) = line[search..].find("tally mirror") {
            let at = search + at;
            let rest = &line[at..];
            if fenced {
                let mut command = rest.to_owned();
                let mut j = i;
                while command.trim_end().ends_with('\\') && j + 1 < lines.len() {
                    j += 1;
                    command.push('\n');
                    command.push_str(lines[j]);
                }
                out.push(command);
            } else if line[..at].matches('`').count() % 2 == 1 {
                out.push(rest.split('`').next().unwrap_or(rest).to_owned());
            }
            search = at + "tally mirror".len();
        }
        i += 1;
    }
    out
}

#[test]
fn every_flag_given_to_tally_mirror_is_one_it_takes() {
    let known = mirror_flags();
    for flag in ["--upstream", "--dir", "--ledger-key", "--allowed-signers"] {
        assert!(known.contains(flag), "tally mirror --help lacks {flag}");
    }
    let mut given = 0;
    for (file, text) in documents() {
        let commands: Vec<String> = if file.extension().is_some_and(|e| e == "md") {
            markdown_mirror_commands(&text)
        } else {
            // The examples run no other command with long options: every line that is not
            // a comment counts (a YAML args list, a unit's ExecStart).
            text.lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .map(str::to_owned)
                .collect()
        };
        for command in commands {
            for flag in flags_in(&command) {
                given += 1;
                assert!(
                    known.contains(&flag),
                    "{} gives tally mirror {flag}, which `tally mirror --help` does not list ({})",
                    shown(&file),
                    known.iter().cloned().collect::<Vec<_>>().join(" ")
                );
            }
        }
    }
    assert!(given >= 20, "only {given} flags found");
    // And the other way round: docs/mirror.md describes every flag.
    let doc = std::fs::read_to_string(root().join("docs/mirror.md")).unwrap();
    for flag in known
        .iter()
        .filter(|f| !["--help", "--version"].contains(&f.as_str()))
    {
        assert!(
            doc.contains(&format!("`{flag}")),
            "docs/mirror.md does not describe {flag}"
        );
    }
}

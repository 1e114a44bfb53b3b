//! End-to-end tests of `tally init`: what it writes, that it is idempotent, and that it refuses
//! what it must not touch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::*;

/// Every file under `dir`, with its bytes and mode.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                out.insert(
                    entry.path(),
                    (
                        std::fs::read(entry.path()).unwrap(),
                        meta.permissions().mode(),
                    ),
                );
            }
        }
    }
    out
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn init_writes_policy_signers_and_a_hook_running_tally_by_absolute_path() {
    let env = TestEnv::new();
    let repo = env.bare_repo("server");
    let signers = env.write("signers", &alice_and_bob().text());
    let out = env.tally_init([
        repo.as_os_str(),
        "--allowed-signers".as_ref(),
        signers.as_os_str(),
        "--branch".as_ref(),
        "main".as_ref(),
        "--branch".as_ref(),
        "release/*".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("created"), "{text}");
    assert!(
        text.contains("protected branches: main, release/*"),
        "{text}"
    );
    assert!(text.contains("git config gpg.format ssh"), "{text}");

    let policy = std::fs::read_to_string(repo.join("tally/policy.toml")).unwrap();
    assert!(
        policy.contains("protected = [\"main\", \"release/*\"]"),
        "{policy}"
    );
    assert_eq!(
        std::fs::read_to_string(repo.join("tally/allowed_signers")).unwrap(),
        alice_and_bob().text()
    );
    // The kernel starts tally itself from the `#!` line: no shell in between.
    let tally = std::fs::canonicalize(TALLY).unwrap();
    for name in ["pre-receive", "reference-transaction"] {
        let hook = std::fs::read_to_string(repo.join("hooks").join(name)).unwrap();
        assert!(
            hook.starts_with(&format!("#!{} hook\n", tally.display())),
            "{hook}"
        );
        assert!(hook.contains("# Installed by `tally init`"), "{hook}");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(repo.join("hooks/pre-receive"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
}

#[test]
fn init_is_idempotent() {
    let env = TestEnv::new();
    let repo = env.bare_repo("server");
    let signers = env.write("signers", &alice_and_bob().text());
    let args = [
        repo.as_os_str(),
        "--allowed-signers".as_ref(),
        signers.as_os_str(),
    ];
    let first = env.tally_init(args);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let before = snapshot(&repo);
    let second = env.tally_init(args);
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    let text = stdout(&second);
    assert!(!text.contains("created"), "{text}");
    assert!(!text.contains("updated"), "{text}");
    for line in text
        .lines()
        .filter(|l| l.contains("hook ") || l.contains("allowed signers "))
    {
        assert!(
            line.ends_with("unchanged") || line.contains("unchanged ("),
            "{line}"
        );
    }
    assert!(text.contains("unchanged"), "{text}");
    assert_eq!(snapshot(&repo), before, "second tally init changed files");
}

#[test]
fn init_refuses_to_overwrite_a_foreign_hook_without_force() {
    let env = TestEnv::new();
    let repo = env.bare_repo("server");
    let signers = env.write("signers", &alice_and_bob().text());
    let hook = repo.join("hooks/pre-receive");
    let foreign = "#!/bin/sh\n# site policy\nexit 0\n";
    std::fs::write(&hook, foreign).unwrap();
    let out = env.tally_init([
        repo.as_os_str(),
        "--allowed-signers".as_ref(),
        signers.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("hooks/pre-receive"), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(&hook).unwrap(), foreign);
    assert!(
        !repo.join("tally/policy.toml").exists(),
        "nothing may be written when init refuses"
    );

    let out = env.tally_init([
        repo.as_os_str(),
        "--allowed-signers".as_ref(),
        signers.as_os_str(),
        "--force".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let replaced = std::fs::read_to_string(&hook).unwrap();
    assert!(
        replaced.contains("# Installed by `tally init`"),
        "{replaced}"
    );
    assert!(replaced.contains(" hook"), "{replaced}");
    assert!(repo.join("tally/policy.toml").exists());
}

/// A foreign `update` hook is where platforms keep their access control (gitolite's is a
/// symlink to its own): init keeps it, even with `--force`, says so and how to chain tally's;
/// the push is still guarded (by reference-transaction) and the foreign hook still runs.
#[test]
fn init_keeps_a_foreign_update_hook_even_with_force() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let platform = env.write(
        "platform-update",
        "#!/bin/sh\necho \"platform update hook saw $1\" >&2\nexit 0\n",
    );
    std::fs::set_permissions(&platform, std::fs::Permissions::from_mode(0o755)).unwrap();
    let hook = server.path.join("hooks/update");
    std::fs::remove_file(&hook).unwrap();
    std::os::unix::fs::symlink(&platform, &hook).unwrap();
    let signers = env.write("signers", &alice_and_bob().text());
    for force in [false, true] {
        let mut args = vec![
            server.path.as_os_str(),
            "--allowed-signers".as_ref(),
            signers.as_os_str(),
        ];
        if force {
            args.push("--force".as_ref());
        }
        let out = env.tally_init(args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(
            text.lines()
                .any(|l| l.contains("hooks/update: kept, it is not tally's")
                    && l.contains("hook update \"$1\" \"$2\" \"$3\"")),
            "{text}"
        );
        assert_eq!(std::fs::read_link(&hook).unwrap(), platform);
    }
    let work = env.clone_as(&server, "work", &alice());
    work.commit("base").file("base.yaml", "a: 1\n").create();
    let push = work.push(&["origin", "HEAD:main"]);
    assert_eq!(push.code, 0, "{}", push.stderr);
    assert!(
        push.stderr
            .contains("platform update hook saw refs/heads/main"),
        "{}",
        push.stderr
    );
    work.commit("unsigned")
        .file("c.yaml", "c: 1\n")
        .unsigned()
        .create();
    let push = work.push(&["origin", "HEAD:main"]);
    assert_eq!(push.code, 1, "{}", push.stderr);
}

#[test]
fn init_refuses_a_non_bare_repository() {
    let env = TestEnv::new();
    let work = env.root().join("work");
    run_ok(env.git(env.root()).args(["init", "-q"]).arg(&work));
    let signers = env.write("signers", &alice_and_bob().text());
    let out = env.tally_init([
        work.as_os_str(),
        "--allowed-signers".as_ref(),
        signers.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("is not a bare git repository"), "{err}");
    assert!(err.contains("git init --bare"), "{err}");
    assert!(!work.join(".git/hooks/pre-receive").exists());
}

#[test]
fn init_refuses_a_missing_repository() {
    let env = TestEnv::new();
    let missing = env.root().join("nowhere.git");
    let signers = env.write("signers", &alice_and_bob().text());
    let out = env.tally_init([
        missing.as_os_str(),
        "--allowed-signers".as_ref(),
        signers.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(&missing.display().to_string()), "{err}");
    assert!(err.contains("git init --bare"), "{err}");
    assert!(!missing.exists());
}

#[test]
fn init_refuses_malformed_allowed_signers_naming_the_line() {
    let env = TestEnv::new();
    let repo = env.bare_repo("server");
    let text = AllowedSigners::new()
        .signer("alice@example.com", &keys().alice)
        .line("bob@example.com ssh-ed25519 not-base64!!")
        .text();
    let signers = env.write("signers", &text);
    let out = env.tally_init([
        repo.as_os_str(),
        "--allowed-signers".as_ref(),
        signers.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains(&format!("{}:2: ", signers.display())), "{err}");
    assert!(!repo.join("hooks/pre-receive").exists());
}

#[test]
fn init_refuses_an_empty_allowed_signers_file() {
    let env = TestEnv::new();
    let repo = env.bare_repo("server");
    let signers = env.write("signers", "# nobody yet\n");
    let out = env.tally_init([
        repo.as_os_str(),
        "--allowed-signers".as_ref(),
        signers.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("lists no signers"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn init_refuses_a_missing_allowed_signers_file() {
    let env = TestEnv::new();
    let repo = env.bare_repo("server");
    let missing = env.root().join("no_such_signers");
    let out = env.tally_init([
        repo.as_os_str(),
        "--allowed-signers".as_ref(),
        missing.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no_such_signers"), "{}", stderr(&out));
}

#[test]
fn init_refuses_an_invalid_branch_name() {
    let env = TestEnv::new();
    let repo = env.bare_repo("server");
    let signers = env.write("signers", &alice_and_bob().text());
    let out = env.tally_init([
        repo.as_os_str(),
        "--allowed-signers".as_ref(),
        signers.as_os_str(),
        "--branch".as_ref(),
        "refs/heads/main".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("refs/heads/main"), "{}", stderr(&out));
}

// ---------------------------------------------------------------------------------------------
// How the installed hooks start tally

/// A hard link (or copy) of the tally binary at `dir/tally`, so a test can install hooks that
/// run it and then move or delete it without touching the real one.
fn tally_copy(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let copy = dir.join("tally");
    if std::fs::hard_link(TALLY, &copy).is_err() {
        std::fs::copy(TALLY, &copy).unwrap();
    }
    copy
}

/// `tally init` run by the given tally binary (the hooks run the binary that installed them).
fn init_with(env: &TestEnv, tally: &Path, repo: &Path, signers: &Path) {
    let mut cmd = std::process::Command::new(tally);
    env.hermetic(&mut cmd);
    run_ok(
        cmd.current_dir(env.root())
            .arg("init")
            .arg(repo)
            .arg("--allowed-signers")
            .arg(signers),
    );
}

/// A path the `#!` line cannot carry (here: a space) gets the shell form, which still guards
/// the branch and feeds the ledger.
#[test]
fn a_tally_path_with_a_space_gets_a_shell_hook_that_works_the_same() {
    let env = TestEnv::new();
    let tally = tally_copy(&env.root().join("tools dir"));
    let repo = env.bare_repo("server");
    let signers = env.write("signers", &alice_and_bob().text());
    init_with(&env, &tally, &repo, &signers);
    let canonical = std::fs::canonicalize(&tally).unwrap();
    for name in ["pre-receive", "reference-transaction"] {
        let hook = std::fs::read_to_string(repo.join("hooks").join(name)).unwrap();
        assert!(hook.starts_with("#!/bin/sh\n"), "{hook}");
        assert!(
            hook.contains(&format!(
                "exec '{}' hook {name} \"$@\"",
                canonical.display()
            )),
            "{hook}"
        );
    }
    let server = env.server_at(repo);
    let work = env.clone_as(&server, "work", &alice());
    work.commit("base").file("base.yaml", "a: 1\n").create();
    work.push_main_ok();
    work.commit("unsigned")
        .file("b.yaml", "b: 1\n")
        .unsigned()
        .create();
    work.push(&["origin", "HEAD:refs/heads/main"])
        .assert_refused();
    server.assert_ledger_intact();
    let kinds: Vec<String> = server
        .log(&[])
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds[..2], ["rejected", "accepted"], "{kinds:?}");
}

/// Fail closed: hooks whose tally binary is gone refuse every push to any branch and every
/// ref update, in both the `#!` and the shell form; nothing moves.
#[test]
fn hooks_whose_tally_binary_is_gone_refuse_pushes_and_ref_updates() {
    for dir in ["bin", "tools dir"] {
        let env = TestEnv::new();
        let tally = tally_copy(&env.root().join(dir));
        let repo = env.bare_repo("server");
        let signers = env.write("signers", &alice_and_bob().text());
        init_with(&env, &tally, &repo, &signers);
        let server = env.server_at(repo);
        let work = env.clone_as(&server, "work", &alice());
        let base = work.commit("base").file("base.yaml", "a: 1\n").create();
        work.push_main_ok();
        std::fs::remove_file(&tally).unwrap();
        let next = work.commit("next").file("b.yaml", "b: 1\n").create();
        let push = work.push(&["origin", "HEAD:refs/heads/main"]);
        assert_ne!(push.code, 0, "{dir}: {}", push.stderr);
        assert_eq!(
            server.branch("main").as_deref(),
            Some(base.as_str()),
            "{dir}"
        );
        let out = server
            .git()
            .args(["update-ref", "refs/heads/main", &next, &base])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{dir}: {out:?}");
        assert_eq!(
            server.branch("main").as_deref(),
            Some(base.as_str()),
            "{dir}"
        );
    }
}

/// The `#!` form hands tally the hook file's path; tally takes the hook from the file name,
/// or from a `<hook>.d/` directory (Gitea, GitLab), and refuses a name it cannot place.
#[test]
fn tally_hook_takes_the_hook_from_the_file_path() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = work.commit("base").file("base.yaml", "a: 1\n").create();
    work.push_main_ok();
    let bad = work
        .commit("unsigned")
        .file("b.yaml", "b: 1\n")
        .unsigned()
        .create();
    work.push(&["origin", "HEAD:refs/heads/incoming"])
        .assert_accepted();
    let input = format!("{base} {bad} refs/heads/main\n");
    let hook = |path: &Path, extra: &[&str]| {
        let mut cmd = env.tally();
        cmd.arg("hook")
            .arg(path)
            .args(extra)
            .env("GIT_DIR", &server.path)
            .current_dir(&server.path);
        run_with_stdin(&mut cmd, input.as_bytes())
    };
    for path in [
        server.path.join("hooks/pre-receive"),
        server.path.join("hooks/pre-receive.d/tally"),
    ] {
        let out = hook(&path, &[]);
        assert_eq!(out.status.code(), Some(1), "{}: {out:?}", path.display());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("commit is not signed"),
            "{}: {err}",
            path.display()
        );
    }
    let out = hook(&server.path.join("hooks/post-update"), &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot tell which hook"),
        "{out:?}"
    );
    // `committed` has nothing left to do: it ends at once and changes nothing.
    let before = server.log(&[]).len();
    for state in ["committed", "preparing"] {
        let out = hook(&server.path.join("hooks/reference-transaction"), &[state]);
        assert_eq!(out.status.code(), Some(0), "{state}: {out:?}");
    }
    // `prepared` through the path form refuses the move pre-receive never judged.
    let out = hook(
        &server.path.join("hooks/reference-transaction"),
        &["prepared"],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let log = server.log(&[]);
    assert_eq!(log.len(), before + 1, "only prepared appends: {log:?}");
    assert_eq!(log[0]["kind"].as_str(), Some("rejected"));
    assert_eq!(server.branch("main").as_deref(), Some(base.as_str()));
}

/// Builds `tally-shim` (the `shim/` crate, which is not a workspace member) once per run of
/// this test binary, the way `scripts/install.sh` does; returns its path.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn shim_binary() -> &'static Path {
    static SHIM: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    SHIM.get_or_init(|| {
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("shim");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = std::process::Command::new(cargo)
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("shim"))
            .args(["build", "--release", "--locked", "--quiet", "--target-dir"])
            .arg(&target)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "building tally-shim failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        target.join("release").join("tally-shim")
    })
}

/// A directory holding a copy of tally with `tally-shim` beside it, as `scripts/install.sh`
/// installs them; returns the tally path.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn tally_and_shim(dir: &Path) -> PathBuf {
    let tally = tally_copy(dir);
    std::fs::copy(shim_binary(), dir.join("tally-shim")).unwrap();
    tally
}

/// Runs a hook file as git does: from the repository, with `input` on stdin.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn run_hook_file(
    env: &TestEnv,
    repo: &Path,
    hook: &str,
    args: &[&str],
    input: &[u8],
) -> std::process::Output {
    let mut cmd = std::process::Command::new(repo.join("hooks").join(hook));
    env.hermetic(&mut cmd);
    cmd.args(args).current_dir(repo).env("GIT_DIR", repo);
    run_with_stdin(&mut cmd, input)
}

/// With `tally-shim` installed beside tally, `tally init` makes it the interpreter of the
/// reference-transaction hook (not of pre-receive), and everything the hooks guard works as
/// before: accepted pushes land and are recorded, refused ones are refused and recorded,
/// and a server-side `git update-ref` goes through the shim to tally and is refused.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[test]
fn with_tally_shim_beside_tally_the_hooks_guard_the_branch_as_before() {
    let env = TestEnv::new();
    let tally = tally_and_shim(&env.root().join("bin"));
    let bin = std::fs::canonicalize(env.root().join("bin")).unwrap();
    let repo = env.bare_repo("server");
    let signers = env.write("signers", &alice_and_bob().text());
    let mut cmd = std::process::Command::new(&tally);
    env.hermetic(&mut cmd);
    let out = run_ok(
        cmd.current_dir(env.root())
            .arg("init")
            .arg(&repo)
            .arg("--allowed-signers")
            .arg(&signers),
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("reference-transaction: created (through tally-shim)"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("pre-receive: created (through"),
        "{stdout}"
    );
    let first_line = |name: &str| {
        let text = std::fs::read_to_string(repo.join("hooks").join(name)).unwrap();
        text.lines().next().unwrap().to_owned()
    };
    assert_eq!(
        first_line("reference-transaction"),
        format!("#!{0}/tally-shim {0}/tally", bin.display())
    );
    assert_eq!(
        first_line("pre-receive"),
        format!("#!{}/tally hook", bin.display())
    );

    let server = env.server_at(repo);
    let work = env.clone_as(&server, "work", &alice());
    let base = work.commit("base").file("base.yaml", "a: 1\n").create();
    work.push_main_ok();
    let unsigned = work
        .commit("unsigned")
        .file("b.yaml", "b: 1\n")
        .unsigned()
        .create();
    let push = work.push(&["origin", "HEAD:refs/heads/main"]);
    push.assert_refused();
    assert!(
        push.violations()
            .iter()
            .any(|v| v.contains("is not signed")),
        "{push:?}"
    );
    // A signed commit the server has, on a branch tally does not guard.
    let side = work.commit("side").file("side.yaml", "side: 1\n").create();
    work.push(&["origin", "HEAD:refs/heads/side"])
        .assert_accepted();
    let out = server
        .git()
        .args(["update-ref", "refs/heads/main", &side, &base])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("moved outside an accepted push"),
        "{out:?}"
    );
    assert_eq!(server.branch("main").as_deref(), Some(base.as_str()));
    let kinds: Vec<_> = server
        .log(&[])
        .iter()
        .map(|e| (e["kind"].as_str().unwrap().to_owned(), e["new"].clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("rejected".to_owned(), serde_json::json!(side)),
            ("rejected".to_owned(), serde_json::json!(unsigned)),
            ("accepted".to_owned(), serde_json::json!(base)),
            ("policy-change".to_owned(), serde_json::Value::Null),
        ],
        "newest first: the update-ref, the refused push, the accepted push, the first policy"
    );
    server.assert_ledger_intact();
}

/// The shim ends `committed` and `preparing` itself, so they succeed even with tally gone;
/// every state with work goes to tally, so with tally gone they fail, naming the path, and a
/// server-side ref move is refused: the shim fails closed.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[test]
fn tally_shim_ends_the_idle_states_itself_and_fails_closed_without_tally() {
    let env = TestEnv::new();
    let tally = tally_and_shim(&env.root().join("bin"));
    let repo = env.bare_repo("server");
    let signers = env.write("signers", &alice_and_bob().text());
    init_with(&env, &tally, &repo, &signers);
    let server = env.server_at(repo.clone());
    let work = env.clone_as(&server, "work", &alice());
    let base = work.commit("base").file("base.yaml", "a: 1\n").create();
    work.push_main_ok();
    let next = work.commit("next").file("b.yaml", "b: 1\n").create();
    work.push(&["origin", "HEAD:refs/heads/side"])
        .assert_accepted();
    std::fs::remove_file(&tally).unwrap();

    let line = format!("{base} {next} refs/heads/main\n");
    for state in ["committed", "preparing"] {
        let out = run_hook_file(
            &env,
            &repo,
            "reference-transaction",
            &[state],
            line.as_bytes(),
        );
        assert!(out.status.success(), "{state}: {out:?}");
        assert!(out.stderr.is_empty(), "{state}: {out:?}");
    }
    let gone = format!(
        "cannot start tally at {} (no such file, errno 2)",
        std::fs::canonicalize(env.root().join("bin"))
            .unwrap()
            .join("tally")
            .display()
    );
    let out = run_hook_file(
        &env,
        &repo,
        "reference-transaction",
        &["prepared"],
        line.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&gone),
        "{out:?}"
    );

    // Only a reference-transaction hook file's idle states end in the shim: the Gitea and
    // GitLab `.d/` layout counts, another hook's file does not (it goes to tally, which is
    // gone), and neither does any other state.
    let shim = |hook_file: &str, state: &str| {
        let mut cmd = std::process::Command::new(env.root().join("bin").join("tally-shim"));
        env.hermetic(&mut cmd);
        cmd.arg(&tally).arg(repo.join(hook_file)).arg(state);
        run_with_stdin(&mut cmd, line.as_bytes())
    };
    let out = shim("hooks/reference-transaction.d/tally", "committed");
    assert!(out.status.success(), "{out:?}");
    for (hook_file, state) in [
        ("hooks/pre-receive", "committed"),
        ("hooks/reference-transaction", "aborted"),
        ("hooks/reference-transaction", "Committed"),
        ("hooks/reference-transaction-x", "committed"),
    ] {
        let out = shim(hook_file, state);
        assert_eq!(out.status.code(), Some(1), "{hook_file} {state}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("cannot start tally at"),
            "{hook_file} {state}: {out:?}"
        );
    }
    let out = std::process::Command::new(env.root().join("bin").join("tally-shim"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("it is not run by hand"),
        "{out:?}"
    );

    let out = server
        .git()
        .args(["update-ref", "refs/heads/main", &next, &base])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&gone),
        "{out:?}"
    );
    let push = work.push(&["origin", "HEAD:refs/heads/main"]);
    assert_ne!(push.code, 0, "{}", push.stderr);
    assert_eq!(server.branch("main").as_deref(), Some(base.as_str()));
    assert_eq!(server.branch("side").as_deref(), Some(next.as_str()));
}

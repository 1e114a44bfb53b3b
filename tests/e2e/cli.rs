//! The command line as a whole: `--version`, `--help` on every command, completions, manual
//! pages, and the exit-status table that `--help` and the README share.

use std::process::Stdio;

use crate::common::*;

fn run(env: &TestEnv, args: &[&str]) -> std::process::Output {
    env.tally()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn version_names_the_commit_and_the_build_date() {
    let env = TestEnv::new();
    let out = run(&env, &["--version"]);
    assert!(out.status.success());
    let text = stdout(&out);
    let rest = text
        .strip_prefix(&format!("tally {} (", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|| panic!("{text}"));
    // A git checkout names its commit; a source tarball says so.
    assert!(
        rest.starts_with("commit ") || rest.starts_with("unknown commit"),
        "{text}"
    );
    let date = rest
        .split(", built ")
        .nth(1)
        .and_then(|d| d.strip_suffix(")\n"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        date.parse::<jiff::civil::Date>().is_ok() || date == "unknown date",
        "{text}"
    );
    // Every subcommand names the same build.
    assert_eq!(
        stdout(&run(&env, &["log", "--version"])),
        text.replacen("tally ", "tally-log ", 1)
    );
}

/// Every command and subcommand, as the manual pages name them (`tally-ledger-verify.1`
/// is `tally ledger verify`), answers `--help` with its usage and exit status 0, the hooks
/// included, whose fast path would otherwise take `--help` for git's arguments.
#[test]
fn every_command_answers_help() {
    let env = TestEnv::new();
    let dir = env.root().join("man");
    let out = run(&env, &["man", "--out", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    pages.sort();
    for expected in [
        "tally.1",
        "tally-init.1",
        "tally-log.1",
        "tally-ledger-verify.1",
        "tally-export-verify.1",
        "tally-verify.1",
        "tally-pull.1",
        "tally-hook-pre-receive.1",
        "tally-hook-update.1",
        "tally-hook-reference-transaction.1",
        "tally-hook-post-receive.1",
        "tally-completions.1",
    ] {
        assert!(pages.iter().any(|p| p == expected), "{expected}: {pages:?}");
    }
    for page in &pages {
        let words: Vec<&str> = page.strip_suffix(".1").unwrap().split('-').collect();
        // Page names join words with '-'; the hook names have their own dashes.
        let mut args: Vec<String> = Vec::new();
        let mut i = 1;
        while i < words.len() {
            let rest = words[i..].join("-");
            let word = ["pre-receive", "post-receive", "reference-transaction"]
                .into_iter()
                .find(|h| rest.starts_with(h))
                .map_or_else(|| words[i].to_owned(), str::to_owned);
            i += word.split('-').count();
            args.push(word);
        }
        for help in ["--help", "-h"] {
            let mut argv: Vec<&str> = args.iter().map(String::as_str).collect();
            argv.push(help);
            let out = run(&env, &argv);
            let text = stdout(&out);
            assert!(out.status.success(), "tally {argv:?}: {out:?}");
            let usage = format!("Usage: tally {}", args.join(" "));
            assert!(text.contains(usage.trim_end()), "tally {argv:?}:\n{text}");
            // The commands people run say what their exit statuses mean.
            if args.len() == 1
                && [
                    "init",
                    "uninstall",
                    "log",
                    "ledger",
                    "policy",
                    "export",
                    "verify",
                    "pull",
                ]
                .contains(&args[0].as_str())
            {
                assert!(text.contains("Exit status:"), "tally {argv:?}:\n{text}");
            }
        }
    }
}

#[test]
fn the_reference_transaction_help_says_what_tally_does_in_each_state() {
    let env = TestEnv::new();
    for argv in [
        &["hook", "reference-transaction", "--help"][..],
        &["hook", "reference-transaction", "prepared", "--help"],
    ] {
        let out = run(&env, argv);
        assert!(out.status.success(), "{out:?}");
        let text = stdout(&out);
        for state in ["preparing:", "prepared:", "committed:", "aborted:"] {
            assert!(text.contains(state), "{state}\n{text}");
        }
    }
    insta::assert_snapshot!(stdout(&run(
        &env,
        &["hook", "reference-transaction", "--help"]
    )));
}

#[test]
fn help_lists_the_commands_and_the_exit_statuses() {
    let env = TestEnv::new();
    let out = run(&env, &["--help"]);
    assert!(out.status.success());
    insta::assert_snapshot!(stdout(&out));
}

/// The README's exit-status table is the one `--help` prints, line for line.
#[test]
fn the_readme_states_the_exit_statuses_of_help() {
    let env = TestEnv::new();
    let help = stdout(&run(&env, &["--help"]));
    let table = &help[help.find("Exit status:").unwrap()..];
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(
        readme.contains(table.trim_end()),
        "README.md must hold, verbatim:\n{table}"
    );
}

#[test]
fn completions_cover_the_commands_and_refuse_unknown_shells() {
    let env = TestEnv::new();
    for (shell, marker) in [
        ("bash", "_tally()"),
        ("zsh", "#compdef tally"),
        ("fish", "complete -c tally"),
    ] {
        let out = run(&env, &["completions", shell]);
        assert!(out.status.success(), "{shell}: {out:?}");
        let text = stdout(&out);
        assert!(text.contains(marker), "{shell}");
        for command in ["init", "verify", "pull", "ledger", "export"] {
            assert!(text.contains(command), "{shell}: {command}");
        }
    }
    let out = run(&env, &["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'tcsh'"));
}

#[test]
fn the_manual_page_renders_and_says_the_exit_statuses() {
    let env = TestEnv::new();
    let out = run(&env, &["man"]);
    assert!(out.status.success());
    let roff = stdout(&out);
    assert!(roff.contains(".TH tally 1"), "{roff}");
    assert!(roff.contains("Exit status:"));
    // A directory that cannot be created is a setup problem, said with its path.
    let file = env.root().join("file");
    std::fs::write(&file, "x").unwrap();
    let out = run(&env, &["man", "--out", file.join("sub").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("file/sub"));
}

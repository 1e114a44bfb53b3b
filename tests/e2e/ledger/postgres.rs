//! The ledger in PostgreSQL (issue 15): this whole suite run again with every ledger in a
//! PostgreSQL database, tampering with the database's rows, `tally ledger migrate` both ways,
//! what `tally init --ledger` says when it cannot, and pushes refused when the database fails.
//!
//! Every test here starts its own [`tally_pgtest::Server`]; the child run of the suite skips
//! this module (its tests choose their backends themselves).

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use tally_pgtest::Server as Pg;

use super::tamper::NANOS_LAST_BYTE;
use super::*;
use crate::common::*;

// =============================================================================================
// The suite against PostgreSQL

/// This module, which the child run skips: its tests start their own servers and choose their
/// backends themselves (and the suite's runner must not run itself again).
const THIS_MODULE: &str = "ledger::postgres::";
/// The replicas tests, which put their ledgers in PostgreSQL themselves (two replicas share
/// one database, and each test starts its own server).
const REPLICAS: &str = "ledger::replicas::";

/// The tests of the suite that cannot apply to a ledger in PostgreSQL, each with why. The
/// PostgreSQL counterparts of the tamper tests are below.
const SKIPS: &[(&str, &str)] = &[
    (
        "ledger::tamper::flipping_any_byte_of_an_entry_is_detected",
        "edits ledger.sqlite with sqlite3 (here: an_entry_row_changed_in_postgresql_is_detected)",
    ),
    (
        "ledger::tamper::flipping_a_byte_and_rehashing_the_entry_breaks_the_chain_or_the_checkpoint",
        "edits ledger.sqlite with sqlite3",
    ),
    (
        "ledger::tamper::deleting_the_last_entry_is_detected",
        "edits ledger.sqlite with sqlite3 (here: a_database_rolled_back_by_one_entry_is_caught)",
    ),
    (
        "ledger::tamper::restoring_an_old_copy_of_the_store_is_caught_by_the_publication",
        "restores an old copy of the ledger.sqlite files (here: a_database_rolled_back_by_one_entry_is_caught)",
    ),
    (
        "ledger::tamper::deleting_an_entry_in_the_middle_is_detected",
        "edits ledger.sqlite with sqlite3",
    ),
    (
        "ledger::tamper::swapping_two_entries_is_detected",
        "edits ledger.sqlite with sqlite3",
    ),
    (
        "ledger::tamper::replacing_a_checkpoint_is_detected",
        "edits ledger.sqlite with sqlite3",
    ),
    (
        "ledger::tamper::every_bad_checkpoint_is_reported",
        "edits ledger.sqlite with sqlite3",
    ),
    (
        "ledger::crash::kill_9_after_the_append_commits_leaves_a_verifying_ledger",
        "reads the in-flight markers as files in tally/inflight; in PostgreSQL they are rows of tally.inflight",
    ),
    (
        "ledger::crash::in_flight_markers_do_not_pile_up",
        "reads the in-flight markers as files in tally/inflight (here: in_flight_marker_rows_do_not_pile_up)",
    ),
    (
        "ledger::crash::crash_between_prepared_and_committed_is_settled_by_the_next_push",
        "ages the in-flight marker's file in tally/inflight (here: a_crash_between_prepared_and_committed_is_settled_by_the_next_push_in_postgresql)",
    ),
];

/// The names of the tests of this binary that `filter` selects (`<binary> --list <filter>`).
fn listed(exe: &Path, filter: &str) -> Vec<String> {
    let out = run_ok(Command::new(exe).args(["--list", filter]));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .map(str::to_owned)
        .collect()
}

/// How many tests a libtest run passed, from its `test result:` line.
fn passed(stdout: &str) -> Option<usize> {
    let line = stdout.lines().find(|l| l.starts_with("test result: "))?;
    let (before, _) = line.split_once(" passed")?;
    before.rsplit(' ').next()?.parse().ok()
}

/// Runs this test binary again with every ledger in a PostgreSQL database (`TALLY_TEST_LEDGER_PG`,
/// see `common/postgres.rs`): the suite's tests, but for [`SKIPS`] and this module.
#[test]
fn the_ledger_suite_passes_with_the_ledger_in_postgresql() {
    let exe = std::env::current_exe().unwrap();
    let all = listed(&exe, "ledger::");
    for (name, why) in SKIPS {
        assert!(
            all.iter().any(|t| t == name),
            "the skip {name:?} ({why}) names no test of the suite"
        );
    }
    let expected = all
        .iter()
        .filter(|t| {
            !t.starts_with(THIS_MODULE)
                && !t.starts_with(REPLICAS)
                && !SKIPS.iter().any(|(s, _)| s == t)
        })
        .count();
    assert!(expected >= 30, "only {expected} tests to run: {all:?}");

    let pg = Pg::start();
    let mut child = Command::new(&exe);
    child.env(LEDGER_PG, LedgerPg::encode(&pg)).args([
        "ledger::",
        "--test-threads=2",
        "--skip",
        THIS_MODULE,
        "--skip",
        REPLICAS,
    ]);
    for (name, _) in SKIPS {
        child.args(["--skip", name]);
    }
    let out = child.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = format!(
        "{child:?} exited with {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{report}");
    assert_eq!(passed(&stdout), Some(expected), "{report}");
    // Every database the suite made holds a ledger (the backend was PostgreSQL, not SQLite).
    let databases = pg.psql(
        "postgres",
        "SELECT count(*) FROM pg_database WHERE datname LIKE 'ledger\\_%'",
    );
    assert!(
        databases.parse::<usize>().unwrap() >= expected,
        "{databases} databases for {expected} tests"
    );
}

// =============================================================================================
// Helpers

/// The database name in the `[ledger] url` of a repository's policy.toml.
fn database_of(server: &Server<'_>) -> String {
    let policy = std::fs::read_to_string(server.policy_path()).unwrap();
    let url = policy
        .lines()
        .find_map(|l| l.strip_prefix("url = "))
        .unwrap_or_else(|| panic!("no [ledger] url in policy.toml:\n{policy}"))
        .trim_matches('"');
    let path = url.rsplit('/').next().unwrap();
    path.split('?').next().unwrap().to_owned()
}

/// The `--ledger` URL of database `db` of `pg`, without TLS (the test server has none).
fn ledger_url(pg: &Pg, db: &str) -> String {
    format!("{}?sslmode=disable", pg.url(db))
}

/// A file holding `pg`'s password, mode 0600, for `--password-file`.
fn password_file(env: &TestEnv, pg: &Pg) -> PathBuf {
    let path = env.write("pgpassword", pg.password());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts a command exited 2 (usage or configuration) and its stderr holds every one of
/// `parts`; returns stderr, its lines unwrapped.
fn assert_config_error(out: &Output, what: &str, parts: &[&str]) -> String {
    let stderr = unwrapped(&text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: should exit 2\nstdout:\n{}\nstderr:\n{stderr}",
        text(&out.stdout)
    );
    for part in parts {
        assert!(stderr.contains(part), "{what}: no {part:?} in:\n{stderr}");
    }
    stderr
}

/// `tally log --json` of a repository, as printed.
fn log_json(server: &Server<'_>) -> String {
    let out = server.tally(&["log", "--json"]);
    assert!(out.status.success(), "{out:?}");
    text(&out.stdout)
}

/// Every row of the SQLite ledger at `file`, table by table, blobs in hex (`sqlite3`'s quote
/// mode), in key order.
fn sqlite_rows(env: &TestEnv, file: &Path) -> String {
    let mut cmd = Command::new("sqlite3");
    env.hermetic(&mut cmd);
    cmd.args(["-batch", "-bail", "-cmd", ".mode quote"])
        .arg(file)
        .arg(
            "SELECT 'entries'; SELECT * FROM entries ORDER BY seq; \
             SELECT 'checkpoints'; SELECT * FROM checkpoints ORDER BY id; \
             SELECT 'head'; SELECT * FROM head; \
             SELECT 'meta'; SELECT * FROM meta ORDER BY 1;",
        );
    text(&run_ok(&mut cmd).stdout)
}

/// Moves the SQLite ledger's files (`ledger.sqlite` and any `-wal`, `-shm` beside it) of
/// `server` into `to`, a new directory; returns where `ledger.sqlite` went.
fn move_sqlite_aside(server: &Server<'_>, to: &Path) -> PathBuf {
    std::fs::create_dir(to).unwrap();
    for name in ["ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm"] {
        let from = server.tally_dir().join(name);
        if from.exists() {
            std::fs::rename(&from, to.join(name)).unwrap();
        }
    }
    to.join("ledger.sqlite")
}

/// `tally ledger migrate --to <to> [extra]` on `server`, asserting it succeeded; returns stdout.
fn migrate(server: &Server<'_>, to: &str, extra: &[&str]) -> String {
    let mut args = vec!["ledger", "migrate", "--to", to];
    args.extend_from_slice(extra);
    let out = server.tally(&args);
    assert!(
        out.status.success(),
        "tally {args:?}: {}\n{}",
        out.status,
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The first push after `tally ledger migrate`: policy.toml changed (its `[ledger]` table),
/// so the ledger records a policy change, then the push. Returns the landed commit.
fn push_after_a_move(server: &Server<'_>, work: &Work<'_>, name: &str) -> String {
    let before = server.log(&[]).len();
    let commit = push_one(work, name);
    let log = server.log(&[]);
    assert_eq!(log.len(), before + 2, "{log:?}");
    assert_eq!(kind(&log[1]), "policy-change", "{}", log[1]);
    assert_eq!(
        reasons(&log[1]),
        ["policy.toml, allowed_signers or the revocation file changed"]
    );
    assert_eq!(kind(&log[0]), "accepted", "{}", log[0]);
    assert_eq!(log[0]["new"], commit.as_str());
    assert_eq!(
        latest_landed(server, "refs/heads/main")["new"],
        commit.as_str()
    );
    commit
}

/// One more signed commit on main, pushed and landed; returns it.
fn push_one(work: &Work<'_>, name: &str) -> String {
    let commit = work
        .commit(name)
        .file(&format!("{name}.yaml"), format!("{name}: 1\n"))
        .create();
    work.push_main_ok();
    commit
}

// =============================================================================================
// Tampering with the database

/// The SQL that flips bits `mask` of byte `position` of entry `seq`'s bytes (run twice, it
/// puts them back).
fn flip(seq: u64, position: usize, mask: u8) -> String {
    format!(
        "UPDATE tally.entries SET bytes = set_byte(bytes, {position}, \
         get_byte(bytes, {position}) # {mask}) WHERE seq = {seq}"
    )
}

/// The PostgreSQL counterpart of `tamper::flipping_any_byte_of_an_entry_is_detected`: someone
/// with write access to the database changes a row's bytes; `tally ledger verify` names it.
#[test]
fn an_entry_row_changed_in_postgresql_is_detected() {
    let pg = Pg::start();
    let env = TestEnv::with_ledgers_in(&pg);
    let h = mixed_history(&env);
    h.server.assert_ledger_intact();
    let db = database_of(&h.server);
    let size = h.server.log(&[]).len() as u64;
    let length = |seq: u64| -> usize {
        pg.psql(
            &db,
            &format!("SELECT octet_length(bytes) FROM tally.entries WHERE seq = {seq}"),
        )
        .parse()
        .unwrap()
    };
    for target in [0, size / 2, size - 1] {
        let len = length(target);
        for position in [0, 19, 28, NANOS_LAST_BYTE, len / 2, len - 1] {
            for mask in [0x01u8, 0x80] {
                pg.psql(&db, &flip(target, position, mask));
                assert_verify_fails(
                    &h.server,
                    &format!("entry {target} byte {position} ^ {mask:#x}"),
                    &[&format!("entry {target}: its bytes hash to ")],
                );
                pg.psql(&db, &flip(target, position, mask));
            }
        }
    }
    h.server.assert_ledger_intact();
}

/// The database restored from a backup one entry old (the latest entry's row and its
/// checkpoints deleted, the head rolled back to what it was): the ledger is consistent in
/// itself, but `refs/tally/ledger` already published the lost entry, and an agent that pinned
/// the later state refuses what the server publishes next.
#[test]
fn a_database_rolled_back_by_one_entry_is_caught() {
    let pg = Pg::start();
    let env = TestEnv::with_ledgers_in(&pg);
    let server = env.server(&alice_and_bob(), &[]);
    let db = database_of(&server);
    let work = env.clone_as(&server, "work", &alice());
    push_one(&work, "base");
    // The backup: the head and the newest checkpoint as they are now.
    pg.psql(
        &db,
        "CREATE TABLE saved_head AS SELECT size, root, last_leaf, frontier FROM tally.ledgers; \
         CREATE TABLE saved_checkpoint AS SELECT max(id) AS id FROM tally.checkpoints",
    );
    let saved_size: u64 = pg.psql(&db, "SELECT size FROM saved_head").parse().unwrap();
    // A refused push: main does not move, only the ledger knows about it.
    work.commit("unsigned")
        .unsigned()
        .file("x.yaml", "x: 1\n")
        .create();
    work.push(&["origin", "HEAD:refs/heads/main"])
        .assert_refused();
    assert_eq!(server.log(&[]).len() as u64, saved_size + 1);
    server.assert_ledger_intact();

    // An agent fetches the ledger with the refused push in it and pins that state.
    let clone = env.root().join("agent");
    run_ok(
        env.git(env.root())
            .args(["clone", "-q"])
            .arg(&server.path)
            .arg(&clone),
    );
    let fetch = || {
        run_ok(env.git(&clone).args([
            "fetch",
            "-q",
            "origin",
            "+refs/tally/ledger:refs/tally/ledger",
        ]))
    };
    fetch();
    let key = env.write(
        "ledger.pub",
        &text(&server.tally(&["ledger", "key"]).stdout),
    );
    let signers = env.write("agent_signers", &alice_and_bob().text());
    let agent = || {
        env.tally()
            .args(["verify", "--repo"])
            .arg(&clone)
            .arg("--ledger-key")
            .arg(&key)
            .arg("--allowed-signers")
            .arg(&signers)
            .output()
            .unwrap()
    };
    let out = agent();
    assert_eq!(
        out.status.code(),
        Some(0),
        "the agent pins the state: {out:?}"
    );
    let published = server.rev("refs/tally/ledger").unwrap();

    // The rollback, consistent in itself.
    pg.psql(
        &db,
        &format!(
            "DELETE FROM tally.entries WHERE seq >= {saved_size}; \
             DELETE FROM tally.checkpoints WHERE id > (SELECT id FROM saved_checkpoint); \
             UPDATE tally.ledgers SET (size, root, last_leaf, frontier) = \
               (SELECT size, root, last_leaf, frontier FROM saved_head)"
        ),
    );
    assert_eq!(server.log(&[]).len() as u64, saved_size);
    assert_verify_fails(&server, "database rolled back", &["refs/tally/ledger"]);

    // The server will not publish the rolled-back head over what it published before, so
    // refs/tally/ledger keeps the lost entry and the agent stays where it was.
    wait_for_the_next_second();
    let heartbeat = server.tally(&["ledger", "checkpoint"]);
    assert_eq!(heartbeat.status.code(), Some(2), "{heartbeat:?}");
    let message = unwrapped(&text(&heartbeat.stderr));
    assert!(
        message.contains(&format!(
            "the published ledger has {} entries but the store's checkpoint only {saved_size}; \
             the store was rolled back",
            saved_size + 1
        )),
        "{message}"
    );
    assert_eq!(server.rev("refs/tally/ledger"), Some(published));
    fetch();
    let out = agent();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        text(&out.stderr).contains(&format!("checkpoint of {} entries", saved_size + 1)),
        "the agent should still hold the later state: {out:?}"
    );
}

// =============================================================================================
// In-flight markers, rows of tally.inflight

/// The markers of the ledger in `db`, one text per row.
fn markers(pg: &Pg, db: &str) -> Vec<String> {
    let out = pg.psql(
        db,
        "SELECT replace(marker, E'\\n', ' ') FROM tally.inflight ORDER BY key",
    );
    out.lines().map(str::to_owned).collect()
}

/// The PostgreSQL counterpart of `crash::in_flight_markers_do_not_pile_up`: each landed push
/// leaves at most its own marker row.
#[test]
fn in_flight_marker_rows_do_not_pile_up() {
    let pg = Pg::start();
    let env = TestEnv::with_ledgers_in(&pg);
    let (server, work) = pushed_once(&env);
    let db = database_of(&server);
    for i in 0..5 {
        let tip = push_one(&work, &format!("change{i}"));
        let left = markers(&pg, &db);
        assert_eq!(left.len(), 1, "after push {i}: {left:?}");
        assert!(left[0].contains(tip.as_str()), "{left:?}");
    }
    server.assert_ledger_intact();
    assert_eq!(server.log(&["--kind", "aborted"]).len(), 0);
}

/// The PostgreSQL counterpart of
/// `crash::crash_between_prepared_and_committed_is_settled_by_the_next_push`: git dies after
/// `prepared` appended the accepted entry; the marker row, aged past any live transaction, is
/// settled by the next push with an `aborted` entry.
#[test]
fn a_crash_between_prepared_and_committed_is_settled_by_the_next_push_in_postgresql() {
    let pg = Pg::start();
    let env = TestEnv::with_ledgers_in(&pg);
    let (server, next, input) = super::crash::pending_move(&env);
    let db = database_of(&server);
    let out = server.run_reference_transaction("prepared", input.as_bytes());
    assert!(out.status.success(), "{out:?}");
    assert!(
        markers(&pg, &db).iter().any(|m| m.contains(next.as_str())),
        "{:?}",
        markers(&pg, &db)
    );
    let verify = server.tally(&["ledger", "verify"]);
    assert_eq!(verify.status.code(), Some(1), "{verify:?}");
    assert!(
        unwrapped(&text(&verify.stderr)).contains("but the ledger records it at"),
        "{verify:?}"
    );
    // Age the marker (its fourth line is when it was written, in unix seconds).
    pg.psql(
        &db,
        "UPDATE tally.inflight SET marker = array_to_string( \
           (string_to_array(marker, E'\\n'))[1:3] || '1000000000'::text \
           || (string_to_array(marker, E'\\n'))[5:], E'\\n')",
    );
    let work = env.clone_as(&server, "again", &alice());
    push_one(&work, "after");
    server.assert_ledger_intact();
    let aborted = server.log(&["--kind", "aborted"]);
    assert_eq!(aborted.len(), 1, "{aborted:?}");
    let cancelled = server
        .log(&["--kind", "accepted"])
        .into_iter()
        .find(|e| e["new"].as_str() == Some(next.as_str()))
        .unwrap();
    assert_eq!(aborted[0]["aborts"], cancelled["seq"]);
    for marker in markers(&pg, &db) {
        assert!(!marker.contains(next.as_str()), "{marker}");
    }
}

// =============================================================================================
// tally ledger migrate

/// SQLite to PostgreSQL and back, on a repository with accepted and refused pushes and a
/// heartbeat: `tally log --json`, `refs/tally/ledger` and `tally ledger verify` are the same at
/// each step, the round-tripped `ledger.sqlite` is the original row for row, and after each
/// move the next push lands in the new backend.
#[test]
fn migrate_to_postgresql_and_back_changes_no_byte() {
    let pg = Pg::start();
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    push_one(&work, "base");
    push_one(&work, "second");
    work.commit("unsigned")
        .unsigned()
        .file("x.yaml", "x: 1\n")
        .create();
    work.push(&["origin", "HEAD:refs/heads/main"])
        .assert_refused();
    work.reset_hard("HEAD~1");
    wait_for_the_next_second();
    let heartbeat = server.tally(&["ledger", "checkpoint"]);
    assert!(heartbeat.status.success(), "{heartbeat:?}");
    server.assert_ledger_intact();

    let sqlite = server.tally_dir().join("ledger.sqlite");
    let original_policy = std::fs::read_to_string(server.policy_path()).unwrap();
    let original_rows = sqlite_rows(&env, &sqlite);
    let log = log_json(&server);
    let published = server.rev("refs/tally/ledger").unwrap();
    let password = password_file(&env, &pg);
    let password = password.to_str().unwrap();
    let same = |step: &str| {
        assert_eq!(log_json(&server), log, "{step}: tally log --json changed");
        assert_eq!(
            server.rev("refs/tally/ledger").as_deref(),
            Some(published.as_str()),
            "{step}: refs/tally/ledger moved"
        );
        server.assert_ledger_intact();
    };

    // SQLite to PostgreSQL.
    pg.create_database("first");
    let first = ledger_url(&pg, "first");
    let stdout = migrate(&server, &first, &["--password-file", password]);
    assert!(stdout.starts_with("ledger moved: "), "{stdout}");
    assert!(stdout.contains("not a byte changed"), "{stdout}");
    let policy = std::fs::read_to_string(server.policy_path()).unwrap();
    assert!(
        policy.contains("[ledger]") && policy.contains(&format!("url = {first:?}")),
        "{policy}"
    );
    same("to PostgreSQL");
    assert_eq!(
        pg.psql("first", "SELECT count(*) FROM tally.entries"),
        server.log(&[]).len().to_string()
    );

    // Back to SQLite: refused while the old file is there, then done once it is moved aside.
    let out = server.tally(&["ledger", "migrate", "--to", "sqlite"]);
    assert_config_error(
        &out,
        "migrate back onto the old file",
        &[
            &format!("{} exists already", sqlite.display()),
            "move it aside first",
        ],
    );
    let aside = move_sqlite_aside(&server, &env.root().join("original"));
    let stdout = migrate(&server, "sqlite", &[]);
    assert!(stdout.contains("not a byte changed"), "{stdout}");
    let policy = std::fs::read_to_string(server.policy_path()).unwrap();
    assert!(!policy.contains("[ledger]"), "{policy}");
    assert_eq!(policy, original_policy, "policy.toml is not what it was");
    same("back to SQLite");
    assert_eq!(sqlite_rows(&env, &sqlite), original_rows);
    assert_eq!(sqlite_rows(&env, &aside), original_rows);

    // A push lands in SQLite.
    let third = push_one(&work, "third");
    assert_eq!(
        latest_landed(&server, "refs/heads/main")["new"],
        third.as_str()
    );
    server.assert_ledger_intact();
    let before = server.log(&[]).len();

    // To PostgreSQL again (another database): the next push lands there, not in the file.
    pg.create_database("second");
    let second = ledger_url(&pg, "second");
    migrate(&server, &second, &["--password-file", password]);
    server.assert_ledger_intact();
    let file_rows = sqlite_rows(&env, &sqlite);
    push_after_a_move(&server, &work, "fourth");
    let in_pg = server.log(&[]).len();
    assert_eq!(
        pg.psql("second", "SELECT count(*) FROM tally.entries"),
        in_pg.to_string()
    );
    assert_eq!(
        sqlite_rows(&env, &sqlite),
        file_rows,
        "the old file was written"
    );
    server.assert_ledger_intact();

    // And back to SQLite: the next push lands in the file.
    move_sqlite_aside(&server, &env.root().join("third"));
    migrate(&server, "sqlite", &[]);
    push_after_a_move(&server, &work, "fifth");
    assert_eq!(
        pg.psql("second", "SELECT count(*) FROM tally.entries"),
        in_pg.to_string(),
        "the database was written after the move"
    );
    assert_eq!(before + 4, server.log(&[]).len());
    server.assert_ledger_intact();
}

// =============================================================================================
// tally init --ledger, refused

/// `tally init <new bare repository> --ledger <url>` with `PGPASSWORD`, if given.
fn init_with_ledger(env: &TestEnv, name: &str, url: &str, password: Option<&str>) -> Output {
    let repo = env.bare_repo(name);
    let signers = env.write("allowed_signers", &alice_and_bob().text());
    let mut cmd = env.tally();
    cmd.arg("init")
        .arg(&repo)
        .arg("--allowed-signers")
        .arg(&signers)
        .args(["--ledger", url]);
    if let Some(password) = password {
        cmd.env("PGPASSWORD", password);
    }
    cmd.output().unwrap()
}

#[test]
fn init_with_a_wrong_password_says_so_and_where_passwords_come_from() {
    let pg = Pg::start();
    let env = TestEnv::new();
    pg.create_database("ledger");
    let out = init_with_ledger(&env, "server", &ledger_url(&pg, "ledger"), Some("wrong"));
    let stderr = assert_config_error(
        &out,
        "wrong password",
        &[
            &format!(
                "password authentication failed for user tally at 127.0.0.1:{}",
                pg.port()
            ),
            "(password from PGPASSWORD)",
            "PGPASSWORD, ~/.pgpass, PGSERVICE or the [ledger] password_file",
        ],
    );
    insta::assert_snapshot!(normalise(
        &stderr,
        &[
            (&pg.port().to_string(), "<port>"),
            (&env.root().display().to_string(), "<root>")
        ]
    ));
}

#[test]
fn init_with_an_unreachable_server_names_host_and_port() {
    let mut pg = Pg::start();
    let env = TestEnv::new();
    pg.create_database("ledger");
    pg.stop();
    let out = init_with_ledger(
        &env,
        "server",
        &ledger_url(&pg, "ledger"),
        Some(pg.password()),
    );
    assert_config_error(
        &out,
        "server stopped",
        &[
            &format!("cannot reach PostgreSQL at 127.0.0.1:{}", pg.port()),
            "is the server running and reachable from this host?",
        ],
    );
}

#[test]
fn init_with_a_password_in_the_url_is_refused_and_says_where_it_goes() {
    let pg = Pg::start();
    let env = TestEnv::new();
    pg.create_database("ledger");
    let url = format!("{}?sslmode=disable", pg.url_with_password("ledger"));
    let out = init_with_ledger(&env, "server", &url, None);
    let stderr = assert_config_error(
        &out,
        "password in the URL",
        &[
            "the ledger URL must not contain a password",
            "use PGPASSWORD, ~/.pgpass, PGSERVICE or the [ledger] password_file instead",
        ],
    );
    assert!(
        !stderr.contains(pg.password()),
        "the password is shown:\n{stderr}"
    );
    insta::assert_snapshot!(normalise(
        &stderr,
        &[
            (&pg.port().to_string(), "<port>"),
            (&env.root().display().to_string(), "<root>")
        ]
    ));
}

#[test]
fn init_with_a_ledger_on_a_repository_with_an_sqlite_ledger_says_to_migrate() {
    let pg = Pg::start();
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    pg.create_database("ledger");
    let url = ledger_url(&pg, "ledger");
    let out = env
        .tally()
        .arg("init")
        .arg(&server.path)
        .arg("--allowed-signers")
        .arg(env.root().join("allowed_signers"))
        .args(["--ledger", &url])
        .env("PGPASSWORD", pg.password())
        .output()
        .unwrap();
    let stderr = assert_config_error(
        &out,
        "--ledger over an SQLite ledger",
        &[
            "this repository's ledger is in SQLite at ",
            &format!(
                "run `tally ledger migrate --repo {} --to {url}`",
                server.path.display()
            ),
        ],
    );
    let policy = std::fs::read_to_string(server.policy_path()).unwrap();
    assert!(!policy.contains("[ledger]"), "{policy}");
    server.assert_ledger_intact();
    insta::assert_snapshot!(normalise(
        &stderr,
        &[
            (&pg.port().to_string(), "<port>"),
            (&env.root().display().to_string(), "<root>")
        ]
    ));
}

/// A second bare repository holding the same ledger key (another replica of the repository)
/// attaches to the ledger the first one made, rather than making another.
#[test]
fn init_with_the_same_ledger_key_attaches_to_the_existing_ledger() {
    let pg = Pg::start();
    let env = TestEnv::with_ledgers_in(&pg);
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    push_one(&work, "base");
    let db = database_of(&server);

    // A replica: a bare clone of the repository (its branches), before tally is set up.
    let replica = env.root().join("replica.git");
    run_ok(
        env.git(env.root())
            .args(["clone", "-q", "--bare"])
            .arg(&server.path)
            .arg(&replica),
    );
    std::fs::create_dir(replica.join("tally")).unwrap();
    for name in ["ledger_key", "ledger_key.pub"] {
        std::fs::copy(
            server.tally_dir().join(name),
            replica.join("tally").join(name),
        )
        .unwrap();
    }
    std::fs::set_permissions(
        replica.join("tally/ledger_key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let out = env
        .tally()
        .arg("init")
        .arg(&replica)
        .arg("--allowed-signers")
        .arg(env.root().join("allowed_signers"))
        .args(["--ledger", &ledger_url(&pg, &db)])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    insta::assert_snapshot!(normalise(
        &stdout,
        &[
            (&pg.port().to_string(), "<port>"),
            (&env.root().display().to_string(), "<root>"),
            (&db, "<db>"),
        ]
    ));
    assert_eq!(pg.psql(&db, "SELECT count(*) FROM tally.ledgers"), "1");
    let replica = env.server_at(replica);
    assert_eq!(replica.log(&[]), server.log(&[]));
    replica.assert_ledger_intact();
}

// =============================================================================================
// Failure closes during a push

/// A server whose ledger is in PostgreSQL, main at a first landed commit; returns the work
/// clone too.
fn pushed_once<'e>(env: &'e TestEnv) -> (Server<'e>, Work<'e>) {
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    push_one(&work, "base");
    server.assert_ledger_intact();
    (server, work)
}

#[test]
fn a_push_while_the_database_is_down_is_refused_and_the_chain_continues_after() {
    let mut pg = Pg::start();
    let env = TestEnv::with_ledgers_in(&pg);
    let (server, work) = pushed_once(&env);
    let db = database_of(&server);
    let main = server.branch("main");
    let entries = server.log(&[]);

    pg.stop();
    work.commit("while down")
        .file("down.yaml", "down: 1\n")
        .create();
    let push = work.push(&["origin", "HEAD:refs/heads/main"]);
    push.assert_refused();
    let seen = unwrapped(&push.stderr);
    for part in [
        format!("127.0.0.1:{}", pg.port()),
        "is the server running and reachable from this host?".to_owned(),
    ] {
        assert!(
            seen.contains(&part),
            "the pusher should see {part:?}:\n{seen}"
        );
    }
    assert!(
        seen.contains(&db),
        "the pusher should see the database {db}:\n{seen}"
    );
    assert_eq!(server.branch("main"), main, "main moved without a ledger");

    pg.start_again();
    server.assert_ledger_intact();
    assert_eq!(server.log(&[]), entries, "something was recorded");
    let push = work.push(&["origin", "HEAD:refs/heads/main"]);
    push.assert_accepted();
    let after = server.log(&[]);
    assert_eq!(after.len(), entries.len() + 1);
    assert_eq!(seq(&after[0]), seq(&entries[0]) + 1);
    assert_eq!(after[0]["new"], work.head().as_str());
    server.assert_ledger_intact();
}

#[test]
fn a_push_to_a_read_only_database_is_refused_and_writes_nothing() {
    let pg = Pg::start();
    let env = TestEnv::with_ledgers_in(&pg);
    let (server, work) = pushed_once(&env);
    let db = database_of(&server);
    let main = server.branch("main");
    let entries = server.log(&[]);
    let rows = |table: &str| pg.psql(&db, &format!("SELECT count(*) FROM tally.{table}"));
    let counts = (rows("entries"), rows("checkpoints"), rows("inflight"));

    pg.set_read_only(&db, true);
    work.commit("read-only").file("ro.yaml", "ro: 1\n").create();
    let push = work.push(&["origin", "HEAD:refs/heads/main"]);
    push.assert_refused();
    let seen = unwrapped(&push.stderr);
    assert!(seen.contains("read-only"), "{seen}");
    assert_eq!(server.branch("main"), main, "main moved without a ledger");

    pg.set_read_only(&db, false);
    assert_eq!(
        (rows("entries"), rows("checkpoints"), rows("inflight")),
        counts,
        "half-written"
    );
    assert_eq!(server.log(&[]), entries);
    server.assert_ledger_intact();
    work.push(&["origin", "HEAD:refs/heads/main"])
        .assert_accepted();
    assert_eq!(server.log(&[]).len(), entries.len() + 1);
    server.assert_ledger_intact();
}

//! The harness against the real PostgreSQL: connections every way a test makes them, the
//! failures it simulates, and that nothing outlives a server.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tally_pgtest::{Options, Server};

/// Runs `psql -X -At -c sql` against `conninfo` (a URL or key=value string) as a client would,
/// with `password` in `PGPASSWORD` if given.
fn client_psql(server: &Server, conninfo: &str, password: Option<&str>, sql: &str) -> Output {
    let mut command = Command::new(server.bin_dir().join("psql"));
    command.args([
        "-X",
        "-At",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        conninfo,
        "-c",
        sql,
    ]);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PG") {
            command.env_remove(name);
        }
    }
    // No password unless given: a server that trusted TCP would go unnoticed otherwise.
    command.env("PGPASSFILE", "/dev/null");
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    command.output().expect("run psql")
}

/// Returns psql's output, panicking with its stderr if it failed.
fn stdout_of(output: Output) -> String {
    assert!(
        output.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim_end()
        .to_owned()
}

/// Asserts that none of `pids` runs any more (gone, or a zombie awaiting its reaper).
fn assert_all_gone(pids: &[u32]) {
    for &pid in pids {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| stat.rsplit_once(')')?.1.trim_start().chars().next());
        assert!(
            matches!(state, None | Some('Z' | 'X')),
            "server process {pid} still runs (state {state:?})"
        );
    }
}

#[test]
fn sql_over_the_socket_and_over_tcp_with_the_password() {
    let server = Server::start();
    let url = server.create_database("app");
    assert_eq!(
        url,
        format!("postgres://tally@127.0.0.1:{}/app", server.port())
    );
    assert!(
        !url.contains(server.password()),
        "url() carries no password"
    );

    server.psql(
        "app",
        "CREATE TABLE t (n int); INSERT INTO t VALUES (1), (2);",
    );
    assert_eq!(server.psql("app", "SELECT n FROM t ORDER BY n"), "1\n2");

    // The socket URL, as libpq reads it.
    let over_socket = client_psql(
        &server,
        &server.socket_url("app"),
        None,
        "SELECT current_user",
    );
    assert_eq!(stdout_of(over_socket), "postgres");

    // TCP as the login role, which owns the database, with the password ...
    let sql = "SELECT current_user, inet_server_addr(), current_database()";
    let over_tcp = client_psql(&server, &url, Some(server.password()), sql);
    assert_eq!(stdout_of(over_tcp), "tally|127.0.0.1|app");
    let with_password = client_psql(&server, &server.url_with_password("app"), None, sql);
    assert_eq!(stdout_of(with_password), "tally|127.0.0.1|app");
    let owner = "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app'";
    assert_eq!(server.psql("postgres", owner), server.user());

    // ... and not without it, or with a wrong one: TCP is not trusted.
    let refused = client_psql(&server, &url, None, "SELECT 1");
    assert!(!refused.status.success());
    let refused = client_psql(&server, &url, Some("wrong"), "SELECT 1");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("password authentication failed"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[test]
fn psql_failure_panics_with_the_servers_error() {
    let server = Server::start();
    let panic = std::panic::catch_unwind(|| server.psql("postgres", "SELECT * FROM missing"))
        .expect_err("a failing statement panics");
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    assert!(
        message.contains(r#"relation "missing" does not exist"#),
        "{message}"
    );
}

#[test]
fn kill9_then_start_again_recovers_committed_data() {
    let mut server = Server::start();
    server.create_database("app");
    server.psql(
        "app",
        "CREATE TABLE t (n int); INSERT INTO t SELECT generate_series(1, 1000);",
    );
    let port = server.port();
    // A session in the middle of a transaction that never commits.
    let mut open = Command::new(server.bin_dir().join("psql"))
        .args(["-X", "-d", &server.socket_url("app")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run psql");
    {
        use std::io::Write;
        let stdin = open.stdin.as_mut().expect("piped");
        writeln!(stdin, "BEGIN; INSERT INTO t VALUES (-1);").expect("write to psql");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let in_transaction = "SELECT count(*) FROM pg_stat_activity WHERE datname = 'app' AND state = 'idle in transaction'";
    while server.psql("postgres", in_transaction) != "1" {
        assert!(
            Instant::now() < deadline,
            "the open transaction never began"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let pids = server.server_pids();
    assert!(pids.len() > 2, "postmaster and its processes: {pids:?}");
    server.kill9();
    assert_eq!(server.pid(), None);
    assert_all_gone(&pids);
    drop(open.stdin.take());
    let _ = open.wait();

    server.start_again();
    assert_eq!(server.port(), port, "same port after a restart");
    assert_eq!(
        server.psql("app", "SELECT count(*), min(n), max(n) FROM t"),
        "1000|1|1000"
    );
    let log = std::fs::read_to_string(server.log_path()).expect("read the log");
    assert!(
        log.contains("database system was interrupted") || log.contains("not properly shut down"),
        "start_again ran crash recovery:\n{log}"
    );
}

#[test]
fn stop_start_again_and_restart_keep_the_data_and_port() {
    let mut server = Server::start();
    let url = server.create_database("app");
    // Made by the login role, which the TCP connections below use.
    server.psql(
        "app",
        "SET ROLE tally; CREATE TABLE t (n int); INSERT INTO t VALUES (7);",
    );
    let first = server.pid().expect("running");
    server.stop();
    assert_eq!(server.pid(), None);
    assert_all_gone(&[first]);
    let refused = client_psql(&server, &url, Some(server.password()), "SELECT 1");
    assert!(!refused.status.success(), "a stopped server refuses");
    server.stop(); // stopping a stopped server does nothing
    server.start_again();
    assert_eq!(server.psql("app", "SELECT n FROM t"), "7");
    server.restart();
    assert_ne!(server.pid(), Some(first));
    let over_tcp = client_psql(&server, &url, Some(server.password()), "SELECT n FROM t");
    assert_eq!(stdout_of(over_tcp), "7");
}

#[test]
fn start_again_on_a_port_taken_meanwhile_panics_saying_so() {
    let mut server = Server::start();
    server.stop();
    let squatter = std::net::TcpListener::bind(("127.0.0.1", server.port())).expect("bind");
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| server.start_again()))
        .expect_err("the port is taken");
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    assert!(
        message.contains("was taken by another process meanwhile"),
        "{message}"
    );
    assert!(
        message.contains("Address already in use"),
        "the log tail: {message}"
    );
    assert_eq!(server.pid(), None);
    drop(squatter);
    server.start_again();
    assert_eq!(server.psql("postgres", "SELECT 1"), "1");
}

#[test]
fn terminate_backends_ends_other_sessions_and_read_only_refuses_writes() {
    let server = Server::start();
    let url = server.create_database("app");
    server.psql("app", "SET ROLE tally; CREATE TABLE t (n int)");
    let sleeper = Command::new(server.bin_dir().join("psql"))
        .args([
            "-X",
            "-d",
            &server.socket_url("app"),
            "-c",
            "SELECT pg_sleep(60)",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run psql");
    let deadline = Instant::now() + Duration::from_secs(10);
    let sleeping = "SELECT count(*) FROM pg_stat_activity WHERE datname = 'app' AND query LIKE 'SELECT pg_sleep%'";
    while server.psql("postgres", sleeping) != "1" {
        assert!(
            Instant::now() < deadline,
            "the sleeping session never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.terminate_backends("app"), 1);
    let ended = sleeper.wait_with_output().expect("wait for psql");
    assert!(!ended.status.success());
    assert!(
        String::from_utf8_lossy(&ended.stderr).contains("terminat"),
        "{}",
        String::from_utf8_lossy(&ended.stderr)
    );
    assert_eq!(server.terminate_backends("app"), 0);

    server.set_read_only("app", true);
    let refused = client_psql(
        &server,
        &url,
        Some(server.password()),
        "INSERT INTO t VALUES (1)",
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("cannot execute INSERT in a read-only transaction"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    server.set_read_only("app", false);
    let accepted = client_psql(
        &server,
        &url,
        Some(server.password()),
        "INSERT INTO t VALUES (1)",
    );
    stdout_of(accepted);
}

/// Returns a TCP key=value conninfo for the login role with `sslmode` and the harness's CA.
fn tls_conninfo(server: &Server, host: &str, sslmode: &str, ca: &Path) -> String {
    format!(
        "host={host} port={} user={} dbname=app sslmode={sslmode} sslrootcert={}",
        server.port(),
        server.user(),
        ca.display()
    )
}

#[test]
fn tls_server_with_hostssl_only_accepts_tls_and_refuses_plain_tcp() {
    let server = Server::start_with(Options {
        tls: true,
        require_tls: true,
    });
    server.create_database("app");
    let ca = server.ca_cert_path().expect("a TLS server has a CA");
    let in_use = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    // verify-full checks the chain and the name: the certificate names both localhost and
    // 127.0.0.1.
    for host in ["localhost", "127.0.0.1"] {
        let conninfo = tls_conninfo(&server, host, "verify-full", ca);
        let over_tls = client_psql(&server, &conninfo, Some(server.password()), in_use);
        assert_eq!(stdout_of(over_tls), "t", "{host}");
    }
    let required = format!("{}?sslmode=require", server.url("app"));
    let over_tls = client_psql(&server, &required, Some(server.password()), in_use);
    assert_eq!(stdout_of(over_tls), "t");

    let plain = tls_conninfo(&server, "127.0.0.1", "disable", ca);
    let refused = client_psql(&server, &plain, Some(server.password()), "SELECT 1");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("no pg_hba.conf entry"), "{stderr}");
}

#[test]
fn tls_server_without_require_tls_also_accepts_plain_tcp() {
    let server = Server::start_with(Options {
        tls: true,
        ..Options::default()
    });
    server.create_database("app");
    let ca = server.ca_cert_path().expect("a TLS server has a CA");
    let in_use = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    let plain = tls_conninfo(&server, "127.0.0.1", "disable", ca);
    let over_tcp = client_psql(&server, &plain, Some(server.password()), in_use);
    assert_eq!(stdout_of(over_tcp), "f");
    let key = server
        .ca_cert_path()
        .expect("ca")
        .with_file_name("server.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key)
            .expect("stat server.key")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn plain_server_has_no_ca() {
    let server = Server::start();
    assert_eq!(server.ca_cert_path(), None);
    assert_eq!(server.psql("postgres", "SHOW ssl"), "off");
    assert_eq!(server.psql("postgres", "SHOW fsync"), "on");
    assert_eq!(server.psql("postgres", "SHOW max_connections"), "200");
}

#[test]
fn two_servers_at_once_get_different_ports_and_drop_leaves_nothing() {
    let first = Server::start();
    let second = Server::start();
    assert_ne!(first.port(), second.port());
    assert_ne!(first.socket_dir(), second.socket_dir());
    let dirs = [
        first.socket_dir().to_path_buf(),
        second.socket_dir().to_path_buf(),
    ];
    let mut pids = first.server_pids();
    pids.extend(second.server_pids());
    drop(first);
    drop(second);
    assert_all_gone(&pids);
    for dir in dirs {
        assert!(!dir.exists(), "{} removed", dir.display());
    }
}

#[test]
fn a_panicking_test_leaves_no_server_behind() {
    let mut pids = Vec::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let server = Server::start();
        pids = server.server_pids();
        panic!("the test fails while the server runs");
    }));
    assert!(result.is_err());
    assert!(!pids.is_empty());
    assert_all_gone(&pids);
}

#[test]
fn server_runs_as_nobody_under_root_else_as_the_current_user() {
    let server = Server::start();
    let pid = server.pid().expect("running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let uid_line = status
        .lines()
        .find(|line| line.starts_with("Uid:"))
        .expect("a Uid line");
    let euid = nix::unistd::geteuid().as_raw();
    let expected = if euid == 0 {
        let nobody = nix::unistd::User::from_name("nobody").expect("read users");
        nobody.expect("a nobody user").uid.as_raw()
    } else {
        euid
    };
    let uids: Vec<u32> = uid_line
        .split_whitespace()
        .skip(1)
        .map(|uid| uid.parse().expect("numeric uid"))
        .collect();
    assert!(uids.iter().all(|&uid| uid == expected), "{uid_line}");
}

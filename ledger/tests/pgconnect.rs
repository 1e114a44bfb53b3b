//! pgconnect against a real PostgreSQL 15: a throwaway server run as `nobody` in a temporary
//! directory, with TLS from a test CA made by the `openssl` CLI.
//!
//! The server helper here is test-local; the `tally-pgtest` harness will replace it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use tally_ledger::pgconnect::{ConnectError, Environment, Target};

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// Runs a command and fails the test with its output if it fails.
fn run(command: &mut Command) {
    let output = command.output().expect("the command starts");
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Whether the tests run as root.
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").is_ok_and(|proc| proc.uid() == 0)
}

/// Runs a PostgreSQL program as `nobody` when the tests run as root (initdb and postgres
/// refuse root), else as the current user.
fn as_nobody(program: &str) -> Command {
    let path = format!("{BIN}/{program}");
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "nobody", "--", &path]);
        command
    } else {
        Command::new(path)
    }
}

/// A CA and a certificate it signed, made with the openssl CLI.
fn make_ca(dir: &Path, name: &str) -> PathBuf {
    let ca_key = dir.join(format!("{name}.key"));
    let ca_crt = dir.join(format!("{name}.crt"));
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .arg("-keyout")
        .arg(&ca_key)
        .arg("-out")
        .arg(&ca_crt)
        .args(["-days", "2", "-subj", &format!("/CN={name}")]));
    ca_crt
}

fn make_server_cert(dir: &Path, ca: &str) -> (PathBuf, PathBuf) {
    let key = dir.join("server.key");
    let csr = dir.join("server.csr");
    let crt = dir.join("server.crt");
    let ext = dir.join("server.ext");
    fs::write(
        &ext,
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write ext");
    run(Command::new("openssl")
        .args([
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&csr)
        .args(["-subj", "/CN=localhost"]));
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-in"])
        .arg(&csr)
        .arg("-CA")
        .arg(dir.join(format!("{ca}.crt")))
        .arg("-CAkey")
        .arg(dir.join(format!("{ca}.key")))
        .arg("-CAcreateserial")
        .arg("-out")
        .arg(&crt)
        .arg("-extfile")
        .arg(&ext));
    (crt, key)
}

/// A running server; stopped when dropped, even when the test panics.
struct Server {
    _dir: tempfile::TempDir,
    data: PathBuf,
    socket_dir: PathBuf,
    port: u16,
    ca: PathBuf,
    other_ca: PathBuf,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let tls = dir.path().join("tls");
        fs::create_dir(&tls).expect("mkdir");
        let ca = make_ca(&tls, "ca");
        let other_ca = make_ca(&tls, "other-ca");
        let (crt, key) = make_server_cert(&tls, "ca");
        let data = dir.path().join("data");
        let socket_dir = dir.path().join("socket");
        fs::create_dir(&socket_dir).expect("mkdir");
        let pwfile = dir.path().join("admin-pw");
        fs::write(&pwfile, "admin-pw\n").expect("write");
        if is_root() {
            run(Command::new("chown").args(["-R", "nobody"]).arg(dir.path()));
        }
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod");
        run(as_nobody("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "admin", "-E", "UTF8", "--no-sync"])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display())));
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("addr").port()
        };
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
             ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\nfsync = off\n",
            socket_dir.display(),
            crt.display(),
            key.display()
        );
        let conf_path = data.join("postgresql.conf");
        let mut text = fs::read_to_string(&conf_path).expect("read conf");
        text.push_str(&conf);
        fs::write(&conf_path, text).expect("write conf");
        run(as_nobody("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.path().join("log"))
            .args(["-w", "-t", "30", "start"]));
        Server {
            _dir: dir,
            data,
            socket_dir,
            port,
            ca,
            other_ca,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = as_nobody("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// A hermetic environment: no variables, an empty home.
fn connect(target: &Target, home: &Path) -> Result<postgres::Client, ConnectError> {
    let nothing = |_: &str| None;
    let environment = Environment {
        var: &nothing,
        home: Some(home.to_path_buf()),
        os_user: Some("nobody-here".to_owned()),
    };
    target.connect_in("tally-test", &environment)
}

fn target(url: &str, password_file: Option<&Path>) -> Target {
    Target::parse(url, password_file.map(Path::to_path_buf)).expect("the URL parses")
}

/// Whether the session is encrypted, and the user it runs as.
fn session(client: &mut postgres::Client) -> (bool, String) {
    let row = client
        .query_one(
            "SELECT ssl, current_user::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .expect("query");
    (row.get(0), row.get(1))
}

fn write_secret(path: &Path, text: &str) {
    fs::write(path, text).expect("write");
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod");
}

#[test]
fn pgconnect_against_a_real_postgresql() {
    let server = Server::start();
    let home = tempfile::tempdir().expect("home");
    let port = server.port;
    let socket = server.socket_dir.display().to_string().replace('/', "%2F");

    // A unix-socket host (percent-encoded in the URL): no TLS, trust auth for the admin.
    let mut admin = connect(
        &target(&format!("postgres://admin@{socket}:{port}/postgres"), None),
        home.path(),
    )
    .expect("connects over the unix socket");
    assert_eq!(session(&mut admin), (false, "admin".to_owned()));
    admin
        .batch_execute("CREATE ROLE tally LOGIN PASSWORD 'tally-pw'")
        .expect("create role");
    admin
        .batch_execute("CREATE DATABASE ledger OWNER tally")
        .expect("create database");
    let stored: bool = admin
        .query_one(
            "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'tally'",
            &[],
        )
        .expect("query")
        .get(0);
    assert!(stored, "the password is stored as a SCRAM verifier");

    // The password from password_file over TCP, SCRAM-SHA-256, plain text.
    let password_file = home.path().join("ledger-pw");
    write_secret(&password_file, "tally-pw\n");
    let tcp = format!("postgres://tally@127.0.0.1:{port}/ledger");
    let mut client = connect(
        &target(&format!("{tcp}?sslmode=disable"), Some(&password_file)),
        home.path(),
    )
    .expect("password_file over TCP");
    assert_eq!(session(&mut client), (false, "tally".to_owned()));
    let name: String = client
        .query_one("SELECT current_setting('application_name')", &[])
        .expect("query")
        .get(0);
    assert_eq!(name, "tally-test");

    // A wrong password: the message names the user, where the password came from, the fix.
    let wrong_file = home.path().join("wrong-pw");
    write_secret(&wrong_file, "nope\n");
    let error = connect(&target(&tcp, Some(&wrong_file)), home.path())
        .err()
        .expect("wrong password");
    let message = error.to_string();
    assert!(
        matches!(error, ConnectError::AuthenticationFailed { .. }),
        "{message}"
    );
    assert!(
        message.contains("user tally") && message.contains("password_file"),
        "{message}"
    );
    assert!(!message.contains("nope"), "{message}");

    println!("wrong password: {message}");

    // A role the server does not know, over the socket (trust): not a password problem.
    let error = connect(
        &target(&format!("postgres://ghost@{socket}:{port}/postgres"), None),
        home.path(),
    )
    .err()
    .expect("unknown role");
    let message = error.to_string();
    assert!(
        matches!(error, ConnectError::NotAuthorized { .. }),
        "{message}"
    );
    assert!(
        message.contains("ghost") && message.contains("pg_hba.conf"),
        "{message}"
    );
    println!("unknown role: {message}");

    // No password anywhere while the server asks for one.
    let error = connect(&target(&tcp, None), home.path())
        .err()
        .expect("no password");
    assert!(
        matches!(error, ConnectError::PasswordMissing { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("user tally") && message.contains("PGPASSWORD"),
        "{message}"
    );
    println!("no password: {message}");

    // ~/.pgpass in the (injected) home.
    write_secret(
        &home.path().join(".pgpass"),
        &format!("127.0.0.1:{port}:ledger:tally:tally-pw\n"),
    );
    let mut client = connect(&target(&tcp, None), home.path()).expect("password from ~/.pgpass");
    // Default sslmode is prefer: this server offers TLS, so the session is encrypted.
    assert_eq!(session(&mut client), (true, "tally".to_owned()));

    // sslmode=require against a certificate the client cannot verify (no root file): TLS.
    let mut client = connect(
        &target(&format!("{tcp}?sslmode=require"), Some(&password_file)),
        home.path(),
    )
    .expect("require without a root certificate");
    assert!(session(&mut client).0);

    let ca = server.ca.display().to_string();
    let other_ca = server.other_ca.display().to_string();
    let named = format!("postgres://tally@localhost:{port}/ledger?hostaddr=127.0.0.1");

    // verify-full with the right CA and the certificate's name.
    let mut client = connect(
        &target(
            &format!("{named}&sslmode=verify-full&sslrootcert={ca}"),
            Some(&password_file),
        ),
        home.path(),
    )
    .expect("verify-full with the right CA");
    assert!(session(&mut client).0);

    // verify-full with a name the certificate does not carry: refused, and the message says
    // which mode and root file were used.
    let wrong_name =
        format!("postgres://tally@db.example.invalid:{port}/ledger?hostaddr=127.0.0.1");
    let error = connect(
        &target(
            &format!("{wrong_name}&sslmode=verify-full&sslrootcert={ca}"),
            Some(&password_file),
        ),
        home.path(),
    )
    .err()
    .expect("wrong host name");
    let message = error.to_string();
    assert!(matches!(error, ConnectError::Tls { .. }), "{message}");
    assert!(
        message.contains("sslmode=verify-full") && message.contains(&ca),
        "{message}"
    );
    assert!(
        message.contains("db.example.invalid") || message.contains("name"),
        "{message}"
    );
    println!("wrong host name: {message}");

    // verify-ca checks the chain only: the same wrong name is accepted.
    connect(
        &target(
            &format!("{wrong_name}&sslmode=verify-ca&sslrootcert={ca}"),
            Some(&password_file),
        ),
        home.path(),
    )
    .expect("verify-ca ignores the host name");

    // verify-full with another CA: refused.
    let error = connect(
        &target(
            &format!("{named}&sslmode=verify-full&sslrootcert={other_ca}"),
            Some(&password_file),
        ),
        home.path(),
    )
    .err()
    .expect("wrong CA");
    assert!(matches!(error, ConnectError::Tls { .. }), "{error}");
    println!("wrong CA: {error}");

    // require with a root file verifies the chain (libpq: require is then verify-ca).
    let error = connect(
        &target(
            &format!("{tcp}?sslmode=require&sslrootcert={other_ca}"),
            Some(&password_file),
        ),
        home.path(),
    )
    .err()
    .expect("require with a root file verifies");
    assert!(matches!(error, ConnectError::Tls { .. }), "{error}");

    // verify-full without any root file says where it looked.
    let error = connect(
        &target(
            &format!("{named}&sslmode=verify-full"),
            Some(&password_file),
        ),
        home.path(),
    )
    .err()
    .expect("no root file");
    let message = error.to_string();
    assert!(message.contains(".postgresql/root.crt"), "{message}");

    // A database that does not exist.
    let error = connect(
        &target(
            &format!("postgres://tally@127.0.0.1:{port}/nosuchdb?sslmode=disable"),
            Some(&password_file),
        ),
        home.path(),
    )
    .err()
    .expect("no such database");
    assert!(
        matches!(error, ConnectError::DatabaseMissing { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("database nosuchdb") && message.contains("createdb"),
        "{message}"
    );
    println!("no database: {message}");

    drop(admin);
    drop(server);

    // The server is gone: refused, with the address and the question to ask.
    let error = connect(
        &target(&format!("{tcp}?sslmode=disable"), Some(&password_file)),
        home.path(),
    )
    .err()
    .expect("server stopped");
    let message = error.to_string();
    assert!(
        matches!(error, ConnectError::Unreachable { .. }),
        "{message}"
    );
    assert!(
        message.contains(&format!("127.0.0.1:{port}")) && message.contains("is the server running"),
        "{message}"
    );
    println!("unreachable: {message}");
}

/// A server that accepts the TCP connection and never answers (an overloaded host, a
/// middlebox): connect_timeout bounds the whole connection, not only the TCP handshake.
#[test]
fn pgconnect_silent_server_times_out() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let home = tempfile::tempdir().expect("home");
    let started = std::time::Instant::now();
    let error = connect(
        &target(
            &format!("postgres://tally@127.0.0.1:{port}/ledger?connect_timeout=2&sslmode=disable"),
            None,
        ),
        home.path(),
    )
    .err()
    .expect("no answer");
    let message = error.to_string();
    assert!(
        matches!(error, ConnectError::Timeout { seconds: 2, .. }),
        "{message}"
    );
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    // Generous: the point is that it ends, not how fast.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    drop(listener);
}

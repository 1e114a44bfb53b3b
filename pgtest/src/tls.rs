//! A throwaway certificate authority and server certificate, made with the `openssl` CLI.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::Owner;

/// Validity of the certificates: far longer than any test, short enough to be obviously
/// throwaway.
const DAYS: &str = "30";

/// `openssl req` configuration for the CA: a v3 CA certificate (webpki, behind rustls, refuses
/// v1 certificates and CAs without `basicConstraints`). The system `openssl.cnf` is not read, so
/// the result does not depend on the machine.
const CA_CONFIG: &str = "\
[req]
distinguished_name = dn
prompt = no
x509_extensions = ca_ext
[dn]
CN = tally-pgtest CA
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
";

/// `openssl req` configuration for the server's request, and the extensions its certificate gets:
/// names for both ways tests connect (`localhost` and `127.0.0.1`), so `sslmode=verify-full` and
/// rustls's name check pass for either.
const SERVER_CONFIG: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = localhost
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// The files a TLS server is started with.
#[derive(Clone, Debug)]
pub(crate) struct Files {
    /// The CA certificate clients trust.
    pub(crate) ca_cert: PathBuf,
    /// The server's certificate, signed by the CA.
    pub(crate) server_cert: PathBuf,
    /// The server's private key: mode 0600, owned by the server's user, as PostgreSQL demands.
    pub(crate) server_key: PathBuf,
}

/// Makes a CA and a server certificate in `dir` (created), for a server running as `owner`.
pub(crate) fn generate(dir: &Path, owner: Owner) -> Files {
    std::fs::create_dir(dir).expect("create the TLS directory");
    std::fs::write(dir.join("ca.cnf"), CA_CONFIG).expect("write ca.cnf");
    std::fs::write(dir.join("server.cnf"), SERVER_CONFIG).expect("write server.cnf");
    let ec_p256 = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        dir,
        &[
            &["req", "-x509", "-new"],
            &ec_p256[..],
            &[
                "-config", "ca.cnf", "-days", DAYS, "-keyout", "ca.key", "-out", "ca.crt",
            ],
        ],
    );
    openssl(
        dir,
        &[
            &["req", "-new"],
            &ec_p256[..],
            &[
                "-config",
                "server.cnf",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ],
        ],
    );
    openssl(
        dir,
        &[&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            // A fresh CA signs one certificate: any serial is unique.
            "-set_serial",
            "2",
            "-days",
            DAYS,
            "-extfile",
            "server.cnf",
            "-extensions",
            "server_ext",
            "-out",
            "server.crt",
        ]],
    );
    let server_key = dir.join("server.key");
    std::fs::set_permissions(&server_key, std::fs::Permissions::from_mode(0o600))
        .expect("chmod 0600 server.key");
    owner.give(&server_key);
    Files {
        ca_cert: dir.join("ca.crt"),
        server_cert: dir.join("server.crt"),
        server_key,
    }
}

/// Runs `openssl` in `dir` with the concatenated `args`; panics with its output on failure.
fn openssl(dir: &Path, args: &[&[&str]]) {
    let args: Vec<&str> = args.concat();
    let output = Command::new("openssl")
        .args(&args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|err| {
            panic!("run openssl (install the `openssl` package; .ci/run does): {err}")
        });
    assert!(
        output.status.success(),
        "openssl {} failed ({}):\n{}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

//! OpenSSH's sshd on 127.0.0.1, as a git server runs it: one account for everyone, keys in its
//! `authorized_keys`, and `ExposeAuthInfo yes`, so that hooks learn which key logged in.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::account::Account;
use super::daemon::{Daemon, on_free_port};
use crate::common::run_ok;

/// The sshd binary (Debian package openssh-server).
pub const SSHD: &str = "/usr/sbin/sshd";

/// A running sshd, stopped when dropped.
pub struct Sshd {
    _daemon: Daemon,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
}

impl Sshd {
    /// Starts sshd with its own host key and configuration under `<dir>/sshd`, letting in only
    /// `accounts`, each with the keys of its `~/.ssh/authorized_keys`.
    pub fn start(dir: &Path, accounts: &[&Account]) -> Sshd {
        // The privilege separation directory, which the service unit creates at boot.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let dir = dir.join("sshd");
        std::fs::create_dir(&dir).unwrap();
        let host_key = dir.join("host_ed25519");
        run_ok(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&host_key),
        );
        let names: Vec<&str> = accounts.iter().map(|a| a.name.as_str()).collect();
        let (daemon, port) = on_free_port(|port| {
            let config = write_config(&dir, port, &host_key, &names);
            Daemon::spawn(
                "sshd",
                Command::new(SSHD).args(["-D", "-e", "-f"]).arg(&config),
                &dir.join(format!("sshd-{port}.log")),
            )
        });
        Sshd {
            _daemon: daemon,
            port,
        }
    }

    /// The ssh command git runs (`core.sshCommand`, or `GIT_SSH_COMMAND`) to log in with
    /// `key` and nothing else: no agent, no configuration file, no known hosts.
    pub fn ssh_command(&self, key: &Path) -> String {
        format!(
            "ssh -F none -i {} -p {} -o IdentitiesOnly=yes -o IdentityAgent=none \
             -o BatchMode=yes -o ConnectTimeout=20 -o StrictHostKeyChecking=no \
             -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            key.display(),
            self.port
        )
    }

    /// The scp-like URL of `path` on this server, as `account` (the port is in the ssh
    /// command).
    pub fn url(&self, account: &Account, path: &str) -> String {
        format!("{}@127.0.0.1:{path}", account.name)
    }
}

fn write_config(dir: &Path, port: u16, host_key: &Path, names: &[&str]) -> PathBuf {
    let config = dir.join(format!("sshd_config-{port}"));
    std::fs::write(
        &config,
        format!(
            "ListenAddress 127.0.0.1:{port}\n\
             HostKey {host_key}\n\
             PidFile none\n\
             UsePAM no\n\
             StrictModes no\n\
             ExposeAuthInfo yes\n\
             AuthorizedKeysFile %h/.ssh/authorized_keys\n\
             AllowUsers {users}\n\
             PermitRootLogin no\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PermitTTY no\n\
             AllowTcpForwarding no\n\
             AllowAgentForwarding no\n\
             X11Forwarding no\n\
             UseDNS no\n\
             PrintMotd no\n\
             LogLevel VERBOSE\n",
            host_key = host_key.display(),
            users = names.join(" "),
        ),
    )
    .unwrap();
    config
}

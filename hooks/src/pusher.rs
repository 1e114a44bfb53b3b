//! Who pushed, as far as the hosting platform tells a hook.
//!
//! Git itself does not authenticate anyone; the platform in front of it does, and passes the
//! identity in the environment (see the platform table in REFERENCES.md). The first source
//! present wins, most specific first. Plain git over ssh usually has everyone push as one
//! account (`git@server`): there, with `ExposeAuthInfo yes` in sshd_config, sshd names the
//! key that logged in (`SSH_USER_AUTH`), and the pusher is that account and that key.

use std::path::Path;

/// The identity of whoever is pushing, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pusher {
    /// Which platform or mechanism said so (`gitlab`, `gitea`, `gitolite`, `github`, `http`,
    /// `ssh`, `unix`).
    pub source: &'static str,
    /// The name it gave.
    pub name: String,
}

impl std::fmt::Display for Pusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.source, self.name)
    }
}

impl Pusher {
    /// Reads the pusher from the process environment.
    pub fn from_env() -> Pusher {
        Pusher::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the pusher through `get` (for tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Pusher {
        let some = |k: &str| get(k).filter(|v| !v.is_empty());
        let platforms: [(&'static str, &str); 5] = [
            ("gitlab", "GL_USERNAME"),
            ("gitea", "GITEA_PUSHER_NAME"),
            ("gitolite", "GL_USER"),
            ("github", "GITHUB_USER_LOGIN"),
            ("http", "REMOTE_USER"),
        ];
        for (source, var) in platforms {
            if let Some(name) = some(var) {
                // GitLab also says which account id (`user-42`, or `key-7` for a deploy key)
                // and which protocol (`ssh`, `http`, `web` for the web editor and merge
                // button) the push came through.
                let name = match (source, some("GL_ID"), some("GL_PROTOCOL")) {
                    ("gitlab", None, None) => name,
                    ("gitlab", id, protocol) => {
                        let details: Vec<String> = id.into_iter().chain(protocol).collect();
                        format!("{name} ({})", details.join(", "))
                    }
                    _ => name,
                };
                return Pusher { source, name };
            }
        }
        let user = some("USER")
            .or_else(|| some("LOGNAME"))
            .unwrap_or_else(|| unix_user().unwrap_or_else(|| "unknown".into()));
        match some("SSH_USER_AUTH").and_then(|path| ssh_login_key(Path::new(&path))) {
            Some(key) => Pusher {
                source: "ssh",
                name: format!("{user} key {key}"),
            },
            None => Pusher {
                source: "unix",
                name: user,
            },
        }
    }
}

/// Largest `SSH_USER_AUTH` file read: sshd writes a line per authentication method.
const MAX_AUTH_INFO: u64 = 64 * 1024;

/// The key sshd says the session logged in with: the first `publickey` line of the
/// `SSH_USER_AUTH` file (sshd_config(5), ExposeAuthInfo), as its SHA-256 fingerprint
/// (`ssh-keygen -l`), or for an OpenSSH certificate its key's fingerprint with the
/// certificate's key id and CA. `None` if the file is missing, unreadable or names no key.
fn ssh_login_key(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_AUTH_INFO)
        .read_to_string(&mut text)
        .ok()?;
    text.lines().find_map(|line| {
        let key = line.strip_prefix("publickey ")?;
        let mut fields = key.split_whitespace();
        let (kind, base64) = (fields.next()?, fields.next()?);
        if kind.ends_with("-cert-v01@openssh.com") {
            use base64ct::Encoding;
            let blob = base64ct::Base64::decode_vec(base64).ok()?;
            let cert = tally_verify::certificate::UserCertificate::parse(&blob).ok()?;
            let fingerprint = |k: ssh_key::public::KeyData| {
                ssh_key::PublicKey::from(k)
                    .fingerprint(ssh_key::HashAlg::Sha256)
                    .to_string()
            };
            return Some(format!(
                "{} (certificate {:?} from CA {})",
                fingerprint(cert.key),
                crate::output::ascii(&cert.key_id),
                fingerprint(cert.ca)
            ));
        }
        let public = ssh_key::PublicKey::from_openssh(&format!("{kind} {base64}")).ok()?;
        Some(public.fingerprint(ssh_key::HashAlg::Sha256).to_string())
    })
}

/// The name of the process's user from `/etc/passwd`, or `uid <n>`, when the environment
/// names nobody (hooks run by daemons often have no `USER`).
fn unix_user() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_owned();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let name = passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        let name = f.next()?;
        (f.nth(1)? == uid).then(|| name.to_owned())
    });
    Some(name.unwrap_or_else(|| format!("uid {uid}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> Pusher {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Pusher::from_lookup(|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn platform_identity_wins_over_unix_user() {
        assert_eq!(
            with(&[("USER", "git"), ("GL_USERNAME", "alice")]).to_string(),
            "gitlab:alice"
        );
        assert_eq!(
            with(&[
                ("GL_USERNAME", "alice"),
                ("GL_ID", "user-42"),
                ("GL_PROTOCOL", "web")
            ])
            .to_string(),
            "gitlab:alice (user-42, web)"
        );
        assert_eq!(
            with(&[("USER", "git"), ("GITEA_PUSHER_NAME", "bob")]).to_string(),
            "gitea:bob"
        );
        assert_eq!(
            with(&[("USER", "git"), ("GL_USER", "carol")]).to_string(),
            "gitolite:carol"
        );
        assert_eq!(
            with(&[("USER", "git"), ("REMOTE_USER", "dan")]).to_string(),
            "http:dan"
        );
    }

    /// A key made with `ssh-keygen -t ed25519`; its fingerprint as `ssh-keygen -lf` prints it.
    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE4P+me5JSfB7ipSHiuZ6ow+Z1k27xTRimmvvQaL5F2H";
    const FINGERPRINT: &str = "SHA256:pbHXq+F4GwdSN6lK9gonD0lug+P+E3z6NWtZ29vRLGo";

    #[test]
    fn sshd_auth_info_names_the_login_key() {
        let dir = tempfile::tempdir().unwrap();
        let auth = dir.path().join("auth");
        std::fs::write(&auth, format!("keyboard-interactive\npublickey {KEY}\n")).unwrap();
        let path = auth.display().to_string();
        assert_eq!(
            with(&[("USER", "git"), ("SSH_USER_AUTH", &path)]).to_string(),
            format!("ssh:git key {FINGERPRINT}")
        );
        // A platform's own identity still wins.
        assert_eq!(
            with(&[("GL_USERNAME", "alice"), ("SSH_USER_AUTH", &path)]).to_string(),
            "gitlab:alice"
        );
        // No key in it, garbage, or no such file: the unix user, as without it.
        for text in ["password\n", "publickey ssh-ed25519 !!!\n", ""] {
            std::fs::write(&auth, text).unwrap();
            assert_eq!(
                with(&[("USER", "git"), ("SSH_USER_AUTH", &path)]).to_string(),
                "unix:git",
                "{text:?}"
            );
        }
        let missing = dir.path().join("missing").display().to_string();
        assert_eq!(
            with(&[("USER", "git"), ("SSH_USER_AUTH", &missing)]).to_string(),
            "unix:git"
        );
    }

    #[test]
    fn falls_back_to_unix_user_then_unknown() {
        assert_eq!(with(&[("USER", "git")]).to_string(), "unix:git");
        assert_eq!(
            with(&[("USER", ""), ("LOGNAME", "op")]).to_string(),
            "unix:op"
        );
        let unnamed = with(&[]).to_string();
        assert!(
            unnamed.starts_with("unix:") && unnamed.len() > 5,
            "{unnamed}"
        );
    }
}

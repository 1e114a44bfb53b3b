//! Who pushed, as far as the hosting platform tells a hook.
//!
//! Git itself does not authenticate anyone; the platform in front of it does, and passes the
//! identity in the environment (see the platform table in REFERENCES.md). The first source
//! present wins, most specific first.

/// The identity of whoever is pushing, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pusher {
    /// Which platform or mechanism said so (`gitlab`, `gitea`, `gitolite`, `github`, `http`,
    /// `unix`).
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
        let sources: [(&'static str, &str); 6] = [
            ("gitlab", "GL_USERNAME"),
            ("gitea", "GITEA_PUSHER_NAME"),
            ("gitolite", "GL_USER"),
            ("github", "GITHUB_USER_LOGIN"),
            ("http", "REMOTE_USER"),
            ("unix", "USER"),
        ];
        for (source, var) in sources {
            if let Some(name) = some(var) {
                return Pusher { source, name };
            }
        }
        Pusher {
            source: "unix",
            name: some("LOGNAME")
                .unwrap_or_else(|| unix_user().unwrap_or_else(|| "unknown".into())),
        }
    }
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

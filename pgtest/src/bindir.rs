//! Finding the PostgreSQL server programs (`initdb`, `postgres`, `psql`, `pg_isready`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the programs may be, in the order they are tried.
pub(crate) struct Sources {
    /// `PG_BIN`: when set it is the only place looked at, so a wrong value is reported instead of
    /// silently testing against another installation.
    pub(crate) pg_bin: Option<OsString>,
    /// What `pg_config --bindir` printed. On Debian `pg_config` also comes with `libpq-dev`
    /// alone, so its directory is used only if the server programs are really there.
    pub(crate) pg_config_bindir: Option<PathBuf>,
    /// The directory holding Debian's versioned installations (`/usr/lib/postgresql/<v>/bin`).
    pub(crate) versioned_root: PathBuf,
    /// `PATH`.
    pub(crate) path: Option<OsString>,
}

/// Why no directory was found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Missing {
    /// `PG_BIN` names a directory without `initdb` and `postgres`.
    PgBin(PathBuf),
    /// Nothing anywhere: PostgreSQL is not installed.
    NotInstalled,
}

impl Missing {
    /// Says what is missing and how to fix it, for the panic message.
    pub(crate) fn message(&self) -> String {
        match self {
            Missing::PgBin(dir) => format!(
                "PG_BIN={} has no initdb and postgres: point PG_BIN at a PostgreSQL bin directory \
                 or unset it",
                dir.display()
            ),
            Missing::NotInstalled => "PostgreSQL is not installed (no PG_BIN, no initdb from \
                 `pg_config --bindir`, none in /usr/lib/postgresql/*/bin or on PATH): install \
                 the `postgresql` package (apt-get install postgresql); .ci/run does"
                .to_owned(),
        }
    }
}

impl Sources {
    /// Reads the sources from this process's environment.
    pub(crate) fn from_environment() -> Sources {
        let pg_config_bindir = Command::new("pg_config")
            .arg("--bindir")
            .output()
            .ok()
            .filter(|out| out.status.success())
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .map(|dir| PathBuf::from(dir.trim()));
        Sources {
            pg_bin: std::env::var_os("PG_BIN").filter(|dir| !dir.is_empty()),
            pg_config_bindir,
            versioned_root: PathBuf::from("/usr/lib/postgresql"),
            path: std::env::var_os("PATH"),
        }
    }

    /// Returns the first directory holding the server programs.
    pub(crate) fn search(&self) -> Result<PathBuf, Missing> {
        if let Some(dir) = &self.pg_bin {
            let dir = PathBuf::from(dir);
            return if has_server(&dir) {
                Ok(dir)
            } else {
                Err(Missing::PgBin(dir))
            };
        }
        if let Some(dir) = self.pg_config_bindir.as_ref().filter(|dir| has_server(dir)) {
            return Ok(dir.clone());
        }
        if let Some(dir) = highest_version(&self.versioned_root) {
            return Ok(dir);
        }
        self.on_path().ok_or(Missing::NotInstalled)
    }

    /// Finds `initdb` on `PATH` and returns the directory it really lives in: a symlink such as
    /// `/usr/local/bin/initdb` has `postgres` and `psql` beside its target, not beside itself.
    fn on_path(&self) -> Option<PathBuf> {
        let path = self.path.as_ref()?;
        std::env::split_paths(path)
            .map(|dir| dir.join("initdb"))
            .filter(|initdb| initdb.is_file())
            .filter_map(|initdb| initdb.canonicalize().ok())
            .filter_map(|initdb| initdb.parent().map(Path::to_path_buf))
            .find(|dir| has_server(dir))
    }
}

/// Returns `<root>/<highest version>/bin` among those holding the server programs.
fn highest_version(root: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(root).ok()?;
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = version_key(entry.file_name().to_str()?)?;
            let bin = entry.path().join("bin");
            has_server(&bin).then_some((version, bin))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, bin)| bin)
}

/// Parses `15` or `9.6` into numbers that compare as versions do (`9.6` < `13` < `15`).
fn version_key(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

/// Tells whether `dir` holds the two programs a server needs.
fn has_server(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("postgres").is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_install(dir: &Path) {
        std::fs::create_dir_all(dir).expect("create fake bin dir");
        for program in ["initdb", "postgres"] {
            std::fs::write(dir.join(program), "").expect("write fake program");
        }
    }

    fn nothing(root: &Path) -> Sources {
        Sources {
            pg_bin: None,
            pg_config_bindir: None,
            versioned_root: root.join("usr-lib-postgresql"),
            path: None,
        }
    }

    #[test]
    fn nothing_installed_says_to_install_postgresql() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let missing = nothing(tmp.path())
            .search()
            .expect_err("nothing is installed");
        assert_eq!(missing, Missing::NotInstalled);
        assert!(
            missing
                .message()
                .contains("install the `postgresql` package")
        );
    }

    #[test]
    fn pg_bin_is_the_only_place_looked_at_when_set() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut sources = nothing(tmp.path());
        fake_install(&sources.versioned_root.join("15/bin"));
        sources.pg_bin = Some(tmp.path().join("empty").into());
        assert_eq!(
            sources.search(),
            Err(Missing::PgBin(tmp.path().join("empty")))
        );
        fake_install(&tmp.path().join("empty"));
        assert_eq!(sources.search(), Ok(tmp.path().join("empty")));
    }

    #[test]
    fn pg_config_without_the_server_falls_through() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut sources = nothing(tmp.path());
        // libpq-dev's pg_config names a directory that has only client programs.
        sources.pg_config_bindir = Some(tmp.path().join("client-only"));
        fake_install(&sources.versioned_root.join("15/bin"));
        assert_eq!(sources.search(), Ok(sources.versioned_root.join("15/bin")));
    }

    #[test]
    fn highest_version_wins_numerically() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let sources = nothing(tmp.path());
        for version in ["9.6", "13", "15"] {
            fake_install(&sources.versioned_root.join(version).join("bin"));
        }
        // A version directory without the server (client-only package) is not chosen.
        std::fs::create_dir_all(sources.versioned_root.join("17/bin")).expect("mkdir");
        assert_eq!(sources.search(), Ok(sources.versioned_root.join("15/bin")));
    }

    #[test]
    fn path_symlink_resolves_to_the_real_bin_dir() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut sources = nothing(tmp.path());
        let real = tmp.path().join("real/bin");
        fake_install(&real);
        let local = tmp.path().join("local-bin");
        std::fs::create_dir_all(&local).expect("mkdir");
        std::os::unix::fs::symlink(real.join("initdb"), local.join("initdb")).expect("symlink");
        sources.path = Some(local.into());
        assert_eq!(
            sources.search(),
            Ok(real.canonicalize().expect("canonicalize"))
        );
    }
}

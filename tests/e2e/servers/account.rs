//! Unix accounts that host repositories, made for one test with `useradd` and removed with
//! `userdel -r` when dropped (also when the test panics), and commands run as them.

use std::ffi::OsStr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::{Key, TALLY, passwd_turn, run_ok, stdout_of};

/// Numbers account names, which are `tsv<pid><n>`: unique per process and per test thread.
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A unix account hosting repositories, removed when dropped.
pub struct Account {
    /// Its login name.
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Its primary gid.
    pub gid: u32,
    /// Its home directory (`<parent>/<name>`), which `userdel -r` removes.
    pub home: PathBuf,
}

impl Account {
    /// A new account whose home is `<parent>/<name>` and whose login shell is `shell`.
    ///
    /// Its password field is `*`: no password logs in, but the account is not locked. Debian's
    /// useradd would leave `!`, which sshd without PAM reads as a locked account and refuses
    /// even a key.
    pub fn create(parent: &Path, shell: &Path) -> Account {
        let _turn = passwd_turn();
        for _ in 0..10 {
            let name = format!(
                "tsv{}{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::SeqCst)
            );
            let home = parent.join(&name);
            let out = Command::new("useradd")
                .arg("--home-dir")
                .arg(&home)
                .args(["--no-create-home", "--user-group", "--password", "*"])
                .arg("--shell")
                .arg(shell)
                .arg(&name)
                .output()
                .unwrap();
            // 9: the name is taken (left over from a run that was killed); take the next one.
            if out.status.code() == Some(9) {
                continue;
            }
            assert!(out.status.success(), "useradd {name}: {out:?}");
            let user = nix::unistd::User::from_name(&name)
                .unwrap()
                .expect("useradd just made it");
            let account = Account {
                name,
                uid: user.uid.as_raw(),
                gid: user.gid.as_raw(),
                home,
            };
            account.mkdir(&account.home);
            return account;
        }
        panic!("no free account name tsv{}<n>", std::process::id());
    }

    /// `program`, run as this account with a clean environment (`HOME`, `USER`, `LOGNAME`,
    /// `PATH`), in its home directory: what `sudo -u <account>` gives an administrator.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.uid(self.uid)
            .gid(self.gid)
            .env_clear()
            .env("HOME", &self.home)
            .env("USER", &self.name)
            .env("LOGNAME", &self.name)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("LC_ALL", "C")
            .env("TZ", "UTC")
            .current_dir(&self.home)
            .stdin(Stdio::null());
        cmd
    }

    /// `git` run as this account in `dir`.
    pub fn git(&self, dir: &Path) -> Command {
        let mut cmd = self.command("git");
        cmd.current_dir(dir);
        cmd
    }

    /// Creates a directory owned by this account.
    pub fn mkdir(&self, dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        std::os::unix::fs::chown(dir, Some(self.uid), Some(self.gid)).unwrap();
    }

    /// Writes a file owned by this account (mode 0644).
    pub fn write(&self, path: &Path, contents: &str) {
        std::fs::write(path, contents).unwrap();
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid)).unwrap();
    }

    /// Lets `keys` log in over ssh: `~/.ssh/authorized_keys`.
    pub fn authorize(&self, keys: &[&Key]) {
        let dir = self.home.join(".ssh");
        self.mkdir(&dir);
        let lines: String = keys
            .iter()
            .map(|k| format!("{}\n", std::fs::read_to_string(&k.public).unwrap().trim()))
            .collect();
        self.write(&dir.join("authorized_keys"), &lines);
    }

    /// A new bare repository `<home>/<name>.git` whose `HEAD` names `main`, made by this
    /// account.
    pub fn bare_repo(&self, name: &str) -> PathBuf {
        let path = self.home.join(format!("{name}.git"));
        run_ok(
            self.git(&self.home)
                .args(["init", "-q", "--bare", "--initial-branch=main"])
                .arg(&path),
        );
        path
    }

    /// Every file and directory under `dir` that another user than this account owns.
    pub fn foreign_files(&self, dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.uid() != self.uid {
                out.push(format!("{} (uid {})", path.display(), meta.uid()));
            }
            if meta.is_dir() {
                out.extend(self.foreign_files(&path));
            }
        }
        out
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        // userdel refuses an account that still runs a process; sshd's session processes of
        // the last push may still be exiting.
        let deadline = Instant::now() + Duration::from_secs(10);
        while processes_of(self.uid) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _turn = passwd_turn();
        match Command::new("userdel").arg("-r").arg(&self.name).output() {
            Ok(out) if out.status.success() => {}
            other => eprintln!("userdel -r {} failed: {other:?}", self.name),
        }
    }
}

/// How many processes run as `uid`.
fn processes_of(uid: u32) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| std::fs::metadata(e.path()).is_ok_and(|m| m.uid() == uid))
        .count()
}

/// Whether the tests run as root, which creating accounts and running sshd need.
pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// A fresh ed25519 key to log in with (not to sign with), `<dir>/<name>` and its `.pub`, with
/// its fingerprint as `ssh-keygen -lf` prints it.
pub fn login_key(dir: &Path, name: &str) -> Key {
    let private = dir.join(name);
    run_ok(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C"])
            .arg(format!("{name}-login"))
            .arg("-f")
            .arg(&private),
    );
    let public = dir.join(format!("{name}.pub"));
    let text = std::fs::read_to_string(&public).unwrap();
    let mut fields = text.split_whitespace();
    let public_line = format!("{} {}", fields.next().unwrap(), fields.next().unwrap());
    let listing = stdout_of(Command::new("ssh-keygen").arg("-lf").arg(&public));
    let fingerprint = listing.split_whitespace().nth(1).unwrap().to_owned();
    assert!(fingerprint.starts_with("SHA256:"), "{listing}");
    Key {
        private,
        public,
        public_line,
        fingerprint,
    }
}

/// The tally binary where every account can run it: the one cargo built when every directory
/// above it lets other users through and the file is theirs to run, else a copy in `dir`. The
/// hooks `tally init` writes name the binary that ran it, so init must run this one.
pub fn tally_for_accounts(dir: &Path) -> PathBuf {
    let built = Path::new(TALLY);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode();
    let reachable = mode(built) & 0o005 == 0o005
        && built
            .ancestors()
            .skip(1)
            .filter(|d| !d.as_os_str().is_empty())
            .all(|d| mode(d) & 0o001 != 0);
    if reachable {
        return built.to_owned();
    }
    let copy = dir.join("bin").join("tally");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::set_permissions(copy.parent().unwrap(), PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::copy(built, &copy).unwrap();
    std::fs::set_permissions(&copy, PermissionsExt::from_mode(0o755)).unwrap();
    copy
}

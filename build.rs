//! Puts the commit and the build date into `tally --version`, so that a bug report or an
//! audit names exactly which build ran: `tally 0.1.0 (commit 537da16c2f1e, built 2026-12-06)`.
//!
//! The commit comes from `git rev-parse` when the source is a git checkout, else "unknown
//! commit" (a source tarball). The date is the day the build script ran for this commit, in
//! UTC, or `SOURCE_DATE_EPOCH`'s day when set (reproducible builds).

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_owned())
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]);
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        // A commit or a checkout changes HEAD or the ref it names.
        println!("cargo:rerun-if-changed={dir}/HEAD");
        if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]) {
            let common = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"])
                .unwrap_or_else(|| dir.clone());
            println!("cargo:rerun-if-changed={common}/{head}");
            println!("cargo:rerun-if-changed={common}/packed-refs");
        }
    }
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let commit = commit.map_or_else(|| "unknown commit".to_owned(), |c| format!("commit {c}"));
    let seconds = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .or_else(|| {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
            i64::try_from(now.as_secs()).ok()
        });
    let date = seconds.map_or_else(
        || "unknown date".to_owned(),
        |s| {
            let (y, m, d) = civil(s.div_euclid(86_400));
            format!("{y:04}-{m:02}-{d:02}")
        },
    );
    println!(
        "cargo:rustc-env=TALLY_VERSION={} ({commit}, built {date})",
        env!("CARGO_PKG_VERSION")
    );
}

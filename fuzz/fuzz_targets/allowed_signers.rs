//! Feeds arbitrary bytes to the `allowed_signers` parser and to the checks built on its result.
//!
//! Whatever the file holds, nothing may panic; parse errors are expected and ignored. The time
//! zone is fixed, with daylight saving time, so that local times take every branch of the
//! `mktime(3)` emulation and a crash reproduces on any host.
#![no_main]

use std::sync::LazyLock;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use libfuzzer_sys::fuzz_target;
use tally_verify::signers::{AllowedSigners, match_pattern_list};

static TZ: LazyLock<TimeZone> = LazyLock::new(|| {
    TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").expect("a valid POSIX TZ string")
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The pattern matcher on its own: the first line against the rest as a pattern-list.
    if let Some((s, list)) = text.split_once('\n') {
        let _ = match_pattern_list(s, list);
    }
    let Ok(signers) = AllowedSigners::parse_in(text, &TZ) else {
        return;
    };
    for entry in signers.entries() {
        let _ = entry.matches_principal("alice@example.com");
        let _ = entry.allows_namespace("git");
        let _ = entry.check_validity(Timestamp::UNIX_EPOCH);
        let _ = entry.check_validity(Timestamp::MAX);
        // Every line is found again by its own key, under the right kind.
        let found = if entry.cert_authority {
            signers
                .authorities_for_key(&entry.key)
                .any(|e| e.line == entry.line)
        } else {
            signers
                .entries_for_key(&entry.key)
                .any(|e| e.line == entry.line)
        };
        assert!(found, "line {} is not found by its key", entry.line);
    }
});

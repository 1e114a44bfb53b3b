//! Feeds arbitrary bundles to `tally export verify`: the input is cut at 0xFF bytes into the
//! files of a bundle directory (an auditor receives every byte from the party being audited).
//! Verification must fail cleanly, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

const FILES: &[&str] = &[
    "MANIFEST",
    "MANIFEST.sig",
    "export.json",
    "checkpoint",
    "ledger.bin",
    "entries.jsonl",
    "entries.csv",
    "ledger_key.pub",
    "policy.toml",
    "allowed_signers",
    "README",
];

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    for (name, part) in FILES.iter().zip(data.split(|b| *b == 0xFF)) {
        if std::fs::write(dir.path().join(name), part).is_err() {
            return;
        }
    }
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
    let _ = tally_ledger::export::verify_bundle(dir.path(), &key);
});

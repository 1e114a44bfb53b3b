//! Feeds arbitrary text to the checkpoint note parser and verifier (agents read notes from a
//! server they do not trust), and to the verifier-key and frontier parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tally_ledger::{Frontier, SignedCheckpoint, VerifierKey};

fuzz_target!(|data: &[u8]| {
    let _ = Frontier::from_bytes(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = VerifierKey::parse(text);
    if let Ok(note) = SignedCheckpoint::parse(text) {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
        if let Ok(vkey) = VerifierKey::new(&note.unverified().origin, key) {
            let _ = note.verify(&vkey);
        }
    }
});

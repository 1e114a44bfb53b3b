//! Feeds arbitrary bytes to the binary SSHSIG parser (keys, certificates, signatures) and
//! verifies whatever parses against a fixed payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tally_verify::sshsig::SshSig;

fuzz_target!(|data: &[u8]| {
    if let Ok(sig) = SshSig::from_blob(data) {
        let _ = sig.verify("git", b"payload");
    }
});

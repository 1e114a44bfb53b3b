//! Feeds arbitrary bytes to the commit parser and, when a signature is split off, to the
//! SSHSIG parser and verifier: a hostile push controls every byte of both.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tally_verify::commit::{Commit, SignatureHeader};
use tally_verify::sshsig::SshSig;

fuzz_target!(|data: &[u8]| {
    let id = gix::ObjectId::null(gix::hash::Kind::Sha1);
    for sha256 in [false, true] {
        let Ok(commit) = Commit::parse(id, data, sha256) else {
            continue;
        };
        if let SignatureHeader::One { signature, payload } = &commit.signature {
            if let Ok(sig) = SshSig::from_armored(signature) {
                let _ = sig.verify("git", payload);
            }
        }
    }
});

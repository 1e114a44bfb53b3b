//! Feeds arbitrary bytes to the tree-object parser and git's tree-entry rules: a hostile push
//! controls every byte of a tree object, and the rules run before anything else reads it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tally_verify::tree;

fuzz_target!(|data: &[u8]| {
    let hash = gix::hash::Kind::Sha1;
    for entry in tree::entries(data, hash).flatten() {
        let _ = entry.kind();
        let _ = tree::is_dotgit(entry.name);
    }
    let _ = tree::check(data, hash);
});

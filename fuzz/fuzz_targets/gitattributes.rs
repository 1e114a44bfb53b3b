//! Feeds arbitrary bytes to the `.gitattributes` reader: a hostile push controls the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tally_verify::attributes;

fuzz_target!(|data: &[u8]| {
    for line in attributes::check(data) {
        assert!(line.line >= 1);
        assert!(line.text.is_ascii());
    }
});

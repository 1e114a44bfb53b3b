//! Feeds arbitrary bytes to the YAML syntax check, under the default limits and under tight ones.
//!
//! Whatever the file holds, nothing may panic or overflow the stack, and refusals are expected.
//! The tight limits reach every limit (depth, aliases, expansion, documents) with small inputs.
//! Every check is monotone in the limits, so a file that passes the tight limits must pass the
//! default ones too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tally_verify::syntax::{Format, Limits, validate};

const TIGHT: Limits = Limits {
    max_depth: 6,
    max_yaml_aliases: 8,
    max_yaml_expanded_nodes: 64,
    max_documents: 3,
    allowed_yaml_tags: Vec::new(),
};

fuzz_target!(|data: &[u8]| {
    let default = validate(Format::Yaml, data, &Limits::default());
    let tight = validate(Format::Yaml, data, &TIGHT);
    assert!(
        !(tight.is_ok() && default.is_err()),
        "passes the tight limits but not the default ones: {default:?}"
    );
});

//! Feeds arbitrary bytes to the ledger's entry decoder (stored rows, published entries and
//! export bundles are all read with it): strict decoding must never panic, and whatever
//! decodes must encode back to exactly the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tally_ledger::{Entry, EntryView};

fuzz_target!(|data: &[u8]| {
    if let Ok(view) = EntryView::parse(data) {
        let entry = view.to_entry();
        assert_eq!(entry.encode().expect("a decoded entry encodes"), data);
    }
    let _ = Entry::decode(data);
});

//! One ticket's changes from a peer, imported as a server or a tablet does. See README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| daiban_fuzz::import_changes(data));

//! A sync body as a server (request) or a tablet (response) decodes it, then each ticket's
//! changes imported as the server does. See README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| daiban_fuzz::decode_request(data));

//! ANSI INCITS 378-2004 record decoder: never panics, and whatever it accepts re-encodes to a
//! record that decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use matcher::template::ansi378;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = ansi378::decode(data) {
        let bytes = ansi378::encode(&record).expect("a decoded record re-encodes");
        let again = ansi378::decode(&bytes).expect("a re-encoded record decodes");
        assert_eq!(again, record);
    }
});

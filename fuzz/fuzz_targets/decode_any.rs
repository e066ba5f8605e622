//! Format sniffing plus either record decoder, and the CardFormat front door: never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use matcher::template::{self, CardFormat, Format};

fuzz_target!(|data: &[u8]| {
    if let Ok((format, record)) = template::decode_any(data) {
        assert_eq!(format, record.format());
        assert_eq!(record.fingerprints().len(), record.views().len());
        if format == Format::Iso19794_2_2005 {
            assert!(template::iso19794::decode(data).is_ok());
        }
    }
    for f in [CardFormat::Record, CardFormat::Normal, CardFormat::Compact] {
        let _ = template::decode(data, f, 500);
    }
});

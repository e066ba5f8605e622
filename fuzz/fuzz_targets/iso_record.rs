//! ISO/IEC 19794-2:2005 record decoder: never panics, and whatever it accepts re-encodes to a
//! record that decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use matcher::template::iso19794;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = iso19794::decode(data) {
        let bytes = iso19794::encode(&record).expect("a decoded record re-encodes");
        let again = iso19794::decode(&bytes).expect("a re-encoded record decodes");
        assert_eq!(again, record);
        for fp in record.fingerprints() {
            for m in &fp.minutiae {
                assert!(m.x < fp.width as f32 && m.y < fp.height as f32);
            }
        }
    }
});

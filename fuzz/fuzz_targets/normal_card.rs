//! Normal size card decoder: never panics; what it accepts encodes again without error and
//! keeps its minutiae count.
#![no_main]

use libfuzzer_sys::fuzz_target;
use matcher::template::card;

fuzz_target!(|data: &[u8]| {
    if let Ok(fp) = card::decode_normal(data, 500, 255) {
        let bytes = card::encode_normal(&fp, 255).expect("a decoded card template re-encodes");
        assert_eq!(bytes.len(), data.len());
    }
});

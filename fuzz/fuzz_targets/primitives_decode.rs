//! Decoding untrusted bytes into any primitive type never panics, and every
//! accepted input is the canonical encoding of the value it decodes to.
//! Hex `FromStr` for the 32-byte types never panics and accepts exactly 64
//! hex digits, which `Display` gives back (lower-case).
#![no_main]

use idlegrid_primitives::*;
use libfuzzer_sys::fuzz_target;

fn check<T: serde::Serialize + serde::de::DeserializeOwned>(data: &[u8]) {
    if let Ok(v) = decode::<T>(data, 4096) {
        assert_eq!(encode(&v), data, "accepted a non-canonical encoding");
        assert_eq!(encoded_len(&v), data.len());
    }
}

fn check_hex<T: core::str::FromStr + core::fmt::Display>(s: &str) {
    if let Ok(v) = s.parse::<T>() {
        assert_eq!(v.to_string(), s.to_ascii_lowercase(), "hex round trip");
    }
}

fuzz_target!(
    init: idlegrid_fuzz::write_seeds([
        encode(&(Round::new(3), Epoch::new(300), vec![Digest::hash(Domain::new("x"), b"y")], Some(Amount::new(7)), "hi".to_string())),
        encode(&vec![vec![1u8, 2, 3], vec![]]),
        Digest::hash(Domain::new("x"), b"y").to_string().into_bytes(),
    ]),
    |data: &[u8]| {
        check::<Amount>(data);
        check::<Timestamp>(data);
        check::<Duration>(data);
        check::<Digest>(data);
        check::<NodeId>(data);
        check::<AccountId>(data);
        check::<PublicKey>(data);
        check::<Signature>(data);
        check::<VrfOutput>(data);
        check::<VrfProof>(data);
        check::<Commitment>(data);
        check::<Salt>(data);
        check::<(Round, Epoch, Vec<Digest>, Option<Amount>, String)>(data);
        check::<Vec<Vec<u8>>>(data);
        if let Ok(s) = core::str::from_utf8(data) {
            check_hex::<Digest>(s);
            check_hex::<NodeId>(s);
            check_hex::<AccountId>(s);
            check_hex::<PublicKey>(s);
            check_hex::<Salt>(s);
            check_hex::<VrfOutput>(s);
        }
    }
);

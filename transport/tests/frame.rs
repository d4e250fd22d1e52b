//! The frame decoder on untrusted bytes: typed errors, never a panic, and
//! canonical (every accepted frame re-encodes to the same bytes).

use idlegrid_transport::frame::{EphemeralKey, HEADER_LEN, Hello, Nonce};
use idlegrid_transport::{
    Envelope, FrameError, FrameLimit, MAX_FRAME_LEN, WIRE_VERSION, decode_frame,
    decode_frame_exact, encode_frame, strategies,
};
use proptest::prelude::*;

fn limit() -> FrameLimit {
    FrameLimit::new(1024).unwrap()
}

/// Decodes `bytes` and, if accepted, checks canonicity.
fn check(bytes: &[u8], limit: FrameLimit) -> Result<(), TestCaseError> {
    if let Ok((env, used)) = decode_frame(bytes, limit) {
        prop_assert!(used <= bytes.len());
        prop_assert_eq!(&encode_frame(&env, limit).unwrap()[..], &bytes[..used]);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decoding_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        check(&bytes, limit())?;
    }

    #[test]
    fn decoding_random_bytes_with_a_valid_header_never_panics(
        kind in 0u8..6,
        len in any::<u32>(),
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut bytes = vec![WIRE_VERSION, kind];
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&body);
        check(&bytes, limit())?;
    }

    #[test]
    fn mutated_frames_never_panic(bytes in strategies::mutated_frame_bytes(64)) {
        check(&bytes, limit())?;
    }

    #[test]
    fn frames_round_trip(env in strategies::envelope(2048)) {
        let bytes = encode_frame(&env, FrameLimit::DEFAULT).unwrap();
        prop_assert_eq!(decode_frame_exact(&bytes, FrameLimit::DEFAULT).unwrap(), env);
    }

    #[test]
    fn every_strict_prefix_is_truncated(bytes in strategies::frame_bytes(64)) {
        for cut in 0..bytes.len() {
            let is_truncated = matches!(
                decode_frame(&bytes[..cut], FrameLimit::DEFAULT),
                Err(FrameError::Truncated { .. })
            );
            prop_assert!(is_truncated, "prefix of {} bytes", cut);
        }
    }
}

#[test]
fn typed_errors_for_bad_frames() {
    let data = encode_frame(&Envelope::Data(vec![5; 100]), limit()).unwrap();
    // Truncated.
    assert_eq!(
        decode_frame(&data[..50], limit()),
        Err(FrameError::Truncated {
            needed: HEADER_LEN + 100,
            got: 50
        })
    );
    // Oversized: the limit is enforced from the header, before any body.
    let small = FrameLimit::new(99).unwrap();
    assert_eq!(
        decode_frame(&data[..HEADER_LEN], small),
        Err(FrameError::TooLarge { len: 100, max: 99 })
    );
    let mut huge = data[..HEADER_LEN].to_vec();
    huge[2..6].copy_from_slice(&(MAX_FRAME_LEN as u32 + 1).to_le_bytes());
    assert!(matches!(
        decode_frame(&huge, FrameLimit::new(MAX_FRAME_LEN).unwrap()),
        Err(FrameError::TooLarge { .. })
    ));
    // Garbage and wrong version.
    assert!(matches!(
        decode_frame(b"\x00garbage", limit()),
        Err(FrameError::UnsupportedVersion { got: 0, .. })
    ));
    let mut v2 = data.clone();
    v2[0] = WIRE_VERSION + 1;
    assert!(matches!(
        decode_frame(&v2, limit()),
        Err(FrameError::UnsupportedVersion { .. })
    ));
    // A non-canonical handshake body (trailing byte inside the frame).
    let hello = Envelope::Hello(Hello {
        node: idlegrid_transport::NodeId::from_bytes([1; 32]),
        nonce: Nonce::from_bytes([2; 32]),
        ephemeral: EphemeralKey::from_bytes([3; 32]),
    });
    let mut bytes = encode_frame(&hello, limit()).unwrap();
    bytes.push(0);
    let n = (bytes.len() - HEADER_LEN) as u32;
    bytes[2..6].copy_from_slice(&n.to_le_bytes());
    assert!(matches!(
        decode_frame(&bytes, limit()),
        Err(FrameError::Malformed { kind: "hello", .. })
    ));
}

//! Proptest strategies for the wire types (feature `strategies`).
//!
//! ```
//! use idlegrid_transport::{FrameLimit, decode_frame, encode_frame, strategies};
//! use proptest::prelude::*;
//!
//! proptest!(|(env in strategies::envelope(256))| {
//!     let bytes = encode_frame(&env, FrameLimit::DEFAULT).unwrap();
//!     prop_assert_eq!(decode_frame(&bytes, FrameLimit::DEFAULT).unwrap(), (env, bytes.len()));
//! });
//! ```

use idlegrid_primitives::strategies as prim;
use proptest::prelude::*;

use crate::frame::{Auth, Envelope, EphemeralKey, FrameLimit, Hello, Nonce, encode_frame};

/// Any nonce.
pub fn nonce() -> impl Strategy<Value = Nonce> {
    any::<[u8; 32]>().prop_map(Nonce::from_bytes)
}

/// A `Hello` with an arbitrary (not necessarily valid) identity.
pub fn hello() -> impl Strategy<Value = Hello> {
    (prim::bytes32(), nonce(), any::<[u8; 32]>()).prop_map(|(b, nonce, e)| Hello {
        node: idlegrid_primitives::NodeId::from_bytes(b),
        nonce,
        ephemeral: EphemeralKey::from_bytes(e),
    })
}

/// An `Auth` with arbitrary signature bytes.
pub fn auth() -> impl Strategy<Value = Auth> {
    prim::signature_bytes().prop_map(|signature| Auth { signature })
}

/// Any envelope, with `Data` payloads of at most `max_data` bytes.
pub fn envelope(max_data: usize) -> impl Strategy<Value = Envelope> {
    prop_oneof![
        hello().prop_map(Envelope::Hello),
        auth().prop_map(Envelope::Auth),
        proptest::collection::vec(any::<u8>(), 0..=max_data).prop_map(Envelope::Data),
        Just(Envelope::Ping),
    ]
}

/// The bytes of a valid frame (payloads of at most `max_data` bytes).
pub fn frame_bytes(max_data: usize) -> impl Strategy<Value = Vec<u8>> {
    envelope(max_data)
        .prop_map(|e| encode_frame(&e, FrameLimit::DEFAULT).expect("within the default limit"))
}

/// A valid frame with a few bytes overwritten, truncated or extended: the
/// decoder's favourite food.
pub fn mutated_frame_bytes(max_data: usize) -> impl Strategy<Value = Vec<u8>> {
    (
        frame_bytes(max_data),
        proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        any::<usize>(),
        proptest::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(|(mut bytes, flips, cut, tail)| {
            for (i, b) in flips {
                if !bytes.is_empty() {
                    let n = bytes.len();
                    bytes[i % n] = b;
                }
            }
            bytes.truncate(cut % (bytes.len() + 1));
            bytes.extend(tail);
            bytes
        })
}

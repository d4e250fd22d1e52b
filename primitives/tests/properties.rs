//! Property tests for the primitives' laws.

use idlegrid_primitives::strategies as st;
use idlegrid_primitives::*;
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

const D1: Domain = Domain::new("idlegrid/test/one");
const D2: Domain = Domain::new("idlegrid/test/two");

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + core::fmt::Debug>(v: &T) {
    let bytes = encode(v);
    assert_eq!(encoded_len(v), bytes.len());
    let back: T = decode(&bytes, bytes.len()).expect("canonical bytes decode");
    assert_eq!(&back, v);
    // JSON (human-readable) round-trips too.
    let json = serde_json::to_string(v).unwrap();
    let back: T = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, v);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn encode_decode_round_trip_every_type(
        a in st::amount(), t in st::timestamp(), d in st::duration(), r in st::round(),
        e in st::epoch(), g in st::digest(), s in st::seed(), salt in st::salt(),
        c in st::commitment(), n in st::node_id(), acc in st::account_id(), pk in st::public_key(),
    ) {
        round_trip(&a); round_trip(&t); round_trip(&d); round_trip(&r); round_trip(&e);
        round_trip(&g); round_trip(&s); round_trip(&salt); round_trip(&c); round_trip(&n);
        round_trip(&acc); round_trip(&pk);
    }

    #[test]
    fn signature_round_trip(seed in st::seed(), msg in proptest::collection::vec(any::<u8>(), 0..64)) {
        let kp = Keypair::from_seed(&seed);
        let sig = kp.sign(D1, &msg);
        round_trip(&sig);
        let (_, out, proof) = kp.vrf_sign(D1, &msg);
        round_trip(&out);
        round_trip(&proof);
    }

    #[test]
    fn decoding_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        // Each result is either an error or a value that re-encodes to the input.
        macro_rules! check { ($($t:ty),*) => { $(
            if let Ok(v) = decode::<$t>(&bytes, 256) { prop_assert_eq!(encode(&v), bytes.clone()); }
        )* } }
        check!(Amount, Timestamp, Duration, Round, Epoch, Digest, NodeId, Signature, Commitment,
               (Round, Vec<Digest>, Option<Amount>), Vec<Vec<u8>>, String, bool);
    }

    #[test]
    fn non_canonical_encodings_are_rejected(v in 0u64..(1 << 56)) {
        // Pad the varint with a redundant continuation byte: same value, longer encoding.
        let mut bytes = encode(&Round::new(v));
        let last = bytes.len() - 1;
        bytes[last] |= 0x80;
        bytes.push(0x00);
        prop_assert!(decode::<Round>(&bytes, 64).is_err());
    }

    #[test]
    fn signature_binds_key_message_and_domain(
        s1 in st::seed(), s2 in st::seed(), msg in proptest::collection::vec(any::<u8>(), 0..64),
        other in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        prop_assume!(s1 != s2 && msg != other);
        let k1 = Keypair::from_seed(&s1);
        let k2 = Keypair::from_seed(&s2);
        let sig = k1.sign(D1, &msg);
        prop_assert!(k1.public().verify(D1, &msg, &sig).is_ok());
        prop_assert_eq!(k2.public().verify(D1, &msg, &sig), Err(CryptoError::BadSignature));
        prop_assert_eq!(k1.public().verify(D1, &other, &sig), Err(CryptoError::BadSignature));
        prop_assert_eq!(k1.public().verify(D2, &msg, &sig), Err(CryptoError::BadSignature));
    }

    #[test]
    fn commitment_binds_value_and_salt(
        v in any::<u64>(), w in any::<u64>(), s1 in st::salt(), s2 in st::salt(),
    ) {
        prop_assume!(v != w && s1 != s2);
        let c = Commitment::to(D1, &v, &s1);
        prop_assert!(c.open(D1, &v, &s1).is_ok());
        prop_assert!(c.open(D1, &w, &s1).is_err());
        prop_assert!(c.open(D1, &v, &s2).is_err());
        prop_assert!(c.open(D2, &v, &s1).is_err());
    }

    #[test]
    fn amount_arithmetic_is_checked(a in any::<u128>(), b in any::<u128>()) {
        let (x, y) = (Amount::new(a), Amount::new(b));
        match a.checked_add(b) {
            Some(s) => prop_assert_eq!(x.checked_add(y), Ok(Amount::new(s))),
            None => prop_assert_eq!(x.checked_add(y), Err(AmountError::Overflow)),
        }
        match a.checked_sub(b) {
            Some(s) => prop_assert_eq!(x.checked_sub(y), Ok(Amount::new(s))),
            None => {
                let underflow = matches!(x.checked_sub(y), Err(AmountError::Underflow { .. }));
                prop_assert!(underflow);
            }
        }
    }

    #[test]
    fn mul_ratio_matches_wide_arithmetic(a in any::<u64>(), num in any::<u32>(), den in 1u32..) {
        // With a < 2^64 and num < 2^32 the exact product fits in u128.
        let exact = u128::from(a) * u128::from(num) / u128::from(den);
        prop_assert_eq!(Amount::from(a).mul_ratio(num.into(), den.into()), Ok(Amount::new(exact)));
    }

    #[test]
    fn mul_ratio_share_never_exceeds_whole(a in any::<u128>(), num in any::<u128>(), den in 1u128..) {
        let num = num % (den + 1).max(1);
        let share = Amount::new(a).mul_ratio(num, den).unwrap();
        prop_assert!(share <= Amount::new(a));
    }

    #[test]
    fn batch_rejects_one_bad_signature(n in 1usize..12, bad in any::<prop::sample::Index>(), seed in st::seed()) {
        let keys: Vec<Keypair> = (0..n).map(|i| Keypair::from_seed(&seed.derive_indexed("k", i as u64))).collect();
        let msgs: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; 8]).collect();
        let pks: Vec<PublicKey> = keys.iter().map(Keypair::public).collect();
        let mut sigs: Vec<Signature> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(D1, m)).collect();
        let items = |sigs: &[Signature]| -> Result<(), CryptoError> {
            let batch: Vec<BatchItem<'_>> = (0..n).map(|i| BatchItem {
                domain: D1, msg: &msgs[i], public: &pks[i], signature: &sigs[i],
            }).collect();
            verify_batch(&batch, &mut seed.derive("batch").rng())
        };
        prop_assert!(items(&sigs).is_ok());
        let i = bad.index(n);
        // A valid signature, but over another message.
        sigs[i] = keys[i].sign(D1, b"something else");
        prop_assert!(items(&sigs).is_err());
    }
}

#[test]
fn hex_parsing_errors_are_typed() {
    assert!(matches!(
        "00".parse::<Digest>(),
        Err(ParseHexError::WrongLength {
            expected: 64,
            got: 2
        })
    ));
    assert!(matches!(
        "g".repeat(64).parse::<NodeId>(),
        Err(ParseHexError::InvalidChar(_))
    ));
    assert!(NodeId::try_from(&[0u8; 31][..]).is_err());
    assert!(Signature::from_slice(&[0u8; 65]).is_err());
}

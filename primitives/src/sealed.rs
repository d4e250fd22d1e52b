//! Confidential data: bytes sealed to one recipient's X25519 encryption key.
//!
//! Built on the RustCrypto [`crypto_box`] crate's *sealed boxes* (libsodium's
//! `crypto_box_seal`: an ephemeral X25519 key agreement with the recipient's
//! key, then XSalsa20-Poly1305). Nothing here is home-made cryptography; this
//! module only adds what a market needs around it:
//!
//! - **Key binding.** A node's [`EncryptionSecret`] is derived
//!   deterministically from a [`Seed`] and its public half is bound to the
//!   node's sr25519 identity by an [`EncryptionKeyCert`]: the node signs its
//!   X25519 public key under the [`ENCRYPTION_KEY_CERT`] domain label.
//!   [`seal`] verifies the certificate first, so data is only ever sealed to
//!   a key its node vouched for (and never to a small-order key, which would
//!   make the box readable by everyone).
//! - **Context binding.** Every box carries, inside the authenticated
//!   plaintext, the digest of a caller-chosen context (for example the
//!   encoding of `(job, subtask)`) under [`SEAL_CONTEXT`]. Opening checks it,
//!   so a box for one subtask can never be replayed as the input of another.
//! - **Length hiding (traps stay indistinguishable).** Plaintexts are padded
//!   with zeros to a *bucket*: a power of two, at least [`MIN_BUCKET`] bytes,
//!   covering a 36-byte header (context digest and length) plus the data. A
//!   sealed trap input and a sealed real input in the same bucket are the
//!   same length and, under IND-CCA2 of the box, indistinguishable. A client
//!   that wants *every* subtask of a job to look alike seals them all with
//!   [`seal_padded`] to the job's largest bucket ([`bucket_for`] of the
//!   longest input), so lengths reveal nothing but that maximum.
//! - **Bounded, panic-free opening.** [`SealedBytes::from_vec`] rejects any
//!   length that is not `SEAL_OVERHEAD + bucket`; [`EncryptionSecret::open`]
//!   returns a typed [`SealError`] for a wrong key, a tampered box, a wrong
//!   context or a malformed header, and never panics on any input.
//!
//! Sealed boxes are anonymous: they prove *to whom* data is confidential,
//! not *who* sent it. Sender authenticity comes from the protocol around it
//! (the client's signed ledger records commit to its inputs).
//!
//! ```
//! use idlegrid_primitives::*;
//!
//! let seed = Seed::from_u64(9);
//! let node = Keypair::from_seed(&seed.derive("node"));
//! let enc = EncryptionSecret::from_seed(&seed.derive("x25519"));
//! let cert = EncryptionKeyCert::issue(&node, &enc);
//!
//! let mut rng = Seed::from_u64(1).rng();
//! let sealed = seal(&mut rng, &cert, b"job 7 / subtask 3", b"input bytes").unwrap();
//! assert_eq!(sealed.len(), SEAL_OVERHEAD + MIN_BUCKET);
//! assert_eq!(enc.open(b"job 7 / subtask 3", &sealed).unwrap(), b"input bytes");
//! assert_eq!(enc.open(b"job 7 / subtask 4", &sealed), Err(SealError::ContextMismatch));
//! let other = EncryptionSecret::from_seed(&seed.derive("someone else"));
//! assert_eq!(other.open(b"job 7 / subtask 3", &sealed), Err(SealError::Undecryptable));
//! ```

use core::fmt;

use crypto_box::aead::Aead;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Deserializer, Serialize};
use thiserror::Error;

use crate::bytes32::bytes32_newtype;
use crate::crypto::{CryptoError, Keypair, Signature};
use crate::digest::{Digest, Domain};
use crate::encoding::encode;
use crate::ids::NodeId;
use crate::seed::Seed;

/// Domain label of an [`EncryptionKeyCert`] signature.
pub const ENCRYPTION_KEY_CERT: Domain = Domain::new("idlegrid/sealed/encryption-key-cert");
/// Domain label of the context digest carried inside every sealed box.
pub const SEAL_CONTEXT: Domain = Domain::new("idlegrid/sealed/context");

/// Bytes a sealed box adds to its padded plaintext: the ephemeral public key
/// (32) and the Poly1305 tag (16).
pub const SEAL_OVERHEAD: usize = crypto_box::SEALBYTES;
/// Header inside the padded plaintext: context digest (32) and data length
/// (u32, little-endian).
pub const SEAL_HEADER: usize = 36;
/// Smallest bucket (padded plaintext length).
pub const MIN_BUCKET: usize = 256;
/// Largest bucket: 32 MiB.
pub const MAX_BUCKET: usize = 32 << 20;
/// Longest data that can be sealed (the largest bucket minus the header).
pub const MAX_SEALED_PLAINTEXT: usize = MAX_BUCKET - SEAL_HEADER;

const X25519_SEED_LABEL: &str = "idlegrid/sealed/x25519-secret";

/// Why data could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SealError {
    /// The recipient's certificate does not verify against its node key.
    #[error("encryption key certificate does not verify: {0}")]
    BadCert(CryptoError),
    /// The recipient's key is a small-order point: sealing to it would not
    /// be confidential. The node must issue a certificate for a fresh key.
    #[error("encryption key is weak (small order); refusing to seal to it")]
    WeakKey,
    /// The data is longer than [`MAX_SEALED_PLAINTEXT`].
    #[error("{len} bytes exceed the sealing limit of {max}; split the input")]
    TooLarge {
        /// Data length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The requested bucket is not a power of two in
    /// `MIN_BUCKET..=MAX_BUCKET`, or is too small for the data.
    #[error("bucket of {bucket} bytes is invalid or cannot hold {needed} bytes")]
    BadBucket {
        /// The bucket asked for.
        bucket: usize,
        /// Header plus data length.
        needed: usize,
    },
    /// The bytes do not have the length of any sealed box.
    #[error("{len} bytes is not the length of a sealed box")]
    BadLength {
        /// Length given.
        len: usize,
    },
    /// The box does not decrypt: wrong recipient key or tampered bytes
    /// (indistinguishable by design).
    #[error("sealed box does not open with this key (wrong recipient or tampered)")]
    Undecryptable,
    /// The box opened but was sealed for another context.
    #[error("sealed box belongs to another context")]
    ContextMismatch,
    /// The box opened but its header or padding is malformed (the sender
    /// did not follow the padding policy).
    #[error("sealed box has a malformed header or padding")]
    BadPadding,
}

/// A node's X25519 decryption secret. `Debug` hides it.
#[derive(Clone)]
pub struct EncryptionSecret(crypto_box::SecretKey);

impl fmt::Debug for EncryptionSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptionSecret({:?})", self.public())
    }
}

bytes32_newtype!(
    /// An X25519 public encryption key. Bound to a node by an
    /// [`EncryptionKeyCert`].
    EncryptionPublicKey
);

impl EncryptionSecret {
    /// Derives the secret from a seed (a labelled child of it, so the same
    /// seed can also feed a signing key). Same seed, same key.
    pub fn from_seed(seed: &Seed) -> Self {
        Self(crypto_box::SecretKey::from_bytes(
            seed.derive(X25519_SEED_LABEL).to_bytes(),
        ))
    }

    /// A fresh secret from a caller-supplied cryptographic RNG.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        Self::from_seed(&Seed::from_bytes(b))
    }

    /// The public key.
    pub fn public(&self) -> EncryptionPublicKey {
        EncryptionPublicKey::from_bytes(self.0.public_key().to_bytes())
    }

    /// Opens a sealed box made for `context`. Returns the original data.
    pub fn open(&self, context: &[u8], sealed: &SealedBytes) -> Result<Vec<u8>, SealError> {
        self.open_bytes(context, sealed.as_bytes())
    }

    /// Opens untrusted bytes as a sealed box made for `context`. Never
    /// panics; every failure is a [`SealError`].
    pub fn open_bytes(&self, context: &[u8], bytes: &[u8]) -> Result<Vec<u8>, SealError> {
        let bucket = check_sealed_len(bytes.len())?;
        let padded = self.0.unseal(bytes).map_err(|_| SealError::Undecryptable)?;
        if padded.len() != bucket {
            return Err(SealError::BadPadding);
        }
        let (ctx, rest) = padded.split_at(32);
        let (len, body) = rest.split_at(4);
        if ctx != Digest::hash(SEAL_CONTEXT, context).as_bytes() {
            return Err(SealError::ContextMismatch);
        }
        let mut len_bytes = [0u8; 4];
        len_bytes.copy_from_slice(len);
        let len = u32::from_le_bytes(len_bytes) as usize;
        if len > body.len() || body[len..].iter().any(|&b| b != 0) {
            return Err(SealError::BadPadding);
        }
        Ok(body[..len].to_vec())
    }
}

/// A node's signed statement "this X25519 key is mine": the node's sr25519
/// signature over `(node, key)` under [`ENCRYPTION_KEY_CERT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptionKeyCert {
    /// The node vouching for the key.
    pub node: NodeId,
    /// The node's encryption key.
    pub key: EncryptionPublicKey,
    /// The node's signature.
    pub signature: Signature,
}

impl EncryptionKeyCert {
    /// Issues a certificate binding `secret`'s public key to `node`.
    pub fn issue(node: &Keypair, secret: &EncryptionSecret) -> Self {
        let key = secret.public();
        let signature = node.sign(ENCRYPTION_KEY_CERT, &encode(&(node.node_id(), key)));
        Self {
            node: node.node_id(),
            key,
            signature,
        }
    }

    /// Verifies the signature and that the key is not a small-order point.
    pub fn verify(&self) -> Result<(), SealError> {
        self.node
            .public_key()
            .verify(
                ENCRYPTION_KEY_CERT,
                &encode(&(self.node, self.key)),
                &self.signature,
            )
            .map_err(SealError::BadCert)?;
        if is_weak(&self.key) {
            return Err(SealError::WeakKey);
        }
        Ok(())
    }
}

/// True if `key` is a small-order X25519 point (order dividing 8, on the
/// curve or its twist): then the shared secret does not depend on the
/// sender's secret and the box would be readable by anyone.
///
/// Tested through the library, without touching curve arithmetic: the two
/// probe secrets `2^254` and `2^254 + 8` are fixed by clamping and, reduced
/// modulo the group order `l` (as `crypto_box` does), differ by 8. Agreeing
/// with a small-order point gives the same shared secret for both (their
/// difference kills any component of order dividing 8); agreeing with any
/// point with a component of large prime order gives different ones.
fn is_weak(key: &EncryptionPublicKey) -> bool {
    let pk = crypto_box::PublicKey::from_bytes(key.to_bytes());
    let nonce = crypto_box::Nonce::default();
    let probe = |low: u8| {
        let mut k = [0u8; 32];
        k[0] = low;
        k[31] = 0x40;
        let sk = crypto_box::SecretKey::from_bytes(k);
        crypto_box::SalsaBox::new(&pk, &sk)
            .encrypt(&nonce, &[0u8; 16][..])
            .ok()
    };
    probe(0) == probe(8)
}

/// A sealed box: `SEAL_OVERHEAD + bucket` bytes, where the bucket is a power
/// of two in `MIN_BUCKET..=MAX_BUCKET`. Serialized as a byte string;
/// deserializing checks the length.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct SealedBytes(Vec<u8>);

impl fmt::Debug for SealedBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedBytes({} bytes)", self.0.len())
    }
}

impl<'de> Deserialize<'de> for SealedBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<u8>::deserialize(d)?;
        Self::from_vec(v).map_err(serde::de::Error::custom)
    }
}

impl SealedBytes {
    /// Wraps received bytes after checking that their length is that of a
    /// sealed box (the content is checked by opening).
    pub fn from_vec(bytes: Vec<u8>) -> Result<Self, SealError> {
        check_sealed_len(bytes.len())?;
        Ok(Self(bytes))
    }
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    /// The raw bytes, by value.
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
    /// Total length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Always false: a sealed box is never empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The bucket (padded plaintext length) of this box.
    pub fn bucket(&self) -> usize {
        self.0.len() - SEAL_OVERHEAD
    }
}

fn is_bucket(b: usize) -> bool {
    b.is_power_of_two() && (MIN_BUCKET..=MAX_BUCKET).contains(&b)
}

/// Returns the bucket of a box of `len` bytes, or [`SealError::BadLength`].
fn check_sealed_len(len: usize) -> Result<usize, SealError> {
    match len.checked_sub(SEAL_OVERHEAD) {
        Some(b) if is_bucket(b) => Ok(b),
        _ => Err(SealError::BadLength { len }),
    }
}

/// The bucket that data of `len` bytes is padded to by [`seal`]: the
/// smallest power of two `>= max(MIN_BUCKET, SEAL_HEADER + len)`.
pub fn bucket_for(len: usize) -> Result<usize, SealError> {
    if len > MAX_SEALED_PLAINTEXT {
        return Err(SealError::TooLarge {
            len,
            max: MAX_SEALED_PLAINTEXT,
        });
    }
    Ok((SEAL_HEADER + len).next_power_of_two().max(MIN_BUCKET))
}

/// Seals `data` for `context` to the key in `cert`, padded to
/// [`bucket_for`]`(data.len())`. Verifies the certificate first.
pub fn seal<R: RngCore + CryptoRng>(
    rng: &mut R,
    cert: &EncryptionKeyCert,
    context: &[u8],
    data: &[u8],
) -> Result<SealedBytes, SealError> {
    let bucket = bucket_for(data.len())?;
    seal_padded(rng, cert, context, data, bucket)
}

/// Seals `data` for `context` to the key in `cert`, padded to exactly
/// `bucket` bytes (a power of two in `MIN_BUCKET..=MAX_BUCKET` that holds
/// the header and the data). Use one bucket for all subtasks of a job so
/// that trap and real inputs have equal lengths.
pub fn seal_padded<R: RngCore + CryptoRng>(
    rng: &mut R,
    cert: &EncryptionKeyCert,
    context: &[u8],
    data: &[u8],
    bucket: usize,
) -> Result<SealedBytes, SealError> {
    cert.verify()?;
    let needed = bucket_for(data.len())?;
    if !is_bucket(bucket) || bucket < needed {
        return Err(SealError::BadBucket {
            bucket,
            needed: SEAL_HEADER + data.len(),
        });
    }
    let mut padded = Vec::with_capacity(bucket);
    padded.extend_from_slice(Digest::hash(SEAL_CONTEXT, context).as_bytes());
    // data.len() <= MAX_SEALED_PLAINTEXT < u32::MAX, checked by bucket_for.
    padded.extend_from_slice(&(data.len() as u32).to_le_bytes());
    padded.extend_from_slice(data);
    padded.resize(bucket, 0);
    let pk = crypto_box::PublicKey::from_bytes(cert.key.to_bytes());
    let out = pk
        .seal(&mut RngAdapter(rng), &padded)
        .expect("XSalsa20-Poly1305 encryption of a bounded buffer cannot fail");
    assert_eq!(out.len(), SEAL_OVERHEAD + bucket);
    Ok(SealedBytes(out))
}

/// Lets any `RngCore + CryptoRng` reach `crypto_box` (whose `rand_core` is
/// the same 0.6 family, but whose bound is the `CryptoRngCore` trait object
/// helper).
struct RngAdapter<'a, R>(&'a mut R);

impl<R: RngCore> RngCore for RngAdapter<'_, R> {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.try_fill_bytes(dest)
    }
}

impl<R: CryptoRng> CryptoRng for RngAdapter<'_, R> {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn node(n: u64) -> (Keypair, EncryptionSecret, EncryptionKeyCert) {
        let seed = Seed::from_u64(n);
        let kp = Keypair::from_seed(&seed.derive("node"));
        let enc = EncryptionSecret::from_seed(&seed);
        let cert = EncryptionKeyCert::issue(&kp, &enc);
        (kp, enc, cert)
    }

    #[test]
    fn round_trip_and_wrong_key() {
        let (_, enc, cert) = node(1);
        let (_, other, _) = node(2);
        let mut rng = Seed::from_u64(3).rng();
        let s = seal(&mut rng, &cert, b"ctx", b"hello").unwrap();
        assert_eq!(enc.open(b"ctx", &s).unwrap(), b"hello");
        assert_eq!(other.open(b"ctx", &s), Err(SealError::Undecryptable));
        assert_eq!(enc.open(b"ctx2", &s), Err(SealError::ContextMismatch));
        // Deterministic key derivation.
        assert_eq!(
            enc.public(),
            EncryptionSecret::from_seed(&Seed::from_u64(1)).public()
        );
    }

    #[test]
    fn tampering_is_detected_everywhere() {
        let (_, enc, cert) = node(1);
        let mut rng = Seed::from_u64(4).rng();
        let s = seal(&mut rng, &cert, b"ctx", b"secret input").unwrap();
        for i in (0..s.len()).step_by(7) {
            let mut b = s.as_bytes().to_vec();
            b[i] ^= 1;
            assert_eq!(enc.open_bytes(b"ctx", &b), Err(SealError::Undecryptable));
        }
    }

    #[test]
    fn bad_certs_are_refused() {
        let (_, _, cert) = node(1);
        let (kp2, _, _) = node(2);
        let mut rng = Seed::from_u64(5).rng();
        // Someone else's signature over the same key.
        let mut forged = cert;
        forged.signature = kp2.sign(ENCRYPTION_KEY_CERT, &encode(&(cert.node, cert.key)));
        assert!(matches!(
            seal(&mut rng, &forged, b"c", b"x"),
            Err(SealError::BadCert(_))
        ));
        // A small-order key, even when honestly signed.
        let p_plus = |d: u8| {
            // p + d - 1 for p = 2^255 - 19, little-endian.
            let mut b = [0xffu8; 32];
            b[0] = 0xec + d;
            b[31] = 0x7f;
            b
        };
        let mut one = [0u8; 32];
        one[0] = 1;
        // A point of order 8 (libsodium's blocklist).
        let order8 = [
            0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f,
            0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16,
            0x5f, 0x49, 0xb8, 0x00,
        ];
        for weak in [[0u8; 32], one, p_plus(0), p_plus(1), p_plus(2), order8] {
            let key = EncryptionPublicKey::from_bytes(weak);
            let signature = kp2.sign(ENCRYPTION_KEY_CERT, &encode(&(kp2.node_id(), key)));
            let c = EncryptionKeyCert {
                node: kp2.node_id(),
                key,
                signature,
            };
            assert_eq!(seal(&mut rng, &c, b"c", b"x"), Err(SealError::WeakKey));
        }
    }

    #[test]
    fn honest_keys_are_not_weak() {
        for n in 0..32 {
            let (_, _, cert) = node(100 + n);
            assert_eq!(cert.verify(), Ok(()));
        }
    }

    #[test]
    fn padding_hides_length_within_a_bucket() {
        let (_, enc, cert) = node(1);
        let mut rng = Seed::from_u64(6).rng();
        let short = seal(&mut rng, &cert, b"c", b"").unwrap();
        let long = seal(&mut rng, &cert, b"c", &[7u8; MIN_BUCKET - SEAL_HEADER]).unwrap();
        assert_eq!(short.len(), long.len());
        let bigger = seal(&mut rng, &cert, b"c", &[7u8; MIN_BUCKET]).unwrap();
        assert_eq!(bigger.bucket(), 2 * MIN_BUCKET);
        // Job-wide padding: a tiny input sealed to the job's bucket.
        let tiny = seal_padded(&mut rng, &cert, b"c", b"t", bigger.bucket()).unwrap();
        assert_eq!(tiny.len(), bigger.len());
        assert_eq!(enc.open(b"c", &tiny).unwrap(), b"t");
        assert!(matches!(
            seal_padded(&mut rng, &cert, b"c", &[0u8; 300], MIN_BUCKET),
            Err(SealError::BadBucket { .. })
        ));
        assert!(matches!(
            seal_padded(&mut rng, &cert, b"c", b"", 300),
            Err(SealError::BadBucket { .. })
        ));
        assert!(matches!(
            bucket_for(MAX_SEALED_PLAINTEXT + 1),
            Err(SealError::TooLarge { .. })
        ));
    }

    #[test]
    fn serde_checks_length() {
        let (_, _, cert) = node(1);
        let mut rng = Seed::from_u64(7).rng();
        let s = seal(&mut rng, &cert, b"c", b"x").unwrap();
        let bytes = encode(&s);
        let back: SealedBytes = crate::decode(&bytes, 1 << 20).unwrap();
        assert_eq!(back, s);
        assert!(crate::decode::<SealedBytes>(&encode(&vec![0u8; 10]), 1 << 20).is_err());
        let c2: EncryptionKeyCert = crate::decode(&encode(&cert), 256).unwrap();
        assert_eq!(c2, cert);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn round_trip_law(data in prop::collection::vec(any::<u8>(), 0..1200),
                          ctx in prop::collection::vec(any::<u8>(), 0..40)) {
            let (_, enc, cert) = node(11);
            let mut rng = Seed::from_u64(data.len() as u64).rng();
            let s = seal(&mut rng, &cert, &ctx, &data).unwrap();
            prop_assert_eq!(s.bucket(), bucket_for(data.len()).unwrap());
            prop_assert_eq!(enc.open(&ctx, &s).unwrap(), data);
        }

        /// Fuzz-style: opening arbitrary bytes never panics.
        #[test]
        fn opening_random_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..700)) {
            let (_, enc, _) = node(12);
            prop_assert!(enc.open_bytes(b"ctx", &bytes).is_err());
            let _ = SealedBytes::from_vec(bytes);
        }

        /// Fuzz-style: random bytes of exactly a sealed box's length never
        /// open (and never panic).
        #[test]
        fn random_boxes_of_valid_length_never_open(seed in any::<u64>()) {
            let (_, enc, _) = node(13);
            let mut b = vec![0u8; SEAL_OVERHEAD + MIN_BUCKET];
            rand_core::RngCore::fill_bytes(&mut Seed::from_u64(seed).rng(), &mut b);
            prop_assert_eq!(enc.open_bytes(b"ctx", &b), Err(SealError::Undecryptable));
        }
    }
}

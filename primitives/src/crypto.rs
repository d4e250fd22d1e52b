//! Keys, signatures and VRFs on schnorrkel (sr25519: Schnorr over Ristretto255
//! with merlin transcripts).
//!
//! Every signature is made under a [`Domain`] label that becomes the
//! schnorrkel signing context, so a signature for one message kind never
//! verifies as another. Signing is deterministic (the per-signature witness
//! is derived from the secret nonce and the transcript, hedged with a fixed
//! RNG), which keeps simulated runs reproducible bit for bit.

use core::fmt;

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use schnorrkel::context::attach_rng;
use serde::de::{Error as _, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::bytes32::bytes32_newtype;
use crate::digest::Domain;
use crate::ids::{AccountId, NodeId};
use crate::seed::Seed;

/// Why a key, signature or VRF proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The public key bytes are not a valid compressed Ristretto point.
    #[error("malformed public key")]
    MalformedPublicKey,
    /// The signature bytes are malformed (wrong length or marker bit).
    #[error("malformed signature")]
    MalformedSignature,
    /// The signature is well formed but does not verify for this key,
    /// message and domain.
    #[error("signature does not verify")]
    BadSignature,
    /// A batch did not verify: at least one signature in it is bad.
    #[error("batch verification failed: at least one of {len} signatures is bad")]
    BadBatch {
        /// Number of signatures in the batch.
        len: usize,
    },
    /// The VRF output or proof is malformed or does not verify.
    #[error("VRF proof does not verify")]
    BadVrf,
    /// The input had the wrong length.
    #[error("wrong length: expected {expected} bytes, got {got}")]
    WrongLength {
        /// Required length.
        expected: usize,
        /// Given length.
        got: usize,
    },
}

bytes32_newtype!(
    /// An sr25519 public key (compressed Ristretto point). Parsing is checked
    /// when the key is used, so any 32 bytes can be carried and decoded.
    PublicKey
);

impl PublicKey {
    /// Decompresses the key (through the per-thread cache of recently
    /// used keys, see `key_cache`).
    fn parse(&self) -> Result<schnorrkel::PublicKey, CryptoError> {
        crate::key_cache::parse(self.as_bytes()).ok_or(CryptoError::MalformedPublicKey)
    }

    /// True if the bytes are a valid public key.
    pub fn is_valid(&self) -> bool {
        self.parse().is_ok()
    }

    /// Verifies `sig` over `msg` under `domain`.
    pub fn verify(&self, domain: Domain, msg: &[u8], sig: &Signature) -> Result<(), CryptoError> {
        let pk = self.parse()?;
        let sig = sig.parse()?;
        pk.verify(context(domain).bytes(msg), &sig)
            .map_err(|_| CryptoError::BadSignature)
    }

    /// Verifies a VRF output and proof for `input` under `domain`, returning
    /// the 32 bytes of verified randomness.
    pub fn vrf_verify(
        &self,
        domain: Domain,
        input: &[u8],
        output: &VrfOutput,
        proof: &VrfProof,
    ) -> Result<[u8; 32], CryptoError> {
        let pk = self.parse()?;
        let preout = schnorrkel::vrf::VRFPreOut::from_bytes(output.as_bytes())
            .map_err(|_| CryptoError::BadVrf)?;
        let proof =
            schnorrkel::vrf::VRFProof::from_bytes(&proof.0).map_err(|_| CryptoError::BadVrf)?;
        let (inout, _) = pk
            .vrf_verify_extra(context(domain).bytes(input), &preout, &proof, vrf_extra())
            .map_err(|_| CryptoError::BadVrf)?;
        Ok(inout.make_bytes::<[u8; 32]>(VRF_BYTES_LABEL))
    }

    /// The randomness [`PublicKey::vrf_verify`] returns for an output whose
    /// proof verified before, without checking the proof again (a
    /// hash-to-curve instead of a double scalar multiplication). Only for
    /// [`SignatureVerifier`](crate::SignatureVerifier), after a memo hit.
    pub(crate) fn vrf_randomness(
        &self,
        domain: Domain,
        input: &[u8],
        output: &VrfOutput,
    ) -> Result<[u8; 32], CryptoError> {
        let pk = self.parse()?;
        let preout = schnorrkel::vrf::VRFPreOut::from_bytes(output.as_bytes())
            .map_err(|_| CryptoError::BadVrf)?;
        let inout = preout
            .attach_input_hash(&pk, context(domain).bytes(input))
            .map_err(|_| CryptoError::BadVrf)?;
        Ok(inout.make_bytes::<[u8; 32]>(VRF_BYTES_LABEL))
    }
}

const VRF_BYTES_LABEL: &[u8] = b"idlegrid/vrf/bytes";

fn context(domain: Domain) -> schnorrkel::context::SigningContext {
    schnorrkel::signing_context(domain.label().as_bytes())
}

/// The transcript of a VRF proof's own commitments. schnorrkel's default
/// (`vrf_sign`) draws the proof's nonce from the thread RNG through it; ours
/// gets the hedge RNG attached when signing, so a proof — like a signature —
/// is a deterministic function of key and input (a replayed simulation
/// produces the same bytes).
fn vrf_extra() -> impl schnorrkel::context::SigningTranscript {
    schnorrkel::signing_context(b"idlegrid/vrf/proof").bytes(b"")
}

/// The fixed hedge RNG that makes signing deterministic (see module docs).
fn hedge_rng() -> ChaCha20Rng {
    ChaCha20Rng::from_seed([0u8; 32])
}

bytes32_newtype!(
    /// A VRF pre-output (32 bytes); the verified randomness is derived from it
    /// by [`PublicKey::vrf_verify`].
    VrfOutput
);

/// A fixed-size 64-byte value with serde as a 64-byte tuple (canonical in
/// postcard) and hex in human-readable formats.
macro_rules! bytes64_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name([u8; 64]);

        impl $name {
            /// Wraps raw bytes (validity is checked on use).
            pub const fn from_bytes(bytes: [u8; 64]) -> Self {
                Self(bytes)
            }
            /// The raw bytes.
            pub const fn to_bytes(self) -> [u8; 64] {
                self.0
            }
            /// Parses from a slice of exactly 64 bytes.
            pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
                let arr: [u8; 64] = bytes.try_into().map_err(|_| CryptoError::WrongLength {
                    expected: 64,
                    got: bytes.len(),
                })?;
                Ok(Self(arr))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({}..)"), hex::encode(&self.0[..4]))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    return s.serialize_str(&hex::encode(self.0));
                }
                let mut t = s.serialize_tuple(64)?;
                for b in &self.0 {
                    t.serialize_element(b)?;
                }
                t.end()
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let s = String::deserialize(d)?;
                    let mut out = [0u8; 64];
                    hex::decode_to_slice(&s, &mut out).map_err(D::Error::custom)?;
                    return Ok(Self(out));
                }
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = [u8; 64];
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("64 bytes")
                    }
                    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<[u8; 64], A::Error> {
                        let mut out = [0u8; 64];
                        for (i, b) in out.iter_mut().enumerate() {
                            *b = seq
                                .next_element()?
                                .ok_or_else(|| A::Error::invalid_length(i, &self))?;
                        }
                        Ok(out)
                    }
                }
                d.deserialize_tuple(64, V).map(Self)
            }
        }
    };
}

bytes64_newtype!(
    /// An sr25519 signature (64 bytes).
    Signature
);
bytes64_newtype!(
    /// A VRF proof (64 bytes, a DLEQ proof).
    VrfProof
);

impl Signature {
    fn parse(&self) -> Result<schnorrkel::Signature, CryptoError> {
        schnorrkel::Signature::from_bytes(&self.0).map_err(|_| CryptoError::MalformedSignature)
    }
}

/// A signing keypair. The secret never leaves this type; `Debug` shows only
/// the public key.
#[derive(Clone)]
pub struct Keypair {
    inner: schnorrkel::Keypair,
    public: PublicKey,
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({:?})", self.public)
    }
}

impl Keypair {
    fn wrap(inner: schnorrkel::Keypair) -> Self {
        let public = PublicKey::from_bytes(inner.public.to_bytes());
        Self { inner, public }
    }

    /// Derives a keypair from a 32-byte seed (a schnorrkel mini secret key,
    /// expanded in Ed25519 mode). Same seed, same key.
    pub fn from_seed(seed: &Seed) -> Self {
        let mini = schnorrkel::MiniSecretKey::from_bytes(seed.as_bytes())
            .expect("32 bytes is always a valid mini secret key");
        Self::wrap(mini.expand_to_keypair(schnorrkel::ExpansionMode::Ed25519))
    }

    /// Generates a keypair from a caller-supplied cryptographic RNG.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        Self::from_seed(&Seed::from_bytes(seed))
    }

    /// The public key.
    pub fn public(&self) -> PublicKey {
        self.public
    }
    /// The node id for this key.
    pub fn node_id(&self) -> NodeId {
        self.public.into()
    }
    /// The account id for this key.
    pub fn account_id(&self) -> AccountId {
        self.public.into()
    }

    /// Signs `msg` under `domain`.
    pub fn sign(&self, domain: Domain, msg: &[u8]) -> Signature {
        let t = attach_rng(context(domain).bytes(msg), hedge_rng());
        Signature(self.inner.sign(t).to_bytes())
    }

    /// Evaluates the VRF on `input` under `domain`: returns the 32 bytes of
    /// randomness, the pre-output and the proof that anyone holding the
    /// public key can check with [`PublicKey::vrf_verify`].
    pub fn vrf_sign(&self, domain: Domain, input: &[u8]) -> ([u8; 32], VrfOutput, VrfProof) {
        let (bytes, proved) = self.vrf_sign_if(domain, input, |_| true);
        let (output, proof) = proved.expect("a proof is always wanted here");
        (bytes, output, proof)
    }

    /// [`Keypair::vrf_sign`] for a lottery: evaluates the VRF, and proves
    /// it only if `wanted` accepts the randomness (a node that drew a
    /// losing ticket has nothing to prove); the proof is about half the
    /// cost. Returns exactly `vrf_sign`'s values when wanted, the
    /// randomness alone when not.
    pub fn vrf_sign_if(
        &self,
        domain: Domain,
        input: &[u8],
        wanted: impl FnOnce(&[u8; 32]) -> bool,
    ) -> ([u8; 32], Option<(VrfOutput, VrfProof)>) {
        let t = attach_rng(context(domain).bytes(input), hedge_rng());
        let mut bytes = [0u8; 32];
        let mut wanted = Some(wanted);
        let proved = self.inner.vrf_sign_extra_after_check(t, |inout| {
            bytes = inout.make_bytes::<[u8; 32]>(VRF_BYTES_LABEL);
            let want = wanted.take().is_some_and(|w| w(&bytes));
            want.then(|| attach_rng(vrf_extra(), hedge_rng()))
        });
        let proved = proved.map(|(inout, proof, _)| {
            (
                VrfOutput::from_bytes(inout.to_preout().to_bytes()),
                VrfProof(proof.to_bytes()),
            )
        });
        (bytes, proved)
    }
}

/// One item of a batch verification.
#[derive(Debug, Clone, Copy)]
pub struct BatchItem<'a> {
    /// The domain label the message was signed under.
    pub domain: Domain,
    /// The signed message.
    pub msg: &'a [u8],
    /// The signer.
    pub public: &'a PublicKey,
    /// The signature.
    pub signature: &'a Signature,
}

/// Verifies many signatures at once (roughly twice as fast per signature as
/// one-by-one for large batches). Fails if any one is bad or malformed; the
/// caller then falls back to [`PublicKey::verify`] to find which.
///
/// `rng` randomizes the linear combination and must be unpredictable to
/// whoever produced the signatures (a seeded ChaCha RNG derived from local
/// secret material is fine; a publicly known seed is not).
pub fn verify_batch<R: RngCore + CryptoRng>(
    items: &[BatchItem<'_>],
    rng: &mut R,
) -> Result<(), CryptoError> {
    if items.is_empty() {
        return Ok(());
    }
    let (transcripts, sigs, pks) = batch_parts(items)?;
    schnorrkel::verify_batch_rng(transcripts, &sigs, &pks, false, rng)
        .map_err(|_| CryptoError::BadBatch { len: items.len() })
}

/// The transcripts, signatures and keys of a batch, parsed.
#[allow(clippy::type_complexity)]
fn batch_parts(
    items: &[BatchItem<'_>],
) -> Result<
    (
        Vec<impl schnorrkel::context::SigningTranscript + use<>>,
        Vec<schnorrkel::Signature>,
        Vec<schnorrkel::PublicKey>,
    ),
    CryptoError,
> {
    let mut transcripts = Vec::with_capacity(items.len());
    let mut sigs = Vec::with_capacity(items.len());
    let mut pks = Vec::with_capacity(items.len());
    for it in items {
        transcripts.push(context(it.domain).bytes(it.msg));
        sigs.push(it.signature.parse()?);
        pks.push(it.public.parse()?);
    }
    Ok((transcripts, sigs, pks))
}

/// [`verify_batch`] without an RNG: schnorrkel's deterministic batch
/// verification, whose delinearization scalars are drawn from a transcript
/// of every public key, signature commitment and message of the batch
/// (Fiat-Shamir), so no signer can pick a signature knowing its scalar.
/// For code with no secret material to seed an RNG from, such as a light
/// node checking a certificate.
pub fn verify_batch_deterministic(items: &[BatchItem<'_>]) -> Result<(), CryptoError> {
    if items.is_empty() {
        return Ok(());
    }
    let (transcripts, sigs, pks) = batch_parts(items)?;
    schnorrkel::verify_batch_deterministic(transcripts, &sigs, &pks, false)
        .map_err(|_| CryptoError::BadBatch { len: items.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Domain = Domain::new("idlegrid/test/msg");

    #[test]
    fn sign_verify_deterministic() {
        let kp = Keypair::from_seed(&Seed::from_u64(7));
        let s1 = kp.sign(D, b"hi");
        let s2 = kp.sign(D, b"hi");
        assert_eq!(s1, s2);
        kp.public().verify(D, b"hi", &s1).unwrap();
        assert_eq!(
            kp.public().verify(D, b"ho", &s1),
            Err(CryptoError::BadSignature)
        );
    }

    #[test]
    fn malformed_inputs_are_errors() {
        let kp = Keypair::from_seed(&Seed::from_u64(1));
        let sig = kp.sign(D, b"x");
        let bad_pk = PublicKey::from_bytes([0xff; 32]);
        assert_eq!(
            bad_pk.verify(D, b"x", &sig),
            Err(CryptoError::MalformedPublicKey)
        );
        let bad_sig = Signature::from_bytes([0u8; 64]);
        assert_eq!(
            kp.public().verify(D, b"x", &bad_sig),
            Err(CryptoError::MalformedSignature)
        );
        assert!(matches!(
            Signature::from_slice(&[0u8; 10]),
            Err(CryptoError::WrongLength {
                expected: 64,
                got: 10
            })
        ));
    }

    #[test]
    fn vrf_round_trip() {
        let kp = Keypair::from_seed(&Seed::from_u64(3));
        let (bytes, out, proof) = kp.vrf_sign(D, b"epoch-1");
        let verified = kp.public().vrf_verify(D, b"epoch-1", &out, &proof).unwrap();
        assert_eq!(bytes, verified);
        assert_eq!(
            kp.public().vrf_verify(D, b"epoch-2", &out, &proof),
            Err(CryptoError::BadVrf)
        );
        let other = Keypair::from_seed(&Seed::from_u64(4));
        assert!(
            other
                .public()
                .vrf_verify(D, b"epoch-1", &out, &proof)
                .is_err()
        );
        // Deterministic, like signatures: a replay produces the same proof.
        assert_eq!(kp.vrf_sign(D, b"epoch-1").2, proof);
    }

    #[test]
    fn a_lottery_draw_proves_only_when_wanted_and_proves_the_same() {
        let kp = Keypair::from_seed(&Seed::from_u64(3));
        let (bytes, out, proof) = kp.vrf_sign(D, b"lot");
        let mut seen = None;
        let (lost, none) = kp.vrf_sign_if(D, b"lot", |r| {
            seen = Some(*r);
            false
        });
        assert_eq!((lost, none, seen), (bytes, None, Some(bytes)));
        let (won, proved) = kp.vrf_sign_if(D, b"lot", |r| r == &bytes);
        assert_eq!((won, proved), (bytes, Some((out, proof))));
        let (_, other) = kp.vrf_sign_if(D, b"other lot", |_| true);
        let (out2, proof2) = other.unwrap();
        assert_eq!(
            kp.public().vrf_verify(D, b"other lot", &out2, &proof2),
            Ok(kp.vrf_sign(D, b"other lot").0)
        );
    }
}

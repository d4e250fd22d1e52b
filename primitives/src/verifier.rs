//! Signature checking as a capability the driver gives a node: plain, or
//! through a bounded memo of signatures that verified (see
//! [`SignatureVerifier`]).

use std::sync::{Arc, Mutex, PoisonError};

use rand_core::{CryptoRng, RngCore};

use crate::crypto::{
    BatchItem, CryptoError, Keypair, PublicKey, Signature, VrfOutput, VrfProof, verify_batch,
    verify_batch_deterministic,
};
use crate::digest::Domain;
use crate::memo::SetAssoc;
use crate::seed::Seed;

/// Fingerprints per set of a [`SignatureMemo`].
pub(crate) const WAYS: usize = 4;

/// A 256-bit keyed fingerprint of one verification's inputs.
type Fingerprint = [u8; 32];

/// Checks signatures: a capability the driver gives a node, plain or
/// through a bounded memo of signatures that verified. Cloning shares the
/// memo.
///
/// A node that checks signatures does so through a [`SignatureVerifier`].
/// The plain one ([`SignatureVerifier::plain`], the default) verifies every
/// signature. A memoizing one ([`SignatureVerifier::memoized`]) first looks
/// the exact `(public key, domain, message, signature)` up in a
/// [`SignatureMemo`] of signatures that verified before, and verifies only
/// on a miss. The driver decides who shares a memo: the simulator gives one
/// to all its simulated validators (each block is verified once per run
/// instead of once per validator), a real process one to its node (or none).
///
/// **A pure function cache.** Verification is a deterministic function of
/// its inputs, and the memo stores only inputs that verified, each under a
/// 256-bit keyed blake3 fingerprint of all four (the domain label
/// length-prefixed, the key, the signature, then the message), so a hit
/// means the same inputs verified before: the answer is the one verification
/// would give. A bad signature is never a hit — it differs from every
/// stored input in at least one byte — and failures are not stored, so
/// garbage cannot evict anything by failing; only valid signatures take
/// room. The memo answers nothing but "verify this", so a node sharing it
/// learns no more from it than from verifying itself; only time differs
/// (as with a CPU cache).
///
/// **Bounded.** A [`SignatureMemo`] of capacity `c` (rounded up to a power
/// of two) is a 4-way set-associative table of `c` fingerprints, 33
/// bytes each, least recently used first out within a set: at most
/// `33 × c` bytes for its whole life (528 KiB at
/// [`SignatureMemo::DEFAULT_CAPACITY`]). The set of a fingerprint depends
/// on the memo's secret key (from a [`Seed`]), so nobody can aim valid
/// signatures of their own at one set to evict others' entries; and at
/// worst an evicted entry is verified again, as without a memo.
///
/// **Signing through it.** [`SignatureVerifier::sign`] and
/// [`SignatureVerifier::vrf_sign`] sign (exactly [`Keypair::sign`] and
/// [`Keypair::vrf_sign`]) and remember what they made as verifying: a
/// Schnorr signature or VRF proof made with a key verifies under that key's
/// public key, so the memo still answers only what verification would (the
/// entry is the one a verification of the same inputs would store). A
/// process that later checks what it signed — a validator its own
/// transactions at its gateway and in its blocks, the simulator's nodes
/// each other's — then pays one hash instead of a verification. Nothing
/// else is vouched for: a verifier that encodes the message differently
/// from the signer, or names another key, misses and verifies.
///
/// No clock, no thread, no global state: a memo is an ordinary value behind
/// an `Arc`, its lock held only for one table lookup or insert.
#[derive(Clone, Default)]
pub struct SignatureVerifier {
    memo: Option<Arc<SignatureMemo>>,
}

impl std::fmt::Debug for SignatureVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.memo {
            None => f.write_str("SignatureVerifier::plain"),
            Some(m) => f
                .debug_struct("SignatureVerifier::memoized")
                .field("capacity", &m.capacity())
                .finish(),
        }
    }
}

impl SignatureVerifier {
    /// Verifies every signature.
    pub const fn plain() -> Self {
        Self { memo: None }
    }

    /// Looks signatures up in `memo` first (share it by cloning the
    /// verifier or the `Arc`).
    pub fn memoized(memo: Arc<SignatureMemo>) -> Self {
        Self { memo: Some(memo) }
    }

    /// Its memo, if it has one.
    pub fn memo(&self) -> Option<&Arc<SignatureMemo>> {
        self.memo.as_ref()
    }

    /// Verifies `sig` over `msg` under `domain`: exactly
    /// [`PublicKey::verify`]'s answer.
    pub fn verify(
        &self,
        public: &PublicKey,
        domain: Domain,
        msg: &[u8],
        sig: &Signature,
    ) -> Result<(), CryptoError> {
        let Some(memo) = &self.memo else {
            return public.verify(domain, msg, sig);
        };
        let fp = memo.fingerprint(public, domain, msg, sig);
        if memo.known(&fp) {
            return Ok(());
        }
        public.verify(domain, msg, sig)?;
        memo.remember(fp);
        Ok(())
    }

    /// Signs `msg` under `domain` with `key` (exactly [`Keypair::sign`]);
    /// with a memo, remembers the signature as verifying under `key`'s
    /// public key (see the type's docs).
    pub fn sign(&self, key: &Keypair, domain: Domain, msg: &[u8]) -> Signature {
        let sig = key.sign(domain, msg);
        if let Some(memo) = &self.memo {
            memo.remember(memo.fingerprint(&key.public(), domain, msg, &sig));
        }
        sig
    }

    /// Evaluates the VRF on `input` under `domain` with `key` (exactly
    /// [`Keypair::vrf_sign`]); with a memo, remembers the proof as
    /// verifying under `key`'s public key (see the type's docs).
    pub fn vrf_sign(
        &self,
        key: &Keypair,
        domain: Domain,
        input: &[u8],
    ) -> ([u8; 32], VrfOutput, VrfProof) {
        let (randomness, proved) = self.vrf_sign_if(key, domain, input, |_| true);
        let (output, proof) = proved.expect("a proof is always wanted here");
        (randomness, output, proof)
    }

    /// Exactly [`Keypair::vrf_sign_if`] with `key`; with a memo, a proof it
    /// makes is remembered as verifying, as by [`Self::vrf_sign`].
    pub fn vrf_sign_if(
        &self,
        key: &Keypair,
        domain: Domain,
        input: &[u8],
        wanted: impl FnOnce(&[u8; 32]) -> bool,
    ) -> ([u8; 32], Option<(VrfOutput, VrfProof)>) {
        let (randomness, proved) = key.vrf_sign_if(domain, input, wanted);
        if let (Some(memo), Some((output, proof))) = (&self.memo, &proved) {
            let fp = memo.vrf_fingerprint(&key.public(), domain, input, output, proof);
            memo.remember(fp);
        }
        (randomness, proved)
    }

    /// Verifies a VRF `output` and `proof` for `input` under `domain`:
    /// exactly [`PublicKey::vrf_verify`]'s answer, the verified randomness.
    /// A memo remembers proofs that verified as it remembers signatures
    /// (under a separate fingerprint key, so a VRF entry never answers for
    /// a signature); on a hit only the randomness is derived from the
    /// output, without the proof check that is nearly all of the cost.
    pub fn vrf_verify(
        &self,
        public: &PublicKey,
        domain: Domain,
        input: &[u8],
        output: &VrfOutput,
        proof: &VrfProof,
    ) -> Result<[u8; 32], CryptoError> {
        let Some(memo) = &self.memo else {
            return public.vrf_verify(domain, input, output, proof);
        };
        let fp = memo.vrf_fingerprint(public, domain, input, output, proof);
        if memo.known(&fp) {
            return public.vrf_randomness(domain, input, output);
        }
        let randomness = public.vrf_verify(domain, input, output, proof)?;
        memo.remember(fp);
        Ok(randomness)
    }

    /// Verifies that every one of `signers` signed `msg` under `domain` (a
    /// certificate): fails with the position of the first that did not.
    /// What is not known is verified as one batch
    /// ([`verify_batch_deterministic`]: no RNG needed, about half the cost
    /// of one by one at a certificate's size) and, if the batch fails, one
    /// by one to name the first bad signature. With a memo, the whole set
    /// is remembered under one fingerprint (under a separate key, so a set
    /// never answers for a signature or a VRF proof) and each signature
    /// under its own: the same certificate checked by many nodes costs one
    /// hash after the first, and another set of signatures already seen
    /// one by one (validators forming certificates of one commit from the
    /// same votes in different orders) one hash per signature.
    pub fn verify_all(
        &self,
        domain: Domain,
        msg: &[u8],
        signers: &[(PublicKey, Signature)],
    ) -> Result<(), (usize, CryptoError)> {
        let Some(memo) = &self.memo else {
            let all: Vec<usize> = (0..signers.len()).collect();
            return verify_these(domain, msg, signers, &all);
        };
        let set = memo.set_fingerprint(domain, msg, signers);
        if memo.known(&set) {
            return Ok(());
        }
        let fps: Vec<_> = signers
            .iter()
            .map(|(public, sig)| memo.fingerprint(public, domain, msg, sig))
            .collect();
        let unknown: Vec<usize> = (0..signers.len())
            .filter(|i| !memo.known(&fps[*i]))
            .collect();
        verify_these(domain, msg, signers, &unknown)?;
        for i in unknown {
            memo.remember(fps[i]);
        }
        memo.remember(set);
        Ok(())
    }

    /// Verifies all `items`: [`verify_batch`] over the ones the memo does
    /// not know (a single one is verified alone), all remembered if they
    /// verify. Fails if any one is bad; the caller then verifies them one
    /// by one to find which, as with [`verify_batch`].
    pub fn verify_batch<R: RngCore + CryptoRng>(
        &self,
        items: &[BatchItem<'_>],
        rng: &mut R,
    ) -> Result<(), CryptoError> {
        let Some(memo) = &self.memo else {
            return verify_batch(items, rng);
        };
        let mut unknown = Vec::with_capacity(items.len());
        for it in items {
            let fp = memo.fingerprint(it.public, it.domain, it.msg, it.signature);
            if !memo.known(&fp) {
                unknown.push((*it, fp));
            }
        }
        match unknown.as_slice() {
            [] => return Ok(()),
            [(it, _)] => it.public.verify(it.domain, it.msg, it.signature)?,
            _ => {
                let todo: Vec<BatchItem<'_>> = unknown.iter().map(|(it, _)| *it).collect();
                verify_batch(&todo, rng)?;
            }
        }
        for (_, fp) in unknown {
            memo.remember(fp);
        }
        Ok(())
    }
}

/// Verifies the signers at positions `which` of `signers` (all signing
/// `msg` under `domain`): one deterministic batch, then one by one to name
/// the first bad one if the batch fails.
fn verify_these(
    domain: Domain,
    msg: &[u8],
    signers: &[(PublicKey, Signature)],
    which: &[usize],
) -> Result<(), (usize, CryptoError)> {
    let items: Vec<BatchItem<'_>> = which
        .iter()
        .map(|i| BatchItem {
            domain,
            msg,
            public: &signers[*i].0,
            signature: &signers[*i].1,
        })
        .collect();
    if items.is_empty() || verify_batch_deterministic(&items).is_ok() {
        return Ok(());
    }
    for i in which {
        let (public, sig) = &signers[*i];
        public.verify(domain, msg, sig).map_err(|e| (*i, e))?;
    }
    Ok(())
}

/// A bounded memo of signatures that verified (see [`SignatureVerifier`]).
pub struct SignatureMemo {
    key: [u8; 32],
    vrf_key: [u8; 32],
    set_key: [u8; 32],
    table: Mutex<Table>,
}

struct Table {
    entries: SetAssoc<Fingerprint, (), WAYS>,
    hits: u64,
    misses: u64,
}

/// How a [`SignatureMemo`] has served so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoStats {
    /// Lookups answered from the memo.
    pub hits: u64,
    /// Lookups that had to verify.
    pub misses: u64,
    /// Fingerprints it can hold.
    pub capacity: usize,
}

impl std::fmt::Debug for SignatureMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureMemo")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl SignatureMemo {
    /// 16 384 fingerprints (528 KiB): a few hundred rounds of a
    /// 24-validator committee's blocks.
    pub const DEFAULT_CAPACITY: usize = 1 << 14;

    /// A memo of `capacity` fingerprints (rounded up to a power of two, at
    /// least one set of 4), its secret fingerprint key derived from `seed`.
    pub fn new(capacity: usize, seed: &Seed) -> Self {
        let sets = capacity.div_ceil(WAYS).max(1).next_power_of_two();
        Self {
            key: seed.derive("idlegrid/signature-memo/key").to_bytes(),
            vrf_key: seed.derive("idlegrid/signature-memo/vrf-key").to_bytes(),
            set_key: seed.derive("idlegrid/signature-memo/set-key").to_bytes(),
            table: Mutex::new(Table {
                entries: SetAssoc::new(sets),
                hits: 0,
                misses: 0,
            }),
        }
    }

    /// A memo of [`SignatureMemo::DEFAULT_CAPACITY`], shared.
    pub fn shared(seed: &Seed) -> Arc<Self> {
        Arc::new(Self::new(Self::DEFAULT_CAPACITY, seed))
    }

    /// Hits, misses and capacity so far.
    pub fn stats(&self) -> MemoStats {
        let t = self.lock();
        MemoStats {
            hits: t.hits,
            misses: t.misses,
            capacity: t.entries.capacity(),
        }
    }

    /// Fingerprints it can hold.
    pub fn capacity(&self) -> usize {
        self.lock().entries.capacity()
    }

    /// The table, whatever a panicking holder left: every operation leaves
    /// it consistent (an entry is written whole), so a poisoned lock is
    /// still a valid memo.
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fingerprint(
        &self,
        public: &PublicKey,
        domain: Domain,
        msg: &[u8],
        sig: &Signature,
    ) -> Fingerprint {
        Self::keyed_fingerprint(&self.key, public, domain, &[&sig.to_bytes()], msg)
    }

    /// A VRF evaluation's fingerprint, under the VRF key.
    fn vrf_fingerprint(
        &self,
        public: &PublicKey,
        domain: Domain,
        input: &[u8],
        output: &VrfOutput,
        proof: &VrfProof,
    ) -> Fingerprint {
        let proof = proof.to_bytes();
        let parts: [&[u8]; 2] = [output.as_bytes(), &proof];
        Self::keyed_fingerprint(&self.vrf_key, public, domain, &parts, input)
    }

    /// A set of signatures on one message, under the set key: the domain
    /// label (length-prefixed), the number of signers, each signer's key
    /// and signature, then the message.
    fn set_fingerprint(
        &self,
        domain: Domain,
        msg: &[u8],
        signers: &[(PublicKey, Signature)],
    ) -> Fingerprint {
        let label = domain.label().as_bytes();
        let mut h = blake3::Hasher::new_keyed(&self.set_key);
        h.update(&(label.len() as u64).to_le_bytes());
        h.update(label);
        h.update(&(signers.len() as u64).to_le_bytes());
        for (public, sig) in signers {
            h.update(public.as_bytes());
            h.update(&sig.to_bytes());
        }
        h.update(msg);
        *h.finalize().as_bytes()
    }

    /// blake3 keyed by `key` over the domain label (length-prefixed), the
    /// public key, the fixed-size `proof` parts, then the message.
    fn keyed_fingerprint(
        key: &[u8; 32],
        public: &PublicKey,
        domain: Domain,
        proof: &[&[u8]],
        msg: &[u8],
    ) -> Fingerprint {
        let label = domain.label().as_bytes();
        let mut h = blake3::Hasher::new_keyed(key);
        h.update(&(label.len() as u64).to_le_bytes());
        h.update(label);
        h.update(public.as_bytes());
        for p in proof {
            h.update(p);
        }
        h.update(msg);
        *h.finalize().as_bytes()
    }

    fn set_bits(fp: &Fingerprint) -> u64 {
        u64::from_le_bytes(fp[..8].try_into().expect("8 of 32 bytes"))
    }

    /// True if `fp` verified before (and is still held).
    fn known(&self, fp: &Fingerprint) -> bool {
        let mut t = self.lock();
        let set = t.entries.set_of(Self::set_bits(fp));
        let hit = t.entries.get(set, fp).is_some();
        if hit {
            t.hits += 1;
        } else {
            t.misses += 1;
        }
        hit
    }

    /// Records that `fp`'s inputs verified.
    fn remember(&self, fp: Fingerprint) {
        let mut t = self.lock();
        let set = t.entries.set_of(Self::set_bits(&fp));
        t.entries.insert(set, fp, ());
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::Keypair;

    const D: Domain = Domain::new("idlegrid/test/memo");
    const OTHER: Domain = Domain::new("idlegrid/test/memo-other");

    fn key(i: u8) -> Keypair {
        Keypair::from_seed(&Seed::from_u64(u64::from(i)))
    }

    fn tiny() -> SignatureVerifier {
        SignatureVerifier::memoized(Arc::new(SignatureMemo::new(8, &Seed::from_u64(9))))
    }

    /// One verification request, from a few keys and messages, with its
    /// signature good, by another key, over another message, under another
    /// domain, or with a flipped bit.
    #[derive(Debug, Clone)]
    struct Req {
        signer: u8,
        claimed: u8,
        msg: u8,
        signed_msg: u8,
        domain: bool,
        flip: Option<(usize, u8)>,
        /// Signed through the memo (remembered as it is made).
        through_memo: bool,
    }

    fn req() -> impl Strategy<Value = Req> {
        (
            0u8..3,
            prop_oneof![3 => Just(None), 1 => (0u8..3).prop_map(Some)],
            0u8..4,
            prop_oneof![3 => Just(None), 1 => (0u8..4).prop_map(Some)],
            prop_oneof![4 => Just(true), 1 => Just(false)],
            prop_oneof![3 => Just(None), 1 => (0usize..64, 1u8..=255).prop_map(Some)],
            any::<bool>(),
        )
            .prop_map(
                |(signer, claimed, msg, signed_msg, domain, flip, through_memo)| Req {
                    signer,
                    claimed: claimed.unwrap_or(signer),
                    msg,
                    signed_msg: signed_msg.unwrap_or(msg),
                    domain,
                    flip,
                    through_memo,
                },
            )
    }

    fn inputs(r: &Req, memo: &SignatureVerifier) -> (PublicKey, Vec<u8>, Signature) {
        let domain = if r.domain { D } else { OTHER };
        let signer = if r.through_memo {
            memo
        } else {
            &SignatureVerifier::plain()
        };
        let mut sig = signer
            .sign(&key(r.signer), domain, &[r.signed_msg])
            .to_bytes();
        if let Some((i, x)) = r.flip {
            sig[i] ^= x;
        }
        (
            key(r.claimed).public(),
            vec![r.msg],
            Signature::from_bytes(sig),
        )
    }

    proptest! {
        /// Through a memo small enough to evict, every answer — single or
        /// batched — is the plain verifier's: a bad signature never
        /// verifies, whatever verified or was signed through the memo
        /// before with the same key or message.
        #[test]
        fn memo_answers_exactly_what_verification_answers(
            reqs in proptest::collection::vec(req(), 1..60),
            batch in 1usize..5,
        ) {
            let memo = tiny();
            let mut rng = Seed::from_u64(1).rng();
            for chunk in reqs.chunks(batch) {
                let ins: Vec<_> = chunk.iter().map(|r| inputs(r, &memo)).collect();
                for (pk, msg, sig) in &ins {
                    let plain = pk.verify(D, msg, sig);
                    prop_assert_eq!(memo.verify(pk, D, msg, sig), plain.clone());
                    // And again, now that it may be remembered.
                    prop_assert_eq!(memo.verify(pk, D, msg, sig), plain);
                }
                let items: Vec<BatchItem<'_>> = ins
                    .iter()
                    .map(|(pk, msg, sig)| BatchItem { domain: D, msg, public: pk, signature: sig })
                    .collect();
                let all_good = ins.iter().all(|(pk, msg, sig)| pk.verify(D, msg, sig).is_ok());
                prop_assert_eq!(memo.verify_batch(&items, &mut rng).is_ok(), all_good);
            }
        }
    }

    #[test]
    fn what_is_signed_through_a_memo_is_checked_by_one_lookup_and_vouches_for_nothing_else() {
        let v = tiny();
        let k = key(1);
        let sig = v.sign(&k, D, b"block");
        assert_eq!(
            sig,
            k.sign(D, b"block"),
            "the same signature as the key's own"
        );
        let (bytes, out, proof) = v.vrf_sign(&k, D, b"input");
        assert_eq!((bytes, out, proof), k.vrf_sign(D, b"input"));
        let pk = k.public();
        assert_eq!(v.verify(&pk, D, b"block", &sig), Ok(()));
        assert_eq!(v.vrf_verify(&pk, D, b"input", &out, &proof), Ok(bytes));
        let stats = v.memo().expect("memo").stats();
        assert_eq!((stats.hits, stats.misses), (2, 0));
        // Another message, domain or key is verified, and fails.
        assert!(v.verify(&pk, D, b"other", &sig).is_err());
        assert!(v.verify(&pk, OTHER, b"block", &sig).is_err());
        assert!(v.verify(&key(2).public(), D, b"block", &sig).is_err());
        assert!(
            v.vrf_verify(&key(2).public(), D, b"input", &out, &proof)
                .is_err()
        );
        assert_eq!(v.memo().expect("memo").stats().misses, 4);
    }

    #[test]
    fn a_good_signature_does_not_vouch_for_a_bad_one_on_the_same_key_and_message() {
        let v = SignatureVerifier::memoized(SignatureMemo::shared(&Seed::from_u64(3)));
        let k = key(1);
        let good = k.sign(D, b"block");
        v.verify(&k.public(), D, b"block", &good).unwrap();
        v.verify(&k.public(), D, b"block", &good).unwrap();
        assert_eq!(v.memo().unwrap().stats().hits, 1);
        // Same key and message, every single-bit change of the signature.
        for i in 0..64 * 8 {
            let mut bad = good.to_bytes();
            bad[i / 8] ^= 1 << (i % 8);
            let bad = Signature::from_bytes(bad);
            assert!(v.verify(&k.public(), D, b"block", &bad).is_err(), "bit {i}");
        }
        // The good one under another domain, message or key.
        assert!(v.verify(&k.public(), OTHER, b"block", &good).is_err());
        assert!(v.verify(&k.public(), D, b"blocK", &good).is_err());
        assert!(v.verify(&key(2).public(), D, b"block", &good).is_err());
        // A batch holding a remembered good signature and a bad one fails.
        let bad = Signature::from_bytes([7; 64]);
        let pk = k.public();
        let items = [
            BatchItem {
                domain: D,
                msg: b"block",
                public: &pk,
                signature: &good,
            },
            BatchItem {
                domain: D,
                msg: b"block",
                public: &pk,
                signature: &bad,
            },
        ];
        assert!(
            v.verify_batch(&items, &mut Seed::from_u64(4).rng())
                .is_err()
        );
        // Failures are not remembered: the good one still hits, the bad
        // one is verified (and fails) every time.
        let before = v.memo().unwrap().stats();
        assert!(v.verify(&pk, D, b"block", &bad).is_err());
        assert!(v.verify(&pk, D, b"block", &bad).is_err());
        let after = v.memo().unwrap().stats();
        assert_eq!(after.misses - before.misses, 2);
    }

    #[test]
    fn a_shared_memo_verifies_each_signature_once_and_stays_bounded() {
        let memo = Arc::new(SignatureMemo::new(64, &Seed::from_u64(5)));
        let nodes: Vec<SignatureVerifier> = (0..4)
            .map(|_| SignatureVerifier::memoized(Arc::clone(&memo)))
            .collect();
        let k = key(0);
        let msgs: Vec<[u8; 2]> = (0..16u8).map(|i| [i, 0]).collect();
        let sigs: Vec<Signature> = msgs.iter().map(|m| k.sign(D, m)).collect();
        for v in &nodes {
            for (m, s) in msgs.iter().zip(&sigs) {
                v.verify(&k.public(), D, m, s).unwrap();
            }
        }
        let s = memo.stats();
        assert_eq!((s.misses, s.hits), (16, 48), "one verification each");
        assert_eq!(s.capacity, 64);
        // Far more signatures than it holds: still bounded, still right.
        for i in 0..300u16 {
            let m = i.to_le_bytes();
            let sig = k.sign(D, &m);
            nodes[0].verify(&k.public(), D, &m, &sig).unwrap();
        }
        assert!(memo.lock().entries.len() <= 64);
    }

    #[test]
    fn an_entry_is_33_bytes_as_documented() {
        assert_eq!(std::mem::size_of::<Option<(Fingerprint, ())>>(), 33);
    }

    #[test]
    fn capacities_round_up_to_whole_sets() {
        let m = SignatureMemo::new(10, &Seed::from_u64(1));
        assert_eq!(m.capacity(), 16);
        let m = SignatureMemo::new(0, &Seed::from_u64(1));
        assert_eq!(m.capacity(), WAYS);
        assert_eq!(
            SignatureMemo::shared(&Seed::from_u64(1)).capacity(),
            SignatureMemo::DEFAULT_CAPACITY
        );
    }
    #[test]
    fn vrf_hits_give_the_verified_randomness_and_bad_proofs_never_hit() {
        let v = tiny();
        let k = key(1);
        let (bytes, out, proof) = k.vrf_sign(D, b"input");
        let pk = k.public();
        for _ in 0..2 {
            assert_eq!(v.vrf_verify(&pk, D, b"input", &out, &proof), Ok(bytes));
        }
        assert_eq!(v.memo().expect("memo").stats().hits, 1);
        // The same evaluation under another domain, input or key fails.
        assert!(v.vrf_verify(&pk, OTHER, b"input", &out, &proof).is_err());
        assert!(v.vrf_verify(&pk, D, b"other", &out, &proof).is_err());
        assert!(
            v.vrf_verify(&key(2).public(), D, b"input", &out, &proof)
                .is_err()
        );
        // A signature over the same bytes is not a VRF proof, and the
        // other way round.
        let sig = Signature::from_bytes(proof.to_bytes());
        assert!(v.verify(&pk, D, b"input", &sig).is_err());
    }

    #[test]
    fn a_set_is_remembered_whole_and_a_bad_member_is_named() {
        for v in [SignatureVerifier::plain(), tiny()] {
            let keys: Vec<Keypair> = (1..5).map(key).collect();
            let mut set: Vec<(PublicKey, Signature)> = keys
                .iter()
                .map(|k| (k.public(), k.sign(D, b"cert")))
                .collect();
            for _ in 0..2 {
                assert_eq!(v.verify_all(D, b"cert", &set), Ok(()));
            }
            assert!(v.verify_all(D, b"other", &set).is_err());
            assert!(v.verify_all(OTHER, b"cert", &set).is_err());
            // Member 2 signed something else: named, and never a hit.
            set[2].1 = keys[2].sign(D, b"not the cert");
            for _ in 0..2 {
                assert_eq!(v.verify_all(D, b"cert", &set).map_err(|e| e.0), Err(2));
            }
            // A set is not a signature: its members alone still verify
            // one by one.
            assert!(v.verify(&set[0].0, D, b"cert", &set[0].1).is_ok());
        }
    }

    #[test]
    fn another_set_of_known_signatures_costs_no_verification() {
        let v = tiny();
        let keys: Vec<Keypair> = (1..6).map(key).collect();
        let all: Vec<(PublicKey, Signature)> = keys
            .iter()
            .map(|k| (k.public(), k.sign(D, b"cert")))
            .collect();
        assert_eq!(v.verify_all(D, b"cert", &all[..3]), Ok(()));
        assert_eq!(v.verify_all(D, b"cert", &all[2..]), Ok(()));
        let misses = v.memo().unwrap().stats().misses;
        // Every member of this set was checked in one of the two above.
        let mixed = [all[4], all[0], all[3]];
        assert_eq!(v.verify_all(D, b"cert", &mixed), Ok(()));
        let stats = v.memo().unwrap().stats();
        assert_eq!(stats.misses, misses + 1, "only the set itself was new");
        // A forged member among known ones is still caught and named.
        let forged = [all[4], (all[0].0, keys[0].sign(D, b"other")), all[3]];
        assert_eq!(v.verify_all(D, b"cert", &forged).map_err(|e| e.0), Err(1));
    }
}

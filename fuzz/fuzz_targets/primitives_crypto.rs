//! Untrusted keys, signatures and VRF proofs: parsing and verifying
//! arbitrary bytes never panics (`PublicKey::verify`, `vrf_verify`,
//! `verify_batch`, `Commitment::open`), and nothing forged verifies.
#![no_main]

use idlegrid_primitives::*;
use libfuzzer_sys::fuzz_target;

const D: Domain = Domain::new("idlegrid/fuzz/crypto");

fuzz_target!(
    init: idlegrid_fuzz::write_seeds({
        let k = Keypair::from_seed(&Seed::from_u64(1));
        let sig = k.sign(D, b"msg");
        let (_, out, proof) = k.vrf_sign(D, b"msg");
        let mut s = k.public().as_bytes().to_vec();
        s.extend_from_slice(&sig.to_bytes());
        s.extend_from_slice(out.as_bytes());
        s.extend_from_slice(&proof.to_bytes());
        s.extend_from_slice(b"msg");
        [s]
    }),
    |data: &[u8]| {
        if data.len() < 32 + 64 + 32 + 64 {
            return;
        }
        let (pk, rest) = data.split_at(32);
        let (sig, rest) = rest.split_at(64);
        let (out, rest) = rest.split_at(32);
        let (proof, msg) = rest.split_at(64);
        let pk = PublicKey::try_from(pk).expect("32 bytes");
        let sig = Signature::from_slice(sig).expect("64 bytes");
        let out = VrfOutput::try_from(out).expect("32 bytes");
        let proof = VrfProof::from_slice(proof).expect("64 bytes");
        let _ = pk.is_valid();
        let ok = pk.verify(D, msg, &sig).is_ok();
        let _ = pk.vrf_verify(D, msg, &out, &proof);
        let item = || BatchItem { domain: D, msg, public: &pk, signature: &sig };
        let mut rng = Seed::from_u64(0).rng();
        let batch_ok = verify_batch(&[item(), item()], &mut rng).is_ok();
        assert!(!batch_ok || ok, "batch verification accepted what single verification rejects");
        if let Ok(salt) = Salt::try_from(&data[..32]) {
            let c = Commitment::to(D, &msg, &salt);
            assert!(c.open(D, &msg, &salt).is_ok());
            if let Ok(c2) = decode::<Commitment>(&data[32..64], 64) {
                let _ = c2.open(D, &msg, &salt);
            }
        }
    }
);

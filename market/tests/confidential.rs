//! Confidential job data: inputs sealed to the matched provider only; a
//! referee reads only the disputed trap's input, only after the client's
//! grant is recorded; tampering and replays are detected.

use idlegrid_market::registry::*;
use idlegrid_market::strategies::{unit_ask, unit_bid};
use idlegrid_market::*;
use idlegrid_primitives::{
    EncryptionKeyCert, EncryptionSecret, Keypair, SealError, SealedBytes, Seed, Timestamp,
    bucket_for,
};

const NOW: Timestamp = Timestamp::ZERO;

struct Party {
    key: Keypair,
    enc: EncryptionSecret,
    cert: EncryptionKeyCert,
}

fn party(n: u64) -> Party {
    let seed = Seed::from_u64(n);
    let key = Keypair::from_seed(&seed.derive("node"));
    let enc = EncryptionSecret::from_seed(&seed.derive("enc"));
    let cert = EncryptionKeyCert::issue(&key, &enc);
    Party { key, enc, cert }
}

struct Job {
    reg: Registry,
    id: JobId,
    client: Party,
    provider: Party,
    inputs: Vec<Vec<u8>>,
    sealed: Vec<SealedBytes>,
}

const TRAP: u32 = 2;

/// A client matched with `provider`; 4 subtask inputs, subtask 2 a trap
/// (shorter than the others), all sealed to the provider at one bucket.
fn job() -> Job {
    let (client, provider, _) = (party(1), party(2), ());
    let mut reg = Registry::new(RegistryLimits::default());
    let rep = FlatReputation(Reputation::MAX);
    let ctx = ClearingContext {
        now: NOW,
        limits: Limits::default(),
        reputation: &rep,
    };
    let out = clear_with_goods(
        &PayAsBid,
        &[unit_ask(1, 5, 1, provider.key.account_id())],
        &[unit_bid(2, 9, 1, client.key.account_id())],
        &ctx,
        &reg,
    )
    .unwrap();
    let id = reg.open_job(NOW, &out.clearing.matches[0]).unwrap();
    let inputs: Vec<Vec<u8>> = (0..4u8)
        .map(|i| {
            if u32::from(i) == TRAP {
                vec![0xAA; 100]
            } else {
                vec![i; 700]
            }
        })
        .collect();
    let bucket = bucket_for(inputs.iter().map(Vec::len).max().unwrap()).unwrap();
    let mut rng = Seed::from_u64(77).rng();
    let sealed = inputs
        .iter()
        .enumerate()
        .map(|(i, data)| {
            reg.seal_item(
                &mut rng,
                &id,
                JobItem::Input(i as u32),
                &provider.cert,
                data,
                bucket,
            )
            .unwrap()
        })
        .collect();
    Job {
        reg,
        id,
        client,
        provider,
        inputs,
        sealed,
    }
}

fn open(p: &Party, job: JobId, i: u32, s: &SealedBytes) -> Result<Vec<u8>, SealError> {
    p.enc.open(&JobItem::Input(i).seal_context(job), s)
}

#[test]
fn only_the_matched_provider_opens_the_inputs() {
    let j = job();
    let stranger = party(3);
    for (i, s) in j.sealed.iter().enumerate() {
        assert_eq!(open(&j.provider, j.id, i as u32, s).unwrap(), j.inputs[i]);
        assert_eq!(
            open(&stranger, j.id, i as u32, s),
            Err(SealError::Undecryptable)
        );
        // The client itself cannot open what it sealed to the provider.
        assert_eq!(
            open(&j.client, j.id, i as u32, s),
            Err(SealError::Undecryptable)
        );
    }
    // The registry refuses to seal to an unmatched provider.
    let mut rng = Seed::from_u64(1).rng();
    assert!(matches!(
        j.reg.seal_item(
            &mut rng,
            &j.id,
            JobItem::Input(0),
            &stranger.cert,
            b"x",
            256
        ),
        Err(RegistryError::NoGrant { .. })
    ));
}

#[test]
fn sealed_traps_look_like_sealed_inputs() {
    let j = job();
    let len = j.sealed[0].len();
    assert!(j.sealed.iter().all(|s| s.len() == len));
    assert_eq!(j.sealed[TRAP as usize].bucket(), j.sealed[0].bucket());
}

#[test]
fn referee_reads_only_the_disputed_trap_and_only_after_the_grant() {
    let mut j = job();
    let referee = party(4);
    let item = JobItem::Input(TRAP);
    let trap_input = j.inputs[TRAP as usize].clone();
    let bucket = j.sealed[0].bucket();
    let mut rng = Seed::from_u64(5).rng();

    // Before the grant: the referee cannot open what the provider got, and
    // the client's re-sealing is refused.
    assert_eq!(
        open(&referee, j.id, TRAP, &j.sealed[TRAP as usize]),
        Err(SealError::Undecryptable)
    );
    assert!(matches!(
        j.reg
            .seal_item(&mut rng, &j.id, item, &referee.cert, &trap_input, bucket),
        Err(RegistryError::NoGrant { .. })
    ));

    // Grants by the provider or the referee itself are refused.
    let grant = Grant {
        job: j.id,
        grantee: referee.key.account_id(),
        item,
    };
    for k in [&j.provider.key, &referee.key] {
        let rec = SignedOp::sign(
            k,
            j.reg.next_nonce(&k.account_id()),
            RegistryOp::Grant(grant),
        );
        assert!(matches!(
            j.reg.apply(NOW, &rec),
            Err(RegistryError::NotClient { .. })
        ));
    }

    // The client's signed grant is recorded, then the client re-seals.
    let ck = &j.client.key;
    let rec = SignedOp::sign(
        ck,
        j.reg.next_nonce(&ck.account_id()),
        RegistryOp::Grant(grant),
    );
    j.reg.apply(NOW, &rec).unwrap();
    assert_eq!(j.reg.grants(&j.id).unwrap(), vec![grant]);
    assert_eq!(
        j.reg.readers(&j.id, item).unwrap(),
        vec![j.provider.key.account_id(), referee.key.account_id()]
    );
    let to_referee = j
        .reg
        .seal_item(&mut rng, &j.id, item, &referee.cert, &trap_input, bucket)
        .unwrap();
    assert_eq!(open(&referee, j.id, TRAP, &to_referee).unwrap(), trap_input);

    // Still nothing else: no grant for the real inputs, and their boxes
    // stay sealed to the provider.
    for i in [0u32, 1, 3] {
        assert!(
            j.reg
                .check_access(&j.id, &referee.key.account_id(), JobItem::Input(i))
                .is_err()
        );
        assert_eq!(
            open(&referee, j.id, i, &j.sealed[i as usize]),
            Err(SealError::Undecryptable)
        );
    }
    assert_eq!(
        j.reg.readers(&j.id, JobItem::Input(0)).unwrap(),
        vec![j.provider.key.account_id()]
    );
    // A replayed grant record is refused.
    assert!(matches!(
        j.reg.apply(NOW, &rec),
        Err(RegistryError::BadNonce { .. })
    ));
    // Grants for unknown jobs are typed errors.
    let bogus = Grant {
        job: JobId::new(OrderId::new(99), OrderId::new(98)),
        ..grant
    };
    let rec = SignedOp::sign(
        ck,
        j.reg.next_nonce(&ck.account_id()),
        RegistryOp::Grant(bogus),
    );
    assert_eq!(
        j.reg.apply(NOW, &rec),
        Err(RegistryError::UnknownJob(bogus.job))
    );
}

#[test]
fn tampering_and_replays_are_detected() {
    let j = job();
    let s = &j.sealed[0];
    let mut bytes = s.as_bytes().to_vec();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    let ctx = JobItem::Input(0).seal_context(j.id);
    assert_eq!(
        j.provider.enc.open_bytes(&ctx, &bytes),
        Err(SealError::Undecryptable)
    );
    // A box for subtask 0 replayed as subtask 1, or into another job.
    assert_eq!(
        open(&j.provider, j.id, 1, s),
        Err(SealError::ContextMismatch)
    );
    let other = JobId::new(OrderId::new(7), OrderId::new(8));
    assert_eq!(
        open(&j.provider, other, 0, s),
        Err(SealError::ContextMismatch)
    );
    // Malformed lengths are typed errors, never panics.
    for n in [0usize, 1, 47, 48, 300, 4096] {
        assert!(j.provider.enc.open_bytes(&ctx, &vec![0u8; n]).is_err());
    }
}

#[test]
fn a_private_program_is_sealed_like_an_input() {
    let j = job();
    let stranger = party(3);
    let mut rng = Seed::from_u64(9).rng();
    let program = b"(module (func (export \"run\")))".to_vec();
    let bucket = j.sealed[0].bucket();
    let s = j
        .reg
        .seal_item(
            &mut rng,
            &j.id,
            JobItem::Program,
            &j.provider.cert,
            &program,
            bucket,
        )
        .unwrap();
    assert_eq!(s.len(), j.sealed[0].len());
    let ctx = JobItem::Program.seal_context(j.id);
    assert_eq!(j.provider.enc.open(&ctx, &s).unwrap(), program);
    assert_eq!(stranger.enc.open(&ctx, &s), Err(SealError::Undecryptable));
    // A program box is not an input box.
    assert_eq!(
        open(&j.provider, j.id, 0, &s),
        Err(SealError::ContextMismatch)
    );
}

//! The redb store under a real validator node: what it wrote comes back
//! after a reopen, recovery from it resumes without re-signing a round, and
//! a damaged file, a truncated file or another schema version is a typed
//! error naming the file — never a panic, never a silent fresh start.

use std::path::Path;

use idlegrid_dag_ledger::consensus::{Committee, ConsensusConfig};
use idlegrid_dag_ledger::ledger::{Genesis, Ledger, Params};
use idlegrid_market::KDouble;
use idlegrid_node::market::MarketRules;
use idlegrid_node::store::{NodeStore, persist_step};
use idlegrid_node::validator::{ValidatorNode, ValidatorSetup};
use idlegrid_primitives::{Amount, Duration, Keypair, Machine, Seed, Timestamp};
use idlegrid_store::{RedbStore, SCHEMA_VERSION, StoreError};

fn setup(key: &Keypair) -> (Committee, ValidatorSetup) {
    let id = key.node_id();
    let genesis = Genesis {
        balances: vec![(id.account(), Amount::new(1_000_000))],
        stakes: vec![],
        params: Params::default(),
    };
    let setup = ValidatorSetup {
        ledger: Ledger::new(genesis).unwrap(),
        rules: MarketRules {
            stake_per_slot: Amount::new(1_000),
            slash_to_client_bps: 5_000,
            stage_deadline: Duration::from_secs(15),
            clearing_period: Duration::from_secs(1),
            committee_size: 1,
            referees: vec![id],
            book: Default::default(),
            reputation_epoch_secs: 10,
            global_trust: None,
        },
        consensus: ConsensusConfig::default(),
        mechanism: || Box::new(KDouble::new(5_000).unwrap()),
        epoch_secs: 1,
    };
    (Committee::equal([id]).unwrap(), setup)
}

/// Drives a one-validator committee (it commits alone) for `rounds`
/// timeouts against `store`; returns its last proposed round.
fn run(node: &mut ValidatorNode, store: &mut RedbStore, start: Timestamp, steps: u32) -> Timestamp {
    let mut now = start;
    for _ in 0..steps {
        now = node.poll_timeout().unwrap_or(now).max(now);
        node.handle_timeout(now);
        persist_step(node, store).unwrap();
        while node.poll_transmit().is_some() {}
        while node.poll_event().is_some() {}
    }
    now
}

fn fresh(path: &Path, steps: u32) -> (Keypair, ValidatorNode) {
    let key = Keypair::from_seed(&Seed::from_u64(1));
    let (committee, setup) = setup(&key);
    let mut node = ValidatorNode::new(key.clone(), committee, &setup, Seed::from_u64(2), false)
        .unwrap()
        .with_persistence(4);
    let mut store = RedbStore::create(path).unwrap();
    run(&mut node, &mut store, Timestamp::ZERO, steps);
    (key, node)
}

#[test]
fn recovery_from_a_reopened_store_resumes_without_resigning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.redb");
    let (key, node) = fresh(&path, 40);
    let before = node.consensus().stats();
    assert!(before.commits > 10, "{before:?}");
    let digest = node.ledger().state_digest();
    drop(node);

    let mut store = RedbStore::open(&path).unwrap();
    let stored = store.load().unwrap();
    assert!(stored.checkpoint.is_some());
    let (committee, setup) = setup(&key);
    let mut node =
        ValidatorNode::recover(key, committee, &setup, Seed::from_u64(3), false, stored, 4)
            .unwrap();
    let after = node.consensus().stats();
    assert_eq!(after.proposed_round, before.proposed_round);
    assert_eq!(after.commits, before.commits);
    assert_eq!(node.ledger().state_digest(), digest);
    // It goes on from the next round.
    run(&mut node, &mut store, Timestamp::from_millis(100_000), 5);
    assert!(node.consensus().stats().proposed_round > before.proposed_round);
    // Pruning keeps the block table bounded by gc_depth, not by history.
    let (blocks, _) = store.counts().unwrap();
    assert!(
        blocks <= 2 * ConsensusConfig::default().gc_depth + 8,
        "{blocks} blocks kept"
    );
}

#[test]
fn missing_and_existing_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.redb");
    assert!(matches!(
        RedbStore::open(&path),
        Err(StoreError::Missing { .. })
    ));
    drop(RedbStore::create(&path).unwrap());
    let err = RedbStore::create(&path).unwrap_err();
    assert!(matches!(err, StoreError::Exists { .. }));
    assert!(err.to_string().contains("v.redb"));
}

#[test]
fn another_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.redb");
    let mut s = RedbStore::create(&path).unwrap();
    s.set_schema_version(SCHEMA_VERSION + 1).unwrap();
    drop(s);
    let err = RedbStore::open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaVersion { found, .. } if found == SCHEMA_VERSION + 1),
        "{err}"
    );
    assert!(err.to_string().contains("v.redb"), "{err}");
}

#[test]
fn a_file_that_is_not_a_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.redb");
    std::fs::write(&path, vec![0xAB; 64 * 1024]).unwrap();
    let err = RedbStore::open(&path).unwrap_err();
    assert!(err.to_string().contains("v.redb"), "{err}");
}

/// Opening and loading a damaged file either fails with an error naming
/// the file, or (redb repaired it to its last good commit) recovers a
/// consistent earlier state; it never panics.
fn open_damaged(path: &Path) -> Result<(), StoreError> {
    let store = RedbStore::open(path)?;
    let stored = store.load()?;
    let key = Keypair::from_seed(&Seed::from_u64(1));
    let (committee, setup) = setup(&key);
    ValidatorNode::recover(key, committee, &setup, Seed::from_u64(3), false, stored, 4)
        .map(drop)
        .map_err(|e| StoreError::Corrupt {
            path: path.to_path_buf(),
            what: e.to_string(),
        })
}

#[test]
fn a_truncated_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.redb");
    drop(fresh(&path, 30));
    let len = std::fs::metadata(&path).unwrap().len();
    for keep in [0, 100, 4096, len / 2] {
        let copy = dir.path().join(format!("t{keep}.redb"));
        std::fs::copy(&path, &copy).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&copy)
            .unwrap()
            .set_len(keep)
            .unwrap();
        let err = open_damaged(&copy).expect_err("a truncated store must not open cleanly");
        assert!(err.to_string().contains(&format!("t{keep}.redb")), "{err}");
    }
}

#[test]
fn corrupted_bytes_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.redb");
    drop(fresh(&path, 30));
    let bytes = std::fs::read(&path).unwrap();
    let mut failures = 0;
    for (i, at) in (0..bytes.len()).step_by(bytes.len() / 16 + 1).enumerate() {
        let copy = dir.path().join(format!("c{i}.redb"));
        let mut b = bytes.clone();
        for x in b.iter_mut().skip(at).take(512) {
            *x ^= 0x5A;
        }
        std::fs::write(&copy, &b).unwrap();
        if let Err(e) = open_damaged(&copy) {
            assert!(e.to_string().contains(&format!("c{i}.redb")), "{e}");
            failures += 1;
        }
    }
    assert!(failures > 0, "no corruption was detected at all");
}

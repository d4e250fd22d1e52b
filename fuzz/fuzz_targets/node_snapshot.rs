//! State-sync decoders on untrusted bytes never panic: `SyncMessage::decode`
//! accepts only canonical encodings; a decoded manifest that passes its
//! checks gives chunk lengths within the body; an assembled body decodes
//! or is refused; a marketplace snapshot restores or is refused, and an
//! accepted one re-snapshots to the same bytes.
#![no_main]

use idlegrid_market::KDouble;
use idlegrid_node::market::{MarketRules, MarketplaceApp};
use idlegrid_node::snapshot::{Manifest, SyncMessage, decode_body};
use idlegrid_primitives::{Amount, Digest, Duration, Round};
use libfuzzer_sys::fuzz_target;

fn rules() -> MarketRules {
    MarketRules {
        stake_per_slot: Amount::new(1_000),
        slash_to_client_bps: 5_000,
        stage_deadline: Duration::from_secs(15),
        clearing_period: Duration::from_secs(1),
        committee_size: 1,
        referees: Vec::new(),
        book: Default::default(),
        reputation_epoch_secs: 10,
        global_trust: None,
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let body: Vec<u8> = (0..3_000u32).map(|i| i as u8).collect();
    let m = Manifest::of(7, Round::new(20), &body, 1_024);
    let app = MarketplaceApp::new(rules(), Box::new(KDouble::new(5_000).unwrap()), false).unwrap();
    vec![
        SyncMessage::StatusRequest.encode(),
        SyncMessage::Status(vec![m.offer()]).encode(),
        SyncMessage::Manifest(m.clone()).encode(),
        SyncMessage::ChunkRequest { root: m.root(), chunk: 1 }.encode(),
        SyncMessage::Chunk { root: m.root(), chunk: 2, bytes: body[2_048..].to_vec() }.encode(),
        app.snapshot(),
    ]
}

fuzz_target!(
    init: idlegrid_fuzz::write_seeds(seeds()),
    |data: &[u8]| {
        if let Ok(msg) = SyncMessage::decode(data) {
            assert_eq!(msg.encode(), data, "accepted a non-canonical sync message");
            if let SyncMessage::Manifest(m) = &msg
                && m.check(&m.offer()).is_ok()
            {
                let total: u64 = (0..m.chunks.len() as u32).map(|i| m.chunk_len(i) as u64).sum();
                assert_eq!(total, m.total_bytes);
            }
        }
        let offer = idlegrid_node::snapshot::SnapshotOffer {
            index: 0,
            round: Round::new(0),
            root: Digest::from_bytes([0; 32]),
        };
        let _ = decode_body(data, &offer);
        let mechanism = Box::new(KDouble::new(5_000).unwrap());
        if let Ok(app) = MarketplaceApp::restore(rules(), mechanism, false, data, 1 << 20) {
            assert_eq!(app.snapshot(), data, "accepted a non-canonical marketplace snapshot");
            let _ = app.state_digest();
        }
    }
);

//! `ConsensusMessage::decode` on untrusted bytes never panics and accepts
//! only canonical encodings. Decoded blocks go through `verify_structure` and
//! `VerifiedBlock::verify`, decoded equivocation `Evidence` through
//! `Evidence::verify`, and the raw bytes through a fresh validator's
//! `handle_bytes` — none may panic.
#![no_main]

use idlegrid_dag_ledger::consensus::{ConsensusMessage, Evidence, VerifiedBlock};
use idlegrid_fuzz::consensus_fixture::{committee, config, message_seeds, node, validator};
use idlegrid_primitives::{Machine, Timestamp, decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: idlegrid_fuzz::write_seeds(message_seeds()),
    |data: &[u8]| {
        let (committee, config) = (committee(), config());
        if let Ok(msg) = ConsensusMessage::decode(data, config.max_message_bytes) {
            assert_eq!(msg.encode(), data, "accepted a non-canonical message");
            let blocks = match msg {
                ConsensusMessage::Block(b) => vec![b],
                ConsensusMessage::FetchResponse(bs) => bs,
                _ => vec![],
            };
            for b in blocks {
                let _ = b.verify_structure(&committee, &config);
                let _ = b.signed_header().header.digest();
                let _ = VerifiedBlock::verify(b, &committee, &config);
            }
        }
        if let Ok(ev) = decode::<Evidence>(data, 1 << 16) {
            assert_eq!(encode(&ev), data);
            let _ = (ev.verify(&committee), ev.digest(), ev.author(), ev.round());
        }
        // The whole receive path of a started validator.
        let mut v = validator(0, config);
        v.handle_timeout(Timestamp::ZERO);
        v.handle_bytes(Timestamp::from_millis(1), node(1), data);
        while v.poll_transmit().is_some() || v.poll_event().is_some() {}
    }
);

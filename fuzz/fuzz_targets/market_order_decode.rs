//! `Order::from_bytes` on untrusted bytes never panics and accepts only
//! canonical encodings; validating, sealing and matching a decoded order
//! never panics.
#![no_main]

use idlegrid_fuzz::market_fixture::{order, reputation};
use idlegrid_market::{Limits, Order, compatible, seal};
use idlegrid_primitives::{Epoch, Salt, Timestamp};
use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;

fn seeds() -> Vec<Vec<u8>> {
    (0..16u8)
        .filter_map(|i| {
            let bytes: Vec<u8> = (0..64u8).map(|j| i.wrapping_mul(37).wrapping_add(j.wrapping_mul(11))).collect();
            order(&mut Unstructured::new(&bytes), u64::from(i)).ok().flatten()
        })
        .map(|o| o.to_bytes())
        .collect()
}

fuzz_target!(
    init: idlegrid_fuzz::write_seeds(seeds()),
    |data: &[u8]| {
        if let Ok(o) = Order::from_bytes(data) {
            assert_eq!(o.to_bytes(), data, "accepted a non-canonical order");
            let _ = (o.id(), o.owner());
            for now in [Timestamp::ZERO, Timestamp::from_millis(1_000), Timestamp::MAX] {
                let _ = o.validate(&Limits::default(), now);
            }
            let _ = seal(Epoch::new(1), &o, &Salt::from_bytes([1; 32]));
            if let Order::Ask(a) = &o {
                if let Ok(Order::Bid(b)) = Order::from_bytes(&data[data.len() / 2..]) {
                    let _ = compatible(a, &b, reputation(&a.provider));
                }
            }
        }
    }
);

//! The session layer's decoder (every frame after the handshake) on
//! untrusted bytes. The fuzzer writes a program: seal data, pings and
//! rekeys with an honest `Sealer`, and tamper with the wire — raw bytes,
//! bit flips, duplicated, truncated, dropped or swapped frames. The wire is
//! then fed to an `Opener` in fuzzer-sized chunks. Checks: no panic; what the
//! opener accepts is always a prefix of what was sealed, in order (nothing
//! forged, replayed or reordered gets through); with no tampering, everything
//! sealed is opened; after the first error the opener accepts nothing more.
#![no_main]

use idlegrid_transport::FrameLimit;
use idlegrid_transport::frame::FrameError;
use idlegrid_transport::session::{Opened, SealKind, SessionError, SessionKeys};
use libfuzzer_sys::fuzz_target;

fn limit() -> FrameLimit {
    FrameLimit::new(1024).expect("in range")
}

fn seeds() -> Vec<Vec<u8>> {
    vec![
        // chunk, then: data "abc", ping, rekey, data "xy"
        vec![3, 0, 3, b'a', b'b', b'c', 1, 2, 0, 2, b'x', b'y'],
        // two data frames, then swap them
        vec![7, 0, 1, 1, 0, 1, 2, 8, 0, 1],
        // data, flip a bit, data
        vec![1, 0, 4, 1, 2, 3, 4, 4, 0, 9, 0, 1, 5],
        // data, duplicate, raw bytes
        vec![16, 0, 2, 7, 7, 5, 0, 3, 3, 2, 4, 0],
    ]
}

/// Reads a byte from the program, or 0 at its end.
fn take(p: &mut &[u8]) -> u8 {
    let Some((&b, rest)) = p.split_first() else { return 0 };
    *p = rest;
    b
}

fn take_bytes<'a>(p: &mut &'a [u8]) -> &'a [u8] {
    let n = usize::from(take(p)).min(p.len());
    let (a, rest) = p.split_at(n);
    *p = rest;
    a
}

fn pick(len: usize, b: u8) -> Option<usize> {
    (len > 0).then(|| usize::from(b) % len)
}

fuzz_target!(
    init: idlegrid_fuzz::write_seeds(seeds()),
    |data: &[u8]| {
        let mut p = data;
        let chunk = usize::from(take(&mut p)) + 1;
        let (mut sealer, _) = SessionKeys::from_raw([1; 32], [2; 32]).split(limit());
        let (_, mut opener) = SessionKeys::from_raw([2; 32], [1; 32]).split(limit());
        let mut segments: Vec<Vec<u8>> = Vec::new();
        let mut sealed: Vec<Opened> = Vec::new();
        let mut tampered = false;
        while !p.is_empty() && segments.len() < 64 {
            match take(&mut p) % 9 {
                0 => {
                    let body = take_bytes(&mut p);
                    segments.push(sealer.seal_frame(SealKind::Data, body).expect("fits"));
                    sealed.push(Opened::Data(body.to_vec()));
                }
                1 => {
                    segments.push(sealer.seal_frame(SealKind::Ping, &[]).expect("fits"));
                    sealed.push(Opened::Ping);
                }
                2 => {
                    segments.push(sealer.seal_frame(SealKind::Rekey, &[]).expect("fits"));
                    sealer.rekey();
                    sealed.push(Opened::Rekey);
                }
                3 => {
                    segments.push(take_bytes(&mut p).to_vec());
                    tampered = true;
                }
                4 => {
                    let (i, bit) = (take(&mut p), take(&mut p));
                    if let Some(i) = pick(segments.len(), i) {
                        let s = &mut segments[i];
                        if let Some(j) = pick(s.len(), take(&mut p)) {
                            s[j] ^= 1 << (bit % 8);
                            tampered = true;
                        }
                    }
                }
                5 => {
                    if let Some(i) = pick(segments.len(), take(&mut p)) {
                        segments.push(segments[i].clone());
                        tampered = true;
                    }
                }
                6 => {
                    if let Some(i) = pick(segments.len(), take(&mut p)) {
                        let cut = usize::from(take(&mut p));
                        let s = &mut segments[i];
                        s.truncate(s.len().saturating_sub(cut.max(1)));
                        tampered = true;
                    }
                }
                7 => {
                    if let Some(i) = pick(segments.len(), take(&mut p)) {
                        segments.remove(i);
                        tampered = true;
                    }
                }
                _ => {
                    let (i, j) = (take(&mut p), take(&mut p));
                    if let (Some(i), Some(j)) = (pick(segments.len(), i), pick(segments.len(), j)) {
                        segments.swap(i, j);
                        tampered |= i != j;
                    }
                }
            }
        }
        let wire: Vec<u8> = segments.concat();
        let mut opened = Vec::new();
        let mut failed = false;
        let mut buf = Vec::new();
        'feed: for c in wire.chunks(chunk) {
            buf.extend_from_slice(c);
            loop {
                match opener.decode(&buf) {
                    Ok((o, used)) => {
                        assert!(used <= buf.len());
                        opened.push(o);
                        buf.drain(..used);
                    }
                    Err(SessionError::Frame(FrameError::Truncated { .. })) => break,
                    Err(_) => {
                        failed = true;
                        break 'feed;
                    }
                }
            }
        }
        assert!(opened.len() <= sealed.len(), "more frames opened than sealed");
        assert_eq!(opened, sealed[..opened.len()], "opened a frame that was not sealed there");
        if failed {
            assert!(opener.is_closed());
            assert_eq!(opener.decode(&segments.concat()), Err(SessionError::Closed));
        }
        if !tampered {
            assert!(!failed, "an honest stream failed");
            assert_eq!(opened, sealed, "an honest stream was not fully opened");
            assert!(buf.is_empty());
        }
    }
);

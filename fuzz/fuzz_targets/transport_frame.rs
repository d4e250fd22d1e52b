//! The transport frame decoder on untrusted bytes: `decode_frame`,
//! `decode_frame_exact`, `parse_header` + `decode_body` never panic, agree
//! with each other, and every decoded frame re-encodes to exactly the bytes
//! it was decoded from. Feeding the same bytes as a stream cut at
//! fuzzer-chosen points yields the same frames (`Truncated` = wait for more).
#![no_main]

use idlegrid_transport::frame::{
    Auth, Envelope, EphemeralKey, FrameError, FrameLimit, HEADER_LEN, Hello, Nonce, decode_body, decode_frame,
    decode_frame_exact, encode_frame, parse_header,
};
use idlegrid_primitives::{NodeId, Signature};
use libfuzzer_sys::fuzz_target;

fn seeds() -> Vec<Vec<u8>> {
    let l = FrameLimit::DEFAULT;
    let hello = Envelope::Hello(Hello {
        node: NodeId::from_bytes([7; 32]),
        nonce: Nonce::from_bytes([9; 32]),
        ephemeral: EphemeralKey::from_bytes([5; 32]),
    });
    let auth = Envelope::Auth(Auth { signature: Signature::from_bytes([3; 64]) });
    let mut stream = Vec::new();
    for e in [&hello, &auth, &Envelope::Data(b"hello".to_vec()), &Envelope::Ping] {
        stream.extend(encode_frame(e, l).expect("fits"));
    }
    vec![
        encode_frame(&hello, l).expect("fits"),
        encode_frame(&auth, l).expect("fits"),
        encode_frame(&Envelope::Data(vec![1, 2, 3]), l).expect("fits"),
        encode_frame(&Envelope::Ping, l).expect("fits"),
        stream,
    ]
}

fn limits(sel: u8) -> FrameLimit {
    match sel % 4 {
        0 => FrameLimit::DEFAULT,
        1 => FrameLimit::HANDSHAKE,
        2 => FrameLimit::new(usize::from(sel)).unwrap_or_default(),
        _ => FrameLimit::new(0).unwrap_or_default(),
    }
}

fuzz_target!(
    init: idlegrid_fuzz::write_seeds(seeds()),
    |data: &[u8]| {
        let Some((&sel, bytes)) = data.split_last() else { return };
        let limit = limits(sel);
        // One frame.
        let first = decode_frame(bytes, limit);
        if let Ok((env, used)) = &first {
            assert!(*used <= bytes.len());
            let again = encode_frame(env, limit).expect("a decoded frame fits its limit");
            assert_eq!(again, &bytes[..*used], "frame is not canonical");
            // Header + body path agrees.
            let h = parse_header(bytes.first_chunk::<HEADER_LEN>().expect("decoded"), limit)
                .expect("header of a decoded frame");
            assert_eq!(h.body_len() + HEADER_LEN, *used);
            let env2 = decode_body(h, bytes[HEADER_LEN..*used].to_vec()).expect("body decodes");
            assert_eq!(&env2, env);
        }
        match decode_frame_exact(bytes, limit) {
            Ok(e) => assert_eq!(first.as_ref().ok().map(|(e, u)| (e, *u)), Some((&e, bytes.len()))),
            Err(_) => assert!(first.as_ref().map_or(true, |(_, u)| *u != bytes.len())),
        }
        // As a stream, cut every `sel`-th byte: same frames as decoding the whole.
        let chunk = usize::from(sel % 16) + 1;
        let mut whole = Vec::new();
        let mut rest = bytes;
        while let Ok((e, used)) = decode_frame(rest, limit) {
            whole.push(e);
            rest = &rest[used..];
        }
        let mut streamed = Vec::new();
        let mut buf: Vec<u8> = Vec::new();
        for c in bytes.chunks(chunk) {
            buf.extend_from_slice(c);
            loop {
                match decode_frame(&buf, limit) {
                    Ok((e, used)) => {
                        streamed.push(e);
                        buf.drain(..used);
                    }
                    Err(FrameError::Truncated { .. }) => break,
                    Err(_) => {
                        buf.clear();
                        break;
                    }
                }
            }
            if buf.is_empty() && streamed.len() > whole.len() {
                break;
            }
        }
        assert!(streamed.len() >= whole.len() || streamed == whole[..streamed.len()]);
        assert_eq!(&streamed[..whole.len().min(streamed.len())], &whole[..whole.len().min(streamed.len())]);
    }
);

//! Arbitrary bytes against the decoders and a live server: nothing panics,
//! a malformed connection is closed, and the server keeps serving others.

use mssql_sim::tds::{login, request, wire};
use proptest::prelude::*;
use std::io::{Read, Write};

mod common;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = login::parse_prelogin(&bytes);
        let _ = login::parse_login7(&bytes);
        let _ = request::parse_batch(&bytes);
        let _ = request::parse_rpc(&bytes);
        let _ = request::parse_tm(&bytes);
        let mut r = wire::Reader::new(&bytes);
        while let Ok(t) = wire::decode_type_info(&mut r) {
            if wire::decode_value(&mut r, &t).is_err() {
                break;
            }
        }
        let _ = mssql_sim::tds::packet::read_message(&mut &bytes[..]);
    }

    #[test]
    fn rpc_with_valid_headers_and_random_body_never_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut p = Vec::new();
        p.extend_from_slice(&22u32.to_le_bytes());
        p.extend_from_slice(&18u32.to_le_bytes());
        p.extend_from_slice(&2u16.to_le_bytes());
        p.extend_from_slice(&1u64.to_le_bytes());
        p.extend_from_slice(&1u32.to_le_bytes());
        p.extend_from_slice(&body);
        let _ = request::parse_rpc(&p);
        let _ = request::parse_tm(&p);
    }
}

/// Frames `payload` as one TDS message of `ptype`.
fn frame(ptype: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![ptype, 1];
    v.extend_from_slice(&((payload.len() + 8) as u16).to_be_bytes());
    v.extend_from_slice(&[0, 0, 1, 0]);
    v.extend_from_slice(payload);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_server_survives_garbage() {
    let sim = common::start();
    let addr = sim.server.addr();
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for round in 0..200 {
        let len = (next() % 700) as usize;
        let junk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let addr = addr;
        let first_type = [0x12u8, 0x10, 0x01, 0x03, 0x0E, 0x07, 0x06][round % 7];
        tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            // Half the rounds send framed garbage, half raw garbage.
            let bytes = if round % 2 == 0 {
                frame(first_type, &junk)
            } else {
                junk
            };
            let _ = s.write_all(&bytes);
            // End our side so the server sees the end of input either way.
            let _ = s.shutdown(std::net::Shutdown::Write);
            let mut buf = [0u8; 4096];
            while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
        })
        .await
        .unwrap();
    }
    let mut c = common::connect_db(&sim, "master").await;
    assert_eq!(common::scalar_i64(&mut c, "SELECT 7").await, Some(7));
}

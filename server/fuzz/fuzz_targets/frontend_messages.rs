//! Whatever bytes a client sends, in every phase of a connection, the framing ends in a
//! message, a wait for more bytes, an oversized message to drop or a protocol violation:
//! never a panic (libFuzzer stops at one, including the panics of pgwire's readers that
//! the server catches) and never a buffer beyond the limits.
//!
//! Run with a nightly toolchain: `cargo +nightly fuzz run frontend_messages` in server/fuzz.

#![no_main]

#[path = "../../src/wire/frame.rs"]
#[allow(dead_code)]
mod frame;

use bytes::BytesMut;
use frame::{Limits, Next, Phase};
use libfuzzer_sys::fuzz_target;
use pgwire::messages::ProtocolVersion;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_statement: 1 << 16,
        max_message: 1 << 16,
    };
    for phase in [Phase::Startup, Phase::Login, Phase::Running] {
        let context = phase.context(ProtocolVersion::default());
        let mut inbox = BytesMut::from(data);
        for _ in 0..256 {
            let before = inbox.len();
            match frame::next(&mut inbox, phase, &context, &limits) {
                Ok(Next::Message(_)) | Ok(Next::NotUtf8 { .. }) => assert!(inbox.len() < before),
                Ok(Next::Incomplete(want)) => {
                    assert!(want > before && want <= limits.max_statement + (1 << 20) + 5);
                    break;
                }
                Ok(Next::Oversized { len, .. }) => {
                    assert!(len > limits.max_message);
                    break;
                }
                Err(_) => break,
            }
        }
    }
});

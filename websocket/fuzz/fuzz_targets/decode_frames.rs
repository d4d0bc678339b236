//! Fuzz target: arbitrary bytes through the WebSocket decoder, whole and cut at two
//! fuzzer-chosen points, with a fuzzer-chosen message limit. Never panics; the items and the
//! error do not depend on the cuts; text items are UTF-8 and close codes valid.
#![no_main]

use ferrocorn_websocket::{is_valid_close_code, Decoder, Item};
use libfuzzer_sys::fuzz_target;

/// An item, owned, for comparing runs.
#[derive(Debug, PartialEq, Eq)]
enum Owned {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
}

/// Decodes `input` fed in the pieces `cuts` make; the items and the error code.
fn run(input: &[u8], cuts: [usize; 2], max: u64) -> (Vec<Owned>, Option<u16>) {
    let mut decoder = Decoder::new(max);
    let mut items = Vec::new();
    let mut buf = Vec::new();
    let mut start = 0;
    for end in [cuts[0], cuts[1], input.len()] {
        let end = end.clamp(start, input.len());
        buf.extend_from_slice(&input[start..end]);
        start = end;
        loop {
            match decoder.decode(&buf) {
                Err(e) => return (items, Some(e.code)),
                Ok((used, item)) => {
                    let done = used == 0 && item.is_none();
                    if let Some(item) = item {
                        items.push(match item {
                            Item::Text(t) => Owned::Text(t.to_string()),
                            Item::Binary(b) => Owned::Binary(b.to_vec()),
                            Item::Ping(b) => Owned::Ping(b.to_vec()),
                            Item::Pong(b) => Owned::Pong(b.to_vec()),
                            Item::Close(c) => {
                                if let Some(c) = c {
                                    assert!(is_valid_close_code(c.code));
                                }
                                Owned::Close(c.map(|c| (c.code, c.reason.to_string())))
                            }
                        });
                    }
                    buf.drain(..used);
                    if done {
                        break;
                    }
                }
            }
        }
    }
    (items, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((head, input)) = data.split_first_chunk::<3>() else {
        return;
    };
    let max = u64::from(head[0]) * 16;
    let a = usize::from(head[1]) % (input.len() + 1);
    let b = a + usize::from(head[2]) % (input.len() - a + 1);
    let whole = run(input, [input.len(); 2], max);
    assert_eq!(whole, run(input, [a, b], max));
    assert_eq!(whole, run(input, [0, 1], max));
});

//! The decoder's tests: each rule from raw bytes, and (proptest) that any split of the input
//! gives the same items and the same error.

use proptest::prelude::*;

use super::*;
use crate::encode::client_frame;

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// An item, owned, for comparing runs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owned {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
}

fn own(item: Item<'_>) -> Owned {
    match item {
        Item::Text(t) => Owned::Text(t.to_string()),
        Item::Binary(b) => Owned::Binary(b.to_vec()),
        Item::Ping(b) => Owned::Ping(b.to_vec()),
        Item::Pong(b) => Owned::Pong(b.to_vec()),
        Item::Close(c) => Owned::Close(c.map(|c| (c.code, c.reason.to_string()))),
    }
}

/// Feeds `input` in pieces cut at `cuts` (sorted offsets); returns the items and the error.
fn run(input: &[u8], cuts: &[usize], max: u64) -> (Vec<Owned>, Option<ProtocolError>) {
    let mut d = Decoder::new(max);
    let mut items = Vec::new();
    let mut buf = Vec::new();
    let mut bounds: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
    bounds.push(input.len());
    let mut start = 0;
    for end in bounds {
        if end < start {
            continue;
        }
        buf.extend_from_slice(&input[start..end]);
        start = end;
        loop {
            match d.decode(&buf) {
                Ok((used, item)) => {
                    let done = used == 0 && item.is_none();
                    if let Some(item) = item {
                        items.push(own(item));
                    }
                    buf.drain(..used);
                    if done {
                        break;
                    }
                }
                Err(e) => return (items, Some(e)),
            }
        }
    }
    (items, None)
}

fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    client_frame(&mut out, fin, 0, opcode, payload, MASK);
    out
}

fn whole(input: &[u8]) -> (Vec<Owned>, Option<ProtocolError>) {
    run(input, &[], 1 << 20)
}

fn error_code(input: &[u8]) -> Option<u16> {
    whole(input).1.map(|e| e.code)
}

#[test]
fn fragments_join_with_control_frames_between_them() {
    let mut input = frame(false, 0x1, "frag".as_bytes());
    input.extend(frame(true, 0x9, b"ping"));
    input.extend(frame(false, 0x0, "ment".as_bytes()));
    input.extend(frame(true, 0xA, b""));
    input.extend(frame(true, 0x0, "ed €".as_bytes()));
    input.extend(frame(true, 0x2, &[0, 1, 2]));
    let (items, err) = whole(&input);
    assert_eq!(err, None);
    assert_eq!(
        items,
        [
            Owned::Ping(b"ping".to_vec()),
            Owned::Pong(vec![]),
            Owned::Text("fragmented €".into()),
            Owned::Binary(vec![0, 1, 2]),
        ]
    );
}

#[test]
fn framing_violations_are_1002() {
    let mut rsv = Vec::new();
    client_frame(&mut rsv, true, 0b100, 0x1, b"x", MASK);
    let mut unmasked = frame(true, 0x1, b"");
    unmasked[1] &= 0x7F;
    let mut huge = vec![0x82, 0xFF];
    huge.extend([0x80, 0, 0, 0, 0, 0, 0, 0]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("rsv bit", rsv),
        ("reserved opcode 3", frame(true, 0x3, b"")),
        ("reserved opcode 0xB", frame(true, 0xB, b"")),
        ("unmasked", unmasked),
        ("continuation first", frame(true, 0x0, b"x")),
        ("fragmented ping", frame(false, 0x9, b"")),
        ("long ping", frame(true, 0x9, &[0; 126])),
        ("close of one byte", frame(true, 0x8, &[3])),
        ("close code 1005", frame(true, 0x8, &1005u16.to_be_bytes())),
        ("close code 999", frame(true, 0x8, &999u16.to_be_bytes())),
        ("length over 2^63", huge),
    ];
    for (name, input) in cases {
        assert_eq!(error_code(&input), Some(1002), "{name}");
    }
    let mut nested = frame(false, 0x1, b"a");
    nested.extend(frame(true, 0x1, b"b"));
    assert_eq!(
        error_code(&nested),
        Some(1002),
        "text inside a fragmented message"
    );
}

#[test]
fn bad_utf8_is_1007_even_before_the_frame_ends() {
    assert_eq!(
        error_code(&frame(true, 0x1, &[0xCE, 0xBA, 0xFF])),
        Some(1007)
    );
    assert_eq!(error_code(&frame(true, 0x1, &[0xE2, 0x82])), Some(1007));
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.push(0xFF);
    assert_eq!(error_code(&frame(true, 0x8, &close)), Some(1007));
    // Fail fast: the header and an invalid prefix of a long payload are enough.
    let input = frame(true, 0x1, &[0xF4, 0x90, 0x80, 0x80, b'a', b'b', b'c', b'd']);
    let (_, err) = run(&input[..8], &[], 1 << 20);
    assert_eq!(err.map(|e| e.code), Some(1007));
    // Across fragments: a character split between two frames is fine.
    let mut split = frame(false, 0x1, &[0xE2, 0x82]);
    split.extend(frame(true, 0x0, &[0xAC]));
    assert_eq!(whole(&split).0, [Owned::Text("€".into())]);
}

#[test]
fn the_size_limit_is_1009_at_the_header() {
    let input = frame(true, 0x2, &[7; 100]);
    assert_eq!(run(&input, &[], 100).1, None);
    assert_eq!(run(&input[..4], &[], 99).1.map(|e| e.code), Some(1009));
    let mut fragments = frame(false, 0x2, &[7; 60]);
    fragments.extend(frame(true, 0x0, &[7; 60]));
    assert_eq!(run(&fragments, &[], 100).1.map(|e| e.code), Some(1009));
}

#[test]
fn close_frames_carry_checked_codes() {
    let mut body = 4000u16.to_be_bytes().to_vec();
    body.extend_from_slice("bye ☺".as_bytes());
    assert_eq!(
        whole(&frame(true, 0x8, &body)).0,
        [Owned::Close(Some((4000, "bye ☺".into())))]
    );
    assert_eq!(whole(&frame(true, 0x8, b"")).0, [Owned::Close(None)]);
}

#[test]
fn an_error_sticks() {
    let mut d = Decoder::new(100);
    let bad = frame(true, 0x3, b"");
    assert!(d.decode(&bad).is_err());
    assert!(d.decode(&frame(true, 0x1, b"ok")).is_err());
}

#[test]
fn large_frames_unmask_at_any_phase() {
    let payload: Vec<u8> = (0..70_000u32).map(|i| (i * 7) as u8).collect();
    let input = frame(true, 0x2, &payload);
    for cuts in [&[][..], &[11, 13, 14, 15, 1000, 1001, 1003, 69_999][..]] {
        assert_eq!(
            run(&input, cuts, 1 << 20).0,
            [Owned::Binary(payload.clone())]
        );
    }
}

/// One client frame, well-formed or not, for the split property.
fn any_frame() -> impl Strategy<Value = Vec<u8>> {
    let opcode = prop_oneof![
        8 => Just(0x1u8), 8 => Just(0x2), 6 => Just(0x0), 3 => Just(0x9), 2 => Just(0xA),
        1 => Just(0x8), 1 => Just(0x3),
    ];
    let payload = prop_oneof![
        4 => "[a-zé€😀]{0,20}".prop_map(String::into_bytes),
        2 => proptest::collection::vec(any::<u8>(), 0..300),
    ];
    (
        any::<bool>(),
        opcode,
        payload,
        prop_oneof![9 => Just(0u8), 1 => 0..8u8],
        any::<[u8; 4]>(),
    )
        .prop_map(|(fin, op, payload, rsv, mask)| {
            let mut out = Vec::new();
            client_frame(&mut out, fin, rsv, op, &payload, mask);
            out
        })
}

proptest! {
    #[test]
    fn any_split_gives_the_same_items_and_error(
        frames in proptest::collection::vec(any_frame(), 1..8),
        cuts in proptest::collection::vec(0usize..3000, 0..12),
        max in prop_oneof![Just(1u64 << 20), 0u64..400],
    ) {
        let input: Vec<u8> = frames.concat();
        let mut cuts = cuts;
        cuts.sort_unstable();
        let whole = run(&input, &[], max);
        let split = run(&input, &cuts, max);
        prop_assert_eq!(&whole, &split);
        // And byte by byte.
        let every: Vec<usize> = (1..input.len()).collect();
        prop_assert_eq!(whole, run(&input, &every, max));
    }

    #[test]
    fn garbage_never_panics(input in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = run(&input, &[3, 7, 20], 200);
    }
}

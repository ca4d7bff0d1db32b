//! Bounded fuzzing of every decoder in this crate, run by `cargo test` in a few seconds: the control
//! protocol's [`ControlEnvelope`] and the host protocol's messages (what rcm and keelson-rhs read
//! from each other), from arbitrary bytes and from mutations of valid frames (bit flips, truncation,
//! inserted and deleted bytes, length prefixes that lie, huge claimed lengths). Nothing may panic,
//! a decoded message must survive a re-encode, and no decode may allocate anywhere near what a frame
//! claims: a counting allocator watches the largest single allocation of each decode. Not a test of
//! the transports that call these decoders (the system tests drive those).

use keelson_proto::*;
use keelson_types::{LogLevel, Op, PluginInfo, ResourceId, ResourceTypeInfo};
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt::Debug;

/// Counts, on the thread that asks, the largest single allocation while measuring.
struct Probe;

thread_local! {
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    if MEASURING.try_with(Cell::get).unwrap_or(false) {
        let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
    }
}

// SAFETY: every call is passed unchanged to the system allocator; the bookkeeping only touches
// const-initialised thread-locals of plain integers, which neither allocate nor unwind.
unsafe impl GlobalAlloc for Probe {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's contract for `alloc` is the one System::alloc needs.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from System, with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: `ptr` came from System with `layout`; the caller guarantees `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static PROBE: Probe = Probe;

/// Runs `f` and returns its result with the largest single allocation it made on this thread.
fn largest_allocation<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST.with(|l| l.set(0));
    MEASURING.with(|m| m.set(true));
    let result = f();
    MEASURING.with(|m| m.set(false));
    (result, LARGEST.with(Cell::get))
}

/// The most one decode may allocate at once: a reader's payload buffer is at most MAX_FRAME_LEN
/// (anything claiming more is refused before allocating), and serde pre-allocates a sequence for at
/// most 1 MiB whatever length the input claims. A decode that trusted a claimed 4 GiB would fail.
const ALLOCATION_BOUND: usize = MAX_FRAME_LEN + 4096;

fn s(v: &str) -> String {
    v.to_string()
}

/// One valid control request of every kind (read-only and mutating alike: only the decoder runs).
fn control_corpus() -> Vec<ControlEnvelope> {
    use ControlRequest as R;
    let pairs = vec![
        (s("DeadlockTimeout"), s("200")),
        (s("path"), s("/srv/data")),
    ];
    let requests = vec![
        R::Status,
        R::PluginList,
        R::GroupCreate {
            name: s("web"),
            properties: pairs.clone(),
        },
        R::GroupDelete { name: s("web") },
        R::GroupOnline { name: s("web") },
        R::GroupOffline { name: s("web") },
        R::GroupGet { name: s("web") },
        R::GroupList,
        R::GroupSet {
            name: s("web"),
            properties: pairs.clone(),
        },
        R::ResourceCreate {
            name: s("disk"),
            type_name: s("dummy"),
            group: s("web"),
            params: pairs.clone(),
            properties: pairs.clone(),
        },
        R::ResourceSet {
            name: s("disk"),
            properties: pairs.clone(),
            params: pairs,
            unset_params: vec![s("old"), s("older")],
        },
        R::ResourceGet { name: s("disk") },
        R::ResourceList,
        R::ResourceOnline { name: s("disk") },
        R::ResourceOffline { name: s("disk") },
        R::ResourceFail { name: s("disk") },
        R::ResourceDelete { name: s("disk") },
        R::ResourceDepend {
            name: s("app"),
            on: s("disk"),
        },
        R::ResourceUndepend {
            name: s("app"),
            on: s("disk"),
        },
        R::Log {
            lines: 50,
            follow: true,
        },
        R::Events {
            last: 7,
            follow: false,
        },
        R::NodeStop,
    ];
    requests
        .into_iter()
        .map(|request| ControlEnvelope {
            version: CONTROL_PROTOCOL_VERSION,
            request,
        })
        .collect()
}

fn hello() -> Hello {
    Hello {
        protocol_version: PROTOCOL_VERSION,
        pid: 4242,
    }
}

fn host_requests() -> Vec<HostRequest> {
    vec![
        HostRequest::Hello(hello()),
        HostRequest::LoadPlugin {
            req: 9,
            path: s("/usr/lib/keelson/plugins/libkeelson_plugin_dummy.so"),
        },
        HostRequest::Open(OpenResource {
            resource: ResourceId(77),
            name: s("File Share"),
            plugin_path: s("/p/libkeelson_plugin_chaos.so"),
            type_name: s("chaos"),
            params_json: s(r#"{"entry":"looks_alive","fault":"hang"}"#),
            deadline_ms: 300_000,
            state_dir: Some(s("/var/lib/keelson/resources/77")),
            node_name: Some(s("n1")),
        }),
        HostRequest::Shutdown,
        HostRequest::Validate(OpenResource {
            resource: ResourceId(1001),
            name: s("web-validate"),
            plugin_path: s("/p/libkeelson_plugin_dummy.so"),
            type_name: s("dummy"),
            params_json: s(r#"{"colour":"red"}"#),
            deadline_ms: 2_000,
            state_dir: None,
            node_name: None,
        }),
    ]
}

fn host_replies() -> Vec<HostReply> {
    let info = PluginInfo {
        name: s("dummy"),
        path: s("/p/libkeelson_plugin_dummy.so"),
        types: vec![ResourceTypeInfo {
            name: s("dummy"),
            has_validate: true,
            schema: keelson_types::TypeSchema::default(),
        }],
    };
    vec![
        HostReply::Hello(hello()),
        HostReply::PluginLoaded {
            req: 9,
            result: Ok(info),
        },
        HostReply::PluginLoaded {
            req: 10,
            result: Err(s("ABI version 7, host speaks 1")),
        },
        HostReply::Log {
            resource: Some(ResourceId(3)),
            level: LogLevel::Warn,
            tid: 17,
            message: s("disk is slow"),
        },
        HostReply::Progress {
            resource: ResourceId(3),
            progress: 50,
        },
        HostReply::Refused {
            message: s("unknown request"),
        },
        HostReply::PluginMapped(PluginMapping {
            slot: 3,
            name: s("chaos"),
            path: s("/p/libkeelson_plugin_chaos.so"),
            base: 0x7f00_0000_0000,
        }),
        HostReply::FailureReported {
            resource: ResourceId(3),
            message: s("child exited"),
        },
    ]
}

fn resource_replies() -> Vec<ResourceReply> {
    vec![ResourceReply::CallDone(CallDone {
        op: Op::IsAlive,
        status: 1,
        message: s("not alive"),
        elapsed_ns: 123_456,
    })]
}

fn resource_requests() -> Vec<ResourceRequest> {
    [Op::Online, Op::LooksAlive, Op::Close]
        .into_iter()
        .map(|op| ResourceRequest::Call {
            op,
            deadline_ms: 200,
        })
        .collect()
}

fn alarms() -> Vec<HostAlarm> {
    vec![
        HostAlarm::DeadlockDetected {
            resource: ResourceId(5),
            op: Op::LooksAlive,
            elapsed_ns: 300_000_000,
        },
        HostAlarm::Crashed {
            resource: None,
            op: Some(Op::Terminate),
            signal: 11,
            pc: 0,
            fault_addr: 0,
            in_plugin: None,
        },
        HostAlarm::Crashed {
            resource: None,
            op: None,
            signal: 11,
            pc: 0x7f00_1234_5678,
            fault_addr: 0x10,
            in_plugin: Some(PluginCode {
                slot: 3,
                offset: 0x1_2345,
            }),
        },
        HostAlarm::Fenced {
            seq: 12,
            late_ms: 3,
            resources: 2,
            terminated: 1,
        },
    ]
}

fn lease_messages() -> Vec<LeaseMessage> {
    vec![LeaseMessage::Grant(LeaseGrant {
        seq: 7,
        granted_at_ns: 9_876_543_210,
        valid_for_ms: 3_000,
        terminate_within_ms: 1_000,
    })]
}

/// Every valid frame of the corpus, encoded.
fn valid_frames() -> Vec<Vec<u8>> {
    fn frames<T: Serialize>(msgs: Vec<T>) -> Vec<Vec<u8>> {
        msgs.iter().map(|m| encode(m).unwrap()).collect()
    }
    let mut all = frames(control_corpus());
    all.extend(frames(host_requests()));
    all.extend(frames(host_replies()));
    all.extend(frames(resource_requests()));
    all.extend(frames(resource_replies()));
    all.extend(frames(alarms()));
    all.extend(frames(lease_messages()));
    all.extend(frames(vec![hello()]));
    all
}

/// Decodes `bytes` as a `T` frame through the blocking reader and the incremental buffer (fed in
/// two pieces): neither panics nor allocates past the bound, both agree, and a message they accept
/// encodes back to itself.
fn check_frame<T>(bytes: &[u8], split: usize)
where
    T: DeserializeOwned + Serialize + PartialEq + Debug,
{
    let (read, largest) = largest_allocation(|| read_frame::<T>(&mut std::io::Cursor::new(bytes)));
    assert!(
        largest <= ALLOCATION_BOUND,
        "read_frame allocated {largest} bytes at once"
    );
    let (buffered, largest) = largest_allocation(|| {
        let mut buf = FrameBuf::new();
        let (a, b) = bytes.split_at(split.min(bytes.len()));
        buf.push(a);
        let first = buf.next_frame::<T>();
        buf.push(b);
        match first {
            Ok(None) => buf.next_frame::<T>(),
            other => other,
        }
    });
    assert!(
        largest <= ALLOCATION_BOUND,
        "FrameBuf allocated {largest} bytes at once"
    );
    match (&read, &buffered) {
        (Ok(Some(a)), Ok(Some(b))) => {
            assert_eq!(a, b, "the two readers disagree");
            let again = encode(a).unwrap();
            assert_eq!(
                &decode::<T>(&again[4..]).unwrap(),
                a,
                "re-encode round trip"
            );
        }
        (Ok(Some(m)), other) | (other, Ok(Some(m))) => {
            // Only the blocking reader sees a clean end of stream or a truncation; the buffer
            // waits for more. A message one of them decodes the other must not refuse as garbage.
            assert!(
                !matches!(other, Err(ProtoError::Malformed(_))),
                "{m:?} decoded by one reader, malformed for the other: {other:?}"
            );
        }
        _ => {}
    }
}

/// Every decoder of the crate on the same bytes.
fn check_every_decoder(bytes: &[u8], split: usize) {
    check_frame::<ControlEnvelope>(bytes, split);
    check_frame::<ControlReply>(bytes, split);
    check_frame::<HostRequest>(bytes, split);
    check_frame::<HostReply>(bytes, split);
    check_frame::<ResourceRequest>(bytes, split);
    check_frame::<ResourceReply>(bytes, split);
    check_frame::<HostAlarm>(bytes, split);
    check_frame::<Hello>(bytes, split);
    check_frame::<LeaseMessage>(bytes, split);
    let (_, largest) = largest_allocation(|| decode_frame::<LeaseMessage>(bytes));
    assert!(
        largest <= ALLOCATION_BOUND,
        "decode_frame allocated {largest} bytes at once"
    );
    // The payload decoder alone, on the bytes after a would-be header.
    let payload = bytes.get(4..).unwrap_or(&[]);
    let (_, largest) = largest_allocation(|| decode::<ControlEnvelope>(payload));
    assert!(
        largest <= ALLOCATION_BOUND,
        "decode allocated {largest} bytes at once"
    );
}

/// One way of damaging a valid frame.
#[derive(Clone, Debug)]
enum Mutation {
    FlipBit(usize, u8),
    SetByte(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    Delete(usize),
    /// Overwrites the length prefix: small lies, off-by-ones and huge claims alike.
    Length(u32),
    /// Overwrites four bytes of the payload with a postcard varint claiming a huge length.
    HugeVarint(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let claimed = prop_oneof![
        0..64u32,
        Just(MAX_FRAME_LEN as u32),
        Just(MAX_FRAME_LEN as u32 + 1),
        Just(u32::MAX),
        any::<u32>(),
    ];
    prop_oneof![
        3 => (any::<usize>(), 0..8u8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(i, v)| Mutation::SetByte(i, v)),
        2 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, v)| Mutation::Insert(i, v)),
        1 => any::<usize>().prop_map(Mutation::Delete),
        2 => claimed.prop_map(Mutation::Length),
        2 => any::<usize>().prop_map(Mutation::HugeVarint),
    ]
}

fn apply(frame: &mut Vec<u8>, m: &Mutation) {
    let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
    match *m {
        Mutation::FlipBit(i, b) if !frame.is_empty() => {
            let i = at(i, frame.len());
            frame[i] ^= 1 << b;
        }
        Mutation::SetByte(i, v) if !frame.is_empty() => {
            let i = at(i, frame.len());
            frame[i] = v;
        }
        Mutation::Truncate(i) => frame.truncate(at(i, frame.len() + 1)),
        Mutation::Insert(i, v) => frame.insert(at(i, frame.len() + 1), v),
        Mutation::Delete(i) if !frame.is_empty() => {
            frame.remove(at(i, frame.len()));
        }
        Mutation::Length(n) if frame.len() >= 4 => frame[..4].copy_from_slice(&n.to_le_bytes()),
        Mutation::HugeVarint(i) if frame.len() >= 9 => {
            let i = 4 + at(i, frame.len() - 8);
            frame[i..i + 5].copy_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_nor_allocate_what_they_claim(
        bytes in proptest::collection::vec(any::<u8>(), 0..96),
        split in 0..100usize,
    ) {
        check_every_decoder(&bytes, split);
    }

    #[test]
    fn arbitrary_payloads_behind_an_honest_length_never_panic(
        payload in proptest::collection::vec(any::<u8>(), 0..96),
        split in 0..100usize,
    ) {
        let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(&payload);
        check_every_decoder(&frame, split);
    }

    #[test]
    fn mutated_valid_frames_never_panic_nor_allocate_what_they_claim(
        pick in any::<usize>(),
        mutations in proptest::collection::vec(mutation(), 1..4),
        split in 0..300usize,
    ) {
        let frames = valid_frames();
        let mut frame = frames[pick % frames.len()].clone();
        for m in &mutations {
            apply(&mut frame, m);
        }
        check_every_decoder(&frame, split);
    }
}

#[test]
fn every_valid_frame_decodes_as_itself() {
    for env in control_corpus() {
        let frame = encode(&env).unwrap();
        let read = read_frame::<ControlEnvelope>(&mut std::io::Cursor::new(&frame)).unwrap();
        assert_eq!(read, Some(env));
    }
    for m in host_replies() {
        let frame = encode(&m).unwrap();
        assert_eq!(
            read_frame::<HostReply>(&mut std::io::Cursor::new(&frame)).unwrap(),
            Some(m)
        );
    }
}

#[test]
fn the_allocation_probe_sees_a_decode_that_trusts_a_claim() {
    // The probe itself must be able to fail: a reader that allocated what a header claims (here
    // 64 MiB, a plain Vec) would be caught.
    let (_, largest) = largest_allocation(|| vec![0u8; 64 << 20]);
    assert!(largest > ALLOCATION_BOUND, "{largest}");
    // And the real readers on a 4 GiB claim stay small.
    let mut huge = u32::MAX.to_le_bytes().to_vec();
    huge.extend_from_slice(&[0; 16]);
    let (result, largest) =
        largest_allocation(|| read_frame::<ControlEnvelope>(&mut std::io::Cursor::new(&huge)));
    assert!(
        matches!(result, Err(ProtoError::TooLarge { .. })),
        "{result:?}"
    );
    assert!(largest < 4096, "{largest}");
    // A payload claiming a sequence of 2^32 strings in 9 bytes is refused without a 2^32 allocation.
    let lie = ControlEnvelope {
        version: CONTROL_PROTOCOL_VERSION,
        request: ControlRequest::GroupCreate {
            name: s("g"),
            properties: vec![],
        },
    };
    let mut frame = encode(&lie).unwrap();
    let last = frame.len() - 1; // the empty Vec's length varint, 0
    frame.truncate(last);
    frame.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    let n = (frame.len() - 4) as u32;
    frame[..4].copy_from_slice(&n.to_le_bytes());
    let (result, largest) =
        largest_allocation(|| read_frame::<ControlEnvelope>(&mut std::io::Cursor::new(&frame)));
    assert!(result.is_err(), "{result:?}");
    assert!(largest <= ALLOCATION_BOUND, "{largest}");
}

//! The one frame codec: a 4-byte little-endian payload length, then a postcard payload. Swapping the
//! encoding means changing this file only. A frame longer than [`MAX_FRAME_LEN`] or a payload that
//! does not decode is an error; nothing here panics or allocates the claimed size up front.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::{self, Read, Write};

/// Largest payload accepted, in bytes.
pub const MAX_FRAME_LEN: usize = 1 << 20;
const HEADER_LEN: usize = 4;

/// What went wrong reading or writing a frame.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error("encode buffer too small")]
    BufferTooSmall,
}

/// Encodes `msg` as one complete frame (header + payload).
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, ProtoError> {
    let mut out = vec![0u8; HEADER_LEN];
    out = postcard::to_extend(msg, out).map_err(|e| ProtoError::Malformed(e.to_string()))?;
    let len = out.len() - HEADER_LEN;
    if len > MAX_FRAME_LEN {
        return Err(ProtoError::TooLarge {
            len,
            max: MAX_FRAME_LEN,
        });
    }
    out[..HEADER_LEN].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(out)
}

/// Encodes `msg` as one frame into `buf` without allocating; returns the frame length. Safe to call
/// from a signal handler (postcard's slice serializer neither allocates nor locks).
pub fn encode_into<T: Serialize>(msg: &T, buf: &mut [u8]) -> Result<usize, ProtoError> {
    if buf.len() < HEADER_LEN {
        return Err(ProtoError::BufferTooSmall);
    }
    let (header, body) = buf.split_at_mut(HEADER_LEN);
    let len = postcard::to_slice(msg, body)
        .map_err(|_| ProtoError::BufferTooSmall)?
        .len();
    header.copy_from_slice(&(len as u32).to_le_bytes());
    Ok(HEADER_LEN + len)
}

/// Decodes one payload (without header). Trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, ProtoError> {
    let (msg, rest) =
        postcard::take_from_bytes(payload).map_err(|e| ProtoError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(ProtoError::Malformed(format!(
            "{} trailing bytes",
            rest.len()
        )));
    }
    Ok(msg)
}

/// Decodes one complete frame held whole in `bytes` (e.g. one datagram): the header must claim
/// exactly the bytes that follow it.
pub fn decode_frame<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ProtoError> {
    let Some((header, payload)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        return Err(ProtoError::Truncated);
    };
    let len = checked_len(*header)?;
    match payload.len().cmp(&len) {
        std::cmp::Ordering::Less => Err(ProtoError::Truncated),
        std::cmp::Ordering::Greater => Err(ProtoError::Malformed(format!(
            "{} bytes after a frame of {len}",
            payload.len() - len
        ))),
        std::cmp::Ordering::Equal => decode(payload),
    }
}

fn checked_len(header: [u8; HEADER_LEN]) -> Result<usize, ProtoError> {
    let len = u32::from_le_bytes(header) as usize;
    if len > MAX_FRAME_LEN {
        return Err(ProtoError::TooLarge {
            len,
            max: MAX_FRAME_LEN,
        });
    }
    Ok(len)
}

/// Reads one frame from a blocking reader. `Ok(None)` on a clean end of stream between frames.
pub fn read_frame<T: DeserializeOwned>(r: &mut impl Read) -> Result<Option<T>, ProtoError> {
    let mut header = [0u8; HEADER_LEN];
    match read_full(r, &mut header)? {
        0 => return Ok(None),
        HEADER_LEN => {}
        _ => return Err(ProtoError::Truncated),
    }
    let mut payload = vec![0u8; checked_len(header)?];
    if read_full(r, &mut payload)? != payload.len() {
        return Err(ProtoError::Truncated);
    }
    decode(&payload).map(Some)
}

/// Reads until `buf` is full or EOF; returns how many bytes were read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Writes one frame to a blocking writer in a single `write_all`.
pub fn write_frame<T: Serialize>(w: &mut impl Write, msg: &T) -> Result<(), ProtoError> {
    w.write_all(&encode(msg)?)?;
    Ok(())
}

/// Reads one frame from an async reader. `Ok(None)` on a clean end of stream between frames.
#[cfg(feature = "tokio")]
pub async fn read_frame_async<T: DeserializeOwned>(
    r: &mut (impl tokio::io::AsyncRead + Unpin),
) -> Result<Option<T>, ProtoError> {
    use tokio::io::AsyncReadExt;
    let mut header = [0u8; HEADER_LEN];
    let mut filled = 0;
    while filled < HEADER_LEN {
        match r.read(&mut header[filled..]).await? {
            0 if filled == 0 => return Ok(None),
            0 => return Err(ProtoError::Truncated),
            n => filled += n,
        }
    }
    let mut payload = vec![0u8; checked_len(header)?];
    r.read_exact(&mut payload)
        .await
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => ProtoError::Truncated,
            _ => ProtoError::Io(e),
        })?;
    decode(&payload).map(Some)
}

/// Reads one frame like [`read_frame_async`], but first shows the claimed payload length to `admit`,
/// which may refuse it (its error is returned as is, before any payload is read) or return a ticket
/// handed back with the message (e.g. a reservation of the memory the payload takes). The payload
/// buffer grows only as bytes arrive, never to the claimed length up front. `Ok(None)` on a clean end
/// of stream before the frame.
#[cfg(feature = "tokio")]
pub async fn read_frame_admitted<T, A, E>(
    r: &mut (impl tokio::io::AsyncRead + Unpin),
    admit: impl FnOnce(usize) -> Result<A, E>,
) -> Result<Option<(T, A)>, E>
where
    T: DeserializeOwned,
    E: From<ProtoError>,
{
    use tokio::io::AsyncReadExt;
    let mut header = [0u8; HEADER_LEN];
    let mut filled = 0;
    while filled < HEADER_LEN {
        match r
            .read(&mut header[filled..])
            .await
            .map_err(ProtoError::Io)?
        {
            0 if filled == 0 => return Ok(None),
            0 => return Err(ProtoError::Truncated.into()),
            n => filled += n,
        }
    }
    let len = checked_len(header)?;
    let ticket = admit(len)?;
    let mut payload = Vec::new();
    r.take(len as u64)
        .read_to_end(&mut payload)
        .await
        .map_err(ProtoError::Io)?;
    if payload.len() < len {
        return Err(ProtoError::Truncated.into());
    }
    Ok(Some((decode(&payload)?, ticket)))
}

/// Reads one frame through `buf`, so a whole small frame costs one `read` (frames that arrive
/// together are decoded without further reads). `Ok(None)` on a clean end of stream.
#[cfg(feature = "tokio")]
pub async fn read_frame_buffered<T: DeserializeOwned>(
    r: &mut (impl tokio::io::AsyncRead + Unpin),
    buf: &mut FrameBuf,
) -> Result<Option<T>, ProtoError> {
    use tokio::io::AsyncReadExt;
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(msg) = buf.next_frame()? {
            return Ok(Some(msg));
        }
        match r.read(&mut chunk).await? {
            0 if buf.has_partial() => return Err(ProtoError::Truncated),
            0 => return Ok(None),
            n => buf.push(&chunk[..n]),
        }
    }
}

/// Writes one frame to an async writer.
#[cfg(feature = "tokio")]
pub async fn write_frame_async<T: Serialize>(
    w: &mut (impl tokio::io::AsyncWrite + Unpin),
    msg: &T,
) -> Result<(), ProtoError> {
    use tokio::io::AsyncWriteExt;
    w.write_all(&encode(msg)?).await?;
    Ok(())
}

/// Incremental decoder for bytes that arrive in arbitrary pieces (e.g. from `recvmsg`).
#[derive(Default, Debug)]
pub struct FrameBuf {
    buf: Vec<u8>,
}

impl FrameBuf {
    pub fn new() -> FrameBuf {
        FrameBuf::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Whether a partial frame is buffered.
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Takes the next complete frame, if one is buffered.
    pub fn next_frame<T: DeserializeOwned>(&mut self) -> Result<Option<T>, ProtoError> {
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&self.buf[..HEADER_LEN]);
        let len = checked_len(header)?;
        if self.buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let msg = decode(&self.buf[HEADER_LEN..HEADER_LEN + len]);
        self.buf.drain(..HEADER_LEN + len);
        msg.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::*;
    use keelson_types::{Op, ResourceId};

    #[test]
    fn round_trip_through_every_reader() {
        let msg = ResourceRequest::Call {
            op: Op::LooksAlive,
            deadline_ms: 200,
        };
        let frame = encode(&msg).unwrap();
        let mut cursor = std::io::Cursor::new(frame.clone());
        assert_eq!(
            read_frame::<ResourceRequest>(&mut cursor).unwrap(),
            Some(msg.clone())
        );
        assert_eq!(read_frame::<ResourceRequest>(&mut cursor).unwrap(), None);

        let mut fb = FrameBuf::new();
        for byte in frame.iter().chain(frame.iter()) {
            fb.push(std::slice::from_ref(byte));
        }
        assert_eq!(
            fb.next_frame::<ResourceRequest>().unwrap(),
            Some(msg.clone())
        );
        assert_eq!(fb.next_frame::<ResourceRequest>().unwrap(), Some(msg));
        assert_eq!(fb.next_frame::<ResourceRequest>().unwrap(), None);
    }

    #[test]
    fn oversized_frame_is_refused_before_allocating() {
        let mut bytes = u32::MAX.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0; 8]);
        let err = read_frame::<HostReply>(&mut std::io::Cursor::new(bytes.clone())).unwrap_err();
        assert!(matches!(err, ProtoError::TooLarge { .. }), "{err}");
        let mut fb = FrameBuf::new();
        fb.push(&bytes);
        assert!(matches!(
            fb.next_frame::<HostReply>(),
            Err(ProtoError::TooLarge { .. })
        ));
    }

    #[test]
    fn malformed_and_truncated_frames_are_errors() {
        // A valid length with garbage payload: variant index 200 does not exist.
        let bytes = [2u8, 0, 0, 0, 200, 1];
        let err = read_frame::<HostReply>(&mut std::io::Cursor::new(bytes)).unwrap_err();
        assert!(matches!(err, ProtoError::Malformed(_)), "{err}");
        let err =
            read_frame::<HostReply>(&mut std::io::Cursor::new([9u8, 0, 0, 0, 1])).unwrap_err();
        assert!(matches!(err, ProtoError::Truncated), "{err}");
        let err = read_frame::<HostReply>(&mut std::io::Cursor::new([9u8, 0])).unwrap_err();
        assert!(matches!(err, ProtoError::Truncated), "{err}");
        // Trailing bytes after a valid message.
        let mut frame = encode(&HostRequest::Shutdown).unwrap();
        frame.push(0);
        frame[0] += 1;
        assert!(read_frame::<HostRequest>(&mut std::io::Cursor::new(frame)).is_err());
    }

    #[test]
    fn alarm_encodes_without_allocating_into_a_small_buffer() {
        let alarm = HostAlarm::Crashed {
            resource: Some(ResourceId(u64::MAX)),
            op: Some(Op::LooksAlive),
            signal: 11,
            pc: u64::MAX,
            fault_addr: u64::MAX,
            in_plugin: Some(crate::PluginCode {
                slot: u32::MAX,
                offset: u64::MAX,
            }),
        };
        let mut buf = [0u8; 64];
        let n = encode_into(&alarm, &mut buf).unwrap();
        assert_eq!(&buf[..n], encode(&alarm).unwrap().as_slice());
        assert_eq!(decode::<HostAlarm>(&buf[4..n]).unwrap(), alarm);
        assert!(matches!(
            encode_into(&alarm, &mut [0u8; 6]),
            Err(ProtoError::BufferTooSmall)
        ));
    }

    fn grant() -> LeaseMessage {
        LeaseMessage::Grant(LeaseGrant {
            seq: 41,
            granted_at_ns: 123_456_789_000,
            valid_for_ms: 3_000,
            terminate_within_ms: 1_000,
        })
    }

    #[test]
    fn a_lease_grant_is_one_whole_frame() {
        let frame = encode(&grant()).unwrap();
        assert_eq!(decode_frame::<LeaseMessage>(&frame).unwrap(), grant());
        assert_eq!(
            read_frame::<LeaseMessage>(&mut std::io::Cursor::new(&frame)).unwrap(),
            Some(grant())
        );
        assert!(frame.len() < 64, "a grant is a small datagram");
    }

    #[test]
    fn malformed_lease_frames_are_errors() {
        let frame = encode(&grant()).unwrap();
        // Cut anywhere: a truncation, never a panic.
        for cut in 0..frame.len() {
            let err = decode_frame::<LeaseMessage>(&frame[..cut]).unwrap_err();
            assert!(matches!(err, ProtoError::Truncated), "cut {cut}: {err}");
        }
        // Bytes after the frame its header claims.
        let mut long = frame.clone();
        long.push(0);
        let err = decode_frame::<LeaseMessage>(&long).unwrap_err();
        assert!(matches!(err, ProtoError::Malformed(_)), "{err}");
        // A header claiming more than the limit.
        let mut huge = u32::MAX.to_le_bytes().to_vec();
        huge.extend_from_slice(&frame[4..]);
        let err = decode_frame::<LeaseMessage>(&huge).unwrap_err();
        assert!(matches!(err, ProtoError::TooLarge { .. }), "{err}");
        // An unknown variant, and a grant whose last varint never ends.
        let err = decode_frame::<LeaseMessage>(&[2, 0, 0, 0, 9, 1]).unwrap_err();
        assert!(matches!(err, ProtoError::Malformed(_)), "{err}");
        let mut cut_varint = frame.clone();
        let last = cut_varint.len() - 1;
        cut_varint[last] |= 0x80;
        assert!(decode_frame::<LeaseMessage>(&cut_varint).is_err());
        // Another message's frame is not a grant.
        let other = encode(&HostRequest::Shutdown).unwrap();
        assert!(decode_frame::<LeaseMessage>(&other).is_err());
    }

    #[test]
    fn a_fenced_alarm_fits_the_alarm_buffer() {
        let alarm = HostAlarm::Fenced {
            seq: u64::MAX,
            late_ms: u64::MAX,
            resources: u32::MAX,
            terminated: u32::MAX,
        };
        let mut buf = [0u8; 64];
        let n = encode_into(&alarm, &mut buf).unwrap();
        assert_eq!(decode_frame::<HostAlarm>(&buf[..n]).unwrap(), alarm);
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn an_admitted_read_asks_before_reading_the_payload() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let frame = encode(&HostRequest::Shutdown).unwrap();
        let claimed = frame.len() - 4;
        rt.block_on(async {
            let mut ok = &frame[..];
            let got = read_frame_admitted::<HostRequest, _, ProtoError>(&mut ok, Ok)
                .await
                .unwrap();
            assert_eq!(got, Some((HostRequest::Shutdown, claimed)));
            let mut refused = &frame[..];
            let err = read_frame_admitted::<HostRequest, (), _>(&mut refused, |len| {
                Err(ProtoError::TooLarge { len, max: 0 })
            })
            .await
            .unwrap_err();
            assert!(matches!(err, ProtoError::TooLarge { max: 0, .. }));
            assert_eq!(refused.len(), claimed, "the payload was not read");
            let mut cut = &frame[..frame.len() - 1];
            let err = read_frame_admitted::<HostRequest, _, ProtoError>(&mut cut, |_| Ok(()))
                .await
                .unwrap_err();
            assert!(matches!(err, ProtoError::Truncated));
        });
    }

    #[test]
    fn random_bytes_never_panic() {
        // A small deterministic xorshift fuzz: decoding arbitrary bytes returns Ok or Err, never panics.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            let len = (x % 24) as usize;
            let mut bytes = Vec::with_capacity(len + 4);
            bytes.extend_from_slice(&(len as u32).to_le_bytes());
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                bytes.push(x as u8);
            }
            let _ = read_frame::<HostReply>(&mut std::io::Cursor::new(&bytes));
            let _ = read_frame::<HostAlarm>(&mut std::io::Cursor::new(&bytes));
            let _ = read_frame::<HostRequest>(&mut std::io::Cursor::new(&bytes));
            let _ = decode_frame::<LeaseMessage>(&bytes);
            x = x.wrapping_add(1);
        }
    }
}

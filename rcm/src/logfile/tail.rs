//! The last lines of a log file and its rotated predecessors, read with bounded memory: a backwards
//! pass in 64 KiB chunks finds where the wanted lines start (counting newline bytes only), then a
//! forward pass hands over each line as it is read, oldest first. Works on bytes, so a chunk
//! boundary inside a multi-byte character loses nothing; each whole line is decoded on its own
//! (lossily if it is not UTF-8). Blocking: run it off the async thread. Not writing (logfile.rs).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Most lines one request may read.
pub const MAX_TAIL_LINES: usize = 100_000;
/// Most bytes one request may read.
pub const MAX_TAIL_BYTES: u64 = 16 << 20;
/// A longer line is cut to this many bytes (and says how much was cut).
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Read size of both passes.
const CHUNK: usize = 64 * 1024;

/// A log file set as it was when opened, newest first (current, .1, .2, …).
pub struct Tail {
    files: Vec<(File, u64)>,
    /// Each file's name, for errors.
    names: Vec<String>,
}

/// How a tail read ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TailEnd {
    /// Lines handed over.
    pub lines: usize,
    /// Fewer lines than asked for were read although more exist (the per-request caps).
    pub capped: bool,
}

/// Where the wanted lines of one file start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Found {
    start: u64,
    lines: usize,
    /// Stopped because the byte budget was spent.
    by_bytes: bool,
}

impl Tail {
    /// Opens `path` and `path.1` … `path.keep`, stopping at the first rotated file that does not
    /// exist; any other error is returned.
    pub fn open(path: &Path, keep: u32) -> io::Result<Tail> {
        let (mut files, mut names) = (Vec::new(), Vec::new());
        for k in 0..=keep {
            let name = if k == 0 {
                path.to_path_buf()
            } else {
                super::rotated(path, k)
            };
            match File::open(&name) {
                Ok(file) => {
                    let len = file.metadata().map_err(|e| with_name(e, &name))?.len();
                    files.push((file, len));
                    names.push(short_name(&name));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && k > 0 => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(with_name(e, &name)),
            }
        }
        Ok(Tail { files, names })
    }

    /// Hands the last `wanted` lines (at most [`MAX_TAIL_LINES`] and [`MAX_TAIL_BYTES`]) to `emit`,
    /// oldest first, and stops early when `emit` returns false (the reader went away).
    pub fn stream(
        self,
        wanted: usize,
        mut emit: impl FnMut(String) -> bool,
    ) -> io::Result<TailEnd> {
        let limit = wanted.min(MAX_TAIL_LINES);
        let mut starts: Vec<(usize, u64)> = Vec::new();
        let (mut lines, mut bytes, mut by_bytes) = (0usize, 0u64, false);
        for (i, (file, len)) in self.files.iter().enumerate() {
            if lines >= limit || by_bytes {
                break;
            }
            let found = find_start(file, *len, limit - lines, MAX_TAIL_BYTES - bytes)
                .map_err(|e| self.named(e, i))?;
            starts.push((i, found.start));
            lines += found.lines;
            bytes += len - found.start;
            by_bytes = found.by_bytes;
        }
        let more_before = match starts.last() {
            Some(&(i, start)) => start > 0 || self.files[i + 1..].iter().any(|(_, l)| *l > 0),
            None => self.files.iter().any(|(_, l)| *l > 0),
        };
        let mut sent = 0usize;
        for &(i, start) in starts.iter().rev() {
            let (file, len) = &self.files[i];
            let more = emit_lines(file, start, *len, &mut |line| {
                sent += 1;
                emit(line)
            })
            .map_err(|e| self.named(e, i))?;
            if !more {
                break;
            }
        }
        Ok(TailEnd {
            lines: sent,
            capped: lines < wanted && more_before,
        })
    }
}

impl Tail {
    fn named(&self, e: io::Error, i: usize) -> io::Error {
        io::Error::new(e.kind(), format!("{}: {e}", self.names[i]))
    }
}

/// Scans `file` (of `len` bytes) backwards for the start of its last `want` lines, spending at most
/// `budget` bytes. A file not ending in a newline has a last, unterminated line.
fn find_start(file: &File, len: u64, want: usize, budget: u64) -> io::Result<Found> {
    let mut found = Found {
        start: len,
        lines: 0,
        by_bytes: false,
    };
    if len == 0 || want == 0 {
        return Ok(found);
    }
    let mut buf = vec![0u8; CHUNK];
    let mut pos = len;
    while pos > 0 {
        let from = pos.saturating_sub(CHUNK as u64);
        let chunk = &mut buf[..(pos - from) as usize];
        file.read_exact_at(chunk, from)?;
        for (i, byte) in chunk.iter().enumerate().rev() {
            let at = from + i as u64;
            // The newline ending the file ends the last line; it does not start one.
            if *byte == b'\n' && at != len - 1 && !found.take(at + 1, len, want, budget) {
                return Ok(found);
            }
        }
        pos = from;
    }
    found.take(0, len, want, budget);
    Ok(found)
}

impl Found {
    /// Counts the line starting at `start`; false once enough lines are counted or it does not fit.
    fn take(&mut self, start: u64, len: u64, want: usize, budget: u64) -> bool {
        if len - start > budget {
            self.by_bytes = true;
            return false;
        }
        self.start = start;
        self.lines += 1;
        self.lines < want
    }
}

/// Reads `file` from `start` to `len`, handing over each line (without its newline); false when
/// `emit` asked to stop.
fn emit_lines(
    file: &File,
    start: u64,
    len: u64,
    emit: &mut dyn FnMut(String) -> bool,
) -> io::Result<bool> {
    let mut buf = vec![0u8; CHUNK];
    let mut line = LineBuf::default();
    let mut pos = start;
    while pos < len {
        let n = ((len - pos) as usize).min(CHUNK);
        file.read_exact_at(&mut buf[..n], pos)?;
        pos += n as u64;
        let mut rest = &buf[..n];
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            line.push(&rest[..end]);
            if !emit(line.take()) {
                return Ok(false);
            }
            rest = &rest[end + 1..];
        }
        line.push(rest);
    }
    if line.has_any() {
        return Ok(emit(line.take()));
    }
    Ok(true)
}

/// One line being assembled, kept to [`MAX_LINE_BYTES`].
#[derive(Default)]
struct LineBuf {
    bytes: Vec<u8>,
    cut: u64,
}

impl LineBuf {
    fn push(&mut self, piece: &[u8]) {
        let room = MAX_LINE_BYTES.saturating_sub(self.bytes.len());
        let kept = piece.len().min(room);
        self.bytes.extend_from_slice(&piece[..kept]);
        self.cut += (piece.len() - kept) as u64;
    }

    fn has_any(&self) -> bool {
        !self.bytes.is_empty() || self.cut > 0
    }

    /// The line decoded (lossily), with a note of what was cut; the buffer is left empty.
    fn take(&mut self) -> String {
        let mut text = String::from_utf8_lossy(&self.bytes).into_owned();
        if self.cut > 0 {
            text.push_str(&format!(" ... [{} more bytes not shown]", self.cut));
        }
        self.bytes.clear();
        self.cut = 0;
        text
    }
}

fn with_name(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", short_name(path)))
}

/// The file's name without its directory (`cluster.log.1`).
fn short_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("keelson-tail-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn tail(path: &Path, keep: u32, n: usize) -> (Vec<String>, TailEnd) {
        let mut lines = Vec::new();
        let end = Tail::open(path, keep)
            .unwrap()
            .stream(n, |l| {
                lines.push(l);
                true
            })
            .unwrap();
        (lines, end)
    }

    #[test]
    fn a_chunk_boundary_inside_a_multibyte_character_loses_no_line() {
        let dir = temp_dir("utf8");
        let path = dir.join("events.jsonl");
        // Lines of "é" (2 bytes) arranged so that 64 KiB from the end falls inside a character.
        let line = "é".repeat(1000); // 2000 bytes + newline
        let mut text = String::from("x\n");
        for _ in 0..100 {
            text.push_str(&line);
            text.push('\n');
        }
        std::fs::write(&path, &text).unwrap();
        assert_ne!(text.len() - CHUNK, 0);
        assert!(
            !text.is_char_boundary(text.len() - CHUNK),
            "the test splits a character"
        );
        let (lines, end) = tail(&path, 0, 50);
        assert_eq!(lines.len(), 50);
        assert!(lines.iter().all(|l| *l == line));
        assert!(!end.capped && end.lines == 50);
        let (all, _) = tail(&path, 0, 1000);
        assert_eq!(all.len(), 101);
        assert_eq!(all[0], "x");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reaches_into_rotated_files_in_order_and_handles_odd_endings() {
        let dir = temp_dir("rot");
        let path = dir.join("c.log");
        std::fs::write(super::super::rotated(&path, 2), "a1\na2\n").unwrap();
        std::fs::write(super::super::rotated(&path, 1), "b1\nb2").unwrap(); // torn by an old version
        std::fs::write(&path, "c1\n\nc3\n").unwrap();
        let (lines, end) = tail(&path, 5, 4);
        assert_eq!(lines, ["b1", "b2", "c1", "", "c3"][1..].to_vec());
        assert!(!end.capped);
        let (lines, _) = tail(&path, 5, 100);
        assert_eq!(lines, ["a1", "a2", "b1", "b2", "c1", "", "c3"]);
        let (lines, _) = tail(&path, 1, 100);
        assert_eq!(lines.len(), 5, "keep bounds the files read");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn caps_lines_and_bytes_and_says_so() {
        let dir = temp_dir("cap");
        let path = dir.join("big.log");
        let mut text = String::new();
        for i in 0..(MAX_TAIL_LINES + 10) {
            text.push_str(&format!("{i}\n"));
        }
        std::fs::write(&path, &text).unwrap();
        let (lines, end) = tail(&path, 0, u32::MAX as usize);
        assert_eq!(lines.len(), MAX_TAIL_LINES);
        assert_eq!(lines.last().unwrap(), &(MAX_TAIL_LINES + 9).to_string());
        assert!(end.capped);
        // Asking for exactly what exists is not capped.
        let (_, end) = tail(&path, 0, 20);
        assert!(!end.capped);

        // 17 lines of 1 MiB: the 16 MiB cap keeps 16 whole ones (each shown cut).
        let line = "y".repeat((1 << 20) - 1);
        let mut big = String::new();
        for _ in 0..17 {
            big.push_str(&line);
            big.push('\n');
        }
        std::fs::write(&path, &big).unwrap();
        let mut count = 0;
        let end = Tail::open(&path, 0)
            .unwrap()
            .stream(100, |l| {
                assert!(l.len() < MAX_LINE_BYTES + 64 && l.ends_with("more bytes not shown]"));
                count += 1;
                true
            })
            .unwrap();
        assert_eq!((count, end.capped), (16, true));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_reader_that_goes_away_stops_the_read() {
        let dir = temp_dir("stop");
        let path = dir.join("s.log");
        std::fs::write(&path, "1\n2\n3\n").unwrap();
        let mut seen = 0;
        let end = Tail::open(&path, 0)
            .unwrap()
            .stream(10, |_| {
                seen += 1;
                false
            })
            .unwrap();
        assert_eq!((seen, end.lines), (1, 1));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

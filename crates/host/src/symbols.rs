//! Names the function at an address of a plugin file, for crash reports: reads the file's ELF64
//! section headers and symbol table (.symtab, else .dynsym; nothing else, each table capped) and
//! demangles legacy Rust names. Best effort: any problem is just no name. Not loading or running
//! the file (plugin code never runs in rcm), and not DWARF.

use std::os::unix::fs::FileExt;

/// The most this reads of one table (section headers, symbols or their names).
const MAX_TABLE: u64 = 64 << 20;
const SHT_SYMTAB: u32 = 2;
const SHT_DYNSYM: u32 = 11;
const STT_FUNC: u8 = 2;

/// Byte ranges of an ELF image: a file read piecewise, or a buffer in tests.
trait Image {
    fn range(&self, offset: u64, len: u64) -> Option<Vec<u8>>;
}

impl Image for std::fs::File {
    fn range(&self, offset: u64, len: u64) -> Option<Vec<u8>> {
        if len > MAX_TABLE {
            return None;
        }
        let mut buf = vec![0u8; usize::try_from(len).ok()?];
        self.read_exact_at(&mut buf, offset).ok()?;
        Some(buf)
    }
}

impl Image for [u8] {
    fn range(&self, offset: u64, len: u64) -> Option<Vec<u8>> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        self.get(start..end).map(<[u8]>::to_vec)
    }
}

/// The function containing ELF virtual address `addr` of the regular file at `path`.
pub(crate) fn symbolise(path: &str, addr: u64) -> Option<String> {
    let file = std::fs::File::open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    symbol_at(&file, addr).map(|name| demangle(&name))
}

/// The raw name of the function symbol whose `[value, value + size)` holds `addr`.
fn symbol_at(elf: &(impl Image + ?Sized), addr: u64) -> Option<String> {
    let header = elf.range(0, 64)?;
    if header.get(..6)? != b"\x7fELF\x02\x01" {
        return None; // not a little-endian ELF64 file
    }
    let shoff = u64_at(&header, 0x28)?;
    let shentsize = u64::from(u16_at(&header, 0x3a)?);
    let shnum = u64::from(u16_at(&header, 0x3c)?);
    if shentsize < 64 {
        return None;
    }
    let sections = elf.range(shoff, shentsize.checked_mul(shnum)?)?;
    let section = |i: u64| {
        let at = usize::try_from(i * shentsize).ok()?;
        sections.get(at..at + 64)
    };
    let table = [SHT_SYMTAB, SHT_DYNSYM].into_iter().find_map(|kind| {
        (0..shnum).find_map(|i| section(i).filter(|s| u32_at(s, 4) == Some(kind)))
    })?;
    let strtab = section(u64::from(u32_at(table, 40)?))?;
    let symbols = elf.range(u64_at(table, 24)?, u64_at(table, 32)?)?;
    let strings = elf.range(u64_at(strtab, 24)?, u64_at(strtab, 32)?)?;
    symbols.chunks_exact(24).find_map(|sym| {
        let (value, size) = (u64_at(sym, 8)?, u64_at(sym, 16)?);
        let is_func = sym[4] & 0xf == STT_FUNC;
        if !is_func || addr < value || addr >= value.saturating_add(size.max(1)) {
            return None;
        }
        let name = strings.get(u32_at(sym, 0)? as usize..)?;
        let end = name.iter().position(|&b| b == 0)?;
        Some(String::from_utf8_lossy(&name[..end]).into_owned())
    })
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// `_ZN5chaos5fault5crash17h0123456789abcdefE` -> `chaos::fault::crash`; other names unchanged.
fn demangle(raw: &str) -> String {
    legacy_rust(raw).unwrap_or_else(|| raw.to_string())
}

fn legacy_rust(raw: &str) -> Option<String> {
    let mut rest = raw.strip_prefix("_ZN")?;
    let mut parts = Vec::new();
    while !rest.starts_with('E') {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let len: usize = rest.get(..digits)?.parse().ok()?;
        parts.push(rest.get(digits..digits + len)?);
        rest = &rest[digits + len..];
    }
    let is_hash = |p: &&str| {
        p.len() == 17 && p.starts_with('h') && p[1..].bytes().all(|b| b.is_ascii_hexdigit())
    };
    if parts.last().is_some_and(is_hash) {
        parts.pop();
    }
    Some(
        parts
            .iter()
            .map(|p| unescape(p))
            .collect::<Vec<_>>()
            .join("::"),
    )
}

fn unescape(part: &str) -> String {
    const ESCAPES: [(&str, &str); 13] = [
        ("$LT$", "<"),
        ("$GT$", ">"),
        ("$u7b$", "{"),
        ("$u7d$", "}"),
        ("$C$", ","),
        ("$RF$", "&"),
        ("$BP$", "*"),
        ("$SP$", "@"),
        ("$u20$", " "),
        ("$u27$", "'"),
        ("$u5b$", "["),
        ("$u5d$", "]"),
        ("$u7e$", "~"),
    ];
    let mut out = part
        .strip_prefix("_$")
        .map(|p| format!("${p}"))
        .unwrap_or(part.to_string());
    for (from, to) in ESCAPES {
        out = out.replace(from, to);
    }
    out.replace("..", "::")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_rust_names_demangle_and_others_stay() {
        assert_eq!(
            demangle(
                "_ZN5chaos5fault11segv_thread28_$u7b$$u7b$closure$u7d$$u7d$17h0123456789abcdefE"
            ),
            "chaos::fault::segv_thread::{{closure}}"
        );
        assert_eq!(
            demangle("_ZN4core3ptr14write_volatile17hfedcba9876543210E"),
            "core::ptr::write_volatile"
        );
        assert_eq!(
            demangle("_ZN4core3ptr"),
            "_ZN4core3ptr",
            "truncated: unchanged"
        );
        assert_eq!(demangle("keelson_plugin_v1"), "keelson_plugin_v1");
    }

    #[test]
    fn not_an_elf_file_has_no_names() {
        assert_eq!(
            symbol_at(
                &b"not an elf file at all, but long enough to hold a header: 64 bytes"[..],
                0
            ),
            None
        );
        assert_eq!(
            symbol_at(&b"\x7fELF\x02\x01"[..], 0),
            None,
            "truncated header"
        );
        assert_eq!(symbolise("/nonexistent/plugin.so", 0), None);
        assert_eq!(
            symbolise("/dev/zero", 0),
            None,
            "not a regular file: not read"
        );
    }

    /// A tiny ELF64 image: header, a symtab and its strtab, two function symbols.
    fn tiny_elf() -> Vec<u8> {
        let strings = b"\0first\0second\0";
        let mut symbols = vec![0u8; 24]; // the null symbol
        for (name, value, size) in [(1u32, 0x1000u64, 0x10u64), (7, 0x1010, 0x20)] {
            let mut sym = [0u8; 24];
            sym[0..4].copy_from_slice(&name.to_le_bytes());
            sym[4] = STT_FUNC;
            sym[8..16].copy_from_slice(&value.to_le_bytes());
            sym[16..24].copy_from_slice(&size.to_le_bytes());
            symbols.extend_from_slice(&sym);
        }
        let (sym_off, str_off, sh_off) = (
            64usize,
            64 + symbols.len(),
            64 + symbols.len() + strings.len(),
        );
        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x28..0x30].copy_from_slice(&(sh_off as u64).to_le_bytes());
        elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        elf.extend_from_slice(&symbols);
        elf.extend_from_slice(strings);
        elf.extend_from_slice(&[0u8; 64]); // section 0: null
        for (kind, off, len, link) in [
            (SHT_SYMTAB, sym_off, symbols.len(), 2u32),
            (3, str_off, strings.len(), 0),
        ] {
            let mut sh = [0u8; 64];
            sh[4..8].copy_from_slice(&kind.to_le_bytes());
            sh[24..32].copy_from_slice(&(off as u64).to_le_bytes());
            sh[32..40].copy_from_slice(&(len as u64).to_le_bytes());
            sh[40..44].copy_from_slice(&link.to_le_bytes());
            elf.extend_from_slice(&sh);
        }
        elf
    }

    #[test]
    fn the_function_holding_an_address_is_found() {
        let elf = &tiny_elf()[..];
        assert_eq!(symbol_at(elf, 0x1000).as_deref(), Some("first"));
        assert_eq!(symbol_at(elf, 0x100f).as_deref(), Some("first"));
        assert_eq!(symbol_at(elf, 0x1010).as_deref(), Some("second"));
        assert_eq!(symbol_at(elf, 0x102f).as_deref(), Some("second"));
        assert_eq!(symbol_at(elf, 0x1030), None);
        assert_eq!(symbol_at(elf, 0xfff), None);
    }
}

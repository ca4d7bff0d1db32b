//! The mapped segments of one loaded ELF object (the main program or a shared library), found with
//! `dl_iterate_phdr` from any address inside it. Called at plugin load time, never from a signal
//! handler (it takes the dynamic loader's lock and allocates): address_table.rs is the signal-safe
//! side. Not which plugin the object is (the caller knows).

use std::ffi::{c_int, c_void, CStr};

/// One PT_LOAD segment as mapped in this process: `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub start: usize,
    pub end: usize,
    pub executable: bool,
}

impl Segment {
    pub fn contains(&self, addr: usize) -> bool {
        self.start <= addr && addr < self.end
    }
}

/// A loaded object: its load bias (an address minus `base` is the ELF virtual address in its file),
/// the name the loader knows it by, and every PT_LOAD segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedObject {
    pub base: usize,
    pub name: String,
    pub segments: Vec<Segment>,
}

impl LoadedObject {
    /// The loaded object with a segment containing `addr` (e.g. an exported symbol's address), or
    /// None when no object maps it.
    pub fn containing(addr: usize) -> Option<LoadedObject> {
        let mut search = Search { addr, found: None };
        // SAFETY: the callback only reads the loader's phdr info for the duration of each call and
        // writes into `search`, which outlives the iteration.
        unsafe { libc::dl_iterate_phdr(Some(visit), (&mut search as *mut Search).cast()) };
        search.found
    }

    pub fn contains(&self, addr: usize) -> bool {
        self.segments.iter().any(|s| s.contains(addr))
    }
}

struct Search {
    addr: usize,
    found: Option<LoadedObject>,
}

/// dl_iterate_phdr's callback: records the object whose PT_LOAD segments contain `search.addr`.
unsafe extern "C" fn visit(
    info: *mut libc::dl_phdr_info,
    _size: usize,
    data: *mut c_void,
) -> c_int {
    // SAFETY: dl_iterate_phdr passes a valid info struct and our `Search` as `data`.
    let (info, search) = unsafe { (&*info, &mut *data.cast::<Search>()) };
    // SAFETY: the loader guarantees `dlpi_phnum` program headers at `dlpi_phdr` during the call.
    let segments = unsafe { load_segments(info) };
    if !segments.iter().any(|s| s.contains(search.addr)) {
        return 0;
    }
    let name = if info.dlpi_name.is_null() {
        String::new()
    } else {
        // SAFETY: non-null dlpi_name is a NUL-terminated string owned by the loader.
        unsafe { CStr::from_ptr(info.dlpi_name) }
            .to_string_lossy()
            .into_owned()
    };
    search.found = Some(LoadedObject {
        base: info.dlpi_addr as usize,
        name,
        segments,
    });
    1 // stop iterating
}

/// The PT_LOAD segments of `info`, relocated by its load bias.
///
/// # Safety
/// `info.dlpi_phdr` must point to `info.dlpi_phnum` program headers (true inside dl_iterate_phdr).
unsafe fn load_segments(info: &libc::dl_phdr_info) -> Vec<Segment> {
    if info.dlpi_phdr.is_null() {
        return Vec::new();
    }
    // SAFETY: the caller promises `dlpi_phnum` headers at `dlpi_phdr`.
    let headers = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) };
    let base = info.dlpi_addr as usize;
    headers
        .iter()
        .filter(|h| h.p_type == libc::PT_LOAD && h.p_memsz > 0)
        .map(|h| {
            let start = base.wrapping_add(h.p_vaddr as usize);
            Segment {
                start,
                end: start.wrapping_add(h.p_memsz as usize),
                executable: h.p_flags & libc::PF_X != 0,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local_function() -> usize {
        local_function as *const () as usize
    }

    #[test]
    fn finds_libc_from_one_of_its_functions_and_not_this_program() {
        let write = libc::write as *const () as usize;
        let libc_object = LoadedObject::containing(write).expect("libc's write is mapped");
        assert!(libc_object.name.contains("libc"), "{libc_object:?}");
        assert!(libc_object
            .segments
            .iter()
            .any(|s| s.executable && s.contains(write)));
        assert!(libc_object.base != 0, "a shared library has a load bias");

        let ours = LoadedObject::containing(local_function()).expect("the test program is mapped");
        assert_ne!(ours, libc_object);
        assert!(ours.contains(local_function()));
        assert!(!libc_object.contains(local_function()));
        assert!(!ours.contains(write));
    }

    #[test]
    fn an_unmapped_address_belongs_to_no_object() {
        assert_eq!(LoadedObject::containing(0x10), None);
    }
}

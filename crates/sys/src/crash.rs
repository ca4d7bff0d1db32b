//! Fatal-signal handling for processes that run foreign code: an alternate signal stack per thread
//! and a handler for SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGABRT that calls one async-signal-safe
//! callback with the signal, the faulting instruction address (from the ucontext) and the faulting
//! data address, and then lets the process die of the same signal. Not what the callback reports:
//! the caller (rhs) decides that.

use nix::sys::signal::Signal;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The signals treated as a crash of plugin code.
pub const FATAL_SIGNALS: [Signal; 5] = [
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGILL,
    Signal::SIGFPE,
    Signal::SIGABRT,
];

/// Size of each thread's alternate signal stack.
const ALT_STACK_SIZE: usize = 64 * 1024;

/// The callback, stored as a plain fn pointer (0 = none) so the handler can read it lock-free.
static CALLBACK: AtomicUsize = AtomicUsize::new(0);

/// What the kernel says about one fatal signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub signal: i32,
    /// The instruction that faulted (the program counter of the interrupted context); 0 if unknown.
    pub pc: usize,
    /// The memory address that faulted (`si_addr`, meaningful for SIGSEGV and SIGBUS); 0 otherwise.
    pub addr: usize,
}

/// Installs `on_crash` for every fatal signal. `on_crash` runs on the faulting thread, on its
/// alternate stack, and must be async-signal-safe: no allocation, no locks, only raw syscalls.
pub fn install_handler(on_crash: fn(&Fault)) -> io::Result<()> {
    CALLBACK.store(on_crash as usize, Ordering::SeqCst);
    for sig in FATAL_SIGNALS {
        // SAFETY: a zeroed sigaction is valid; we fill handler, flags and mask before use.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = handler as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESETHAND;
        // SAFETY: sa_mask is a valid sigset_t owned by `action`.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        // SAFETY: installing a handler for a valid signal number with a valid action struct.
        if unsafe { libc::sigaction(sig as libc::c_int, &action, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

extern "C" fn handler(signal: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let raw = CALLBACK.load(Ordering::SeqCst);
    if raw != 0 {
        let fault = Fault {
            signal,
            pc: faulting_pc(ctx),
            addr: faulting_addr(signal, info),
        };
        // SAFETY: `raw` was stored from a `fn(&Fault)` in install_handler and fn pointers
        // round-trip through usize on every supported target.
        let callback: fn(&Fault) = unsafe { std::mem::transmute::<usize, fn(&Fault)>(raw) };
        callback(&fault);
    }
    // SA_RESETHAND restored the default action. A hardware fault re-executes and dies with it on
    // return; a raised signal (abort) is re-raised here and delivered once this handler returns.
    // SAFETY: raise is async-signal-safe.
    unsafe { libc::raise(signal) };
}

/// The interrupted context's program counter: REG_RIP on x86_64, `pc` on aarch64, 0 elsewhere.
fn faulting_pc(ctx: *mut libc::c_void) -> usize {
    if ctx.is_null() {
        return 0;
    }
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        // SAFETY: with SA_SIGINFO the kernel passes a valid ucontext_t as the third argument.
        let uc = unsafe { &*ctx.cast::<libc::ucontext_t>() };
        uc.uc_mcontext.gregs[libc::REG_RIP as usize] as usize
    }
    #[cfg(all(target_os = "linux", target_arch = "aarch64"))]
    {
        // SAFETY: with SA_SIGINFO the kernel passes a valid ucontext_t as the third argument.
        let uc = unsafe { &*ctx.cast::<libc::ucontext_t>() };
        uc.uc_mcontext.pc as usize
    }
    #[cfg(not(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )))]
    {
        0
    }
}

/// `si_addr` for the signals where it names the faulting memory; 0 for the others.
fn faulting_addr(signal: i32, info: *mut libc::siginfo_t) -> usize {
    if info.is_null() || !matches!(signal, libc::SIGSEGV | libc::SIGBUS) {
        return 0;
    }
    // SAFETY: with SA_SIGINFO `info` is valid, and si_addr is set for SIGSEGV and SIGBUS.
    unsafe { (*info).si_addr() as usize }
}

/// An alternate signal stack for the current thread; the stack is freed when this is dropped.
pub struct AltStack {
    base: *mut libc::c_void,
    len: usize,
}

impl AltStack {
    /// Maps a stack (with a guard page below it) and makes it this thread's alternate signal stack.
    pub fn install() -> io::Result<AltStack> {
        let page = 4096;
        let len = ALT_STACK_SIZE + page;
        // SAFETY: anonymous private mapping, no fd; result checked below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `base` is our fresh mapping of `len` bytes; the lowest page becomes a guard.
        unsafe { libc::mprotect(base, page, libc::PROT_NONE) };
        let stack = libc::stack_t {
            // SAFETY: page < len, inside the mapping.
            ss_sp: unsafe { base.cast::<u8>().add(page) }.cast(),
            ss_flags: 0,
            ss_size: ALT_STACK_SIZE,
        };
        // SAFETY: `stack` describes memory that stays mapped until this AltStack is dropped.
        if unsafe { libc::sigaltstack(&stack, std::ptr::null_mut()) } != 0 {
            let err = io::Error::last_os_error();
            // SAFETY: unmapping the mapping we just made.
            unsafe { libc::munmap(base, len) };
            return Err(err);
        }
        Ok(AltStack { base, len })
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        let disable = libc::stack_t {
            ss_sp: std::ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        // SAFETY: disabling this thread's alternate stack before unmapping it.
        unsafe {
            libc::sigaltstack(&disable, std::ptr::null_mut());
            libc::munmap(self.base, self.len);
        }
    }
}

/// Writes all of `bytes` to `fd` with raw `write(2)`, retrying on EINTR. Async-signal-safe.
pub fn write_raw(fd: BorrowedFd<'_>, bytes: &[u8]) -> bool {
    let fd = fd.as_raw_fd();
    let mut off = 0;
    while off < bytes.len() {
        // SAFETY: the slice is valid for reads of its remaining length.
        let n = unsafe { libc::write(fd, bytes[off..].as_ptr().cast(), bytes.len() - off) };
        if n < 0 {
            // SAFETY: reading errno is async-signal-safe.
            if unsafe { *libc::__errno_location() } == libc::EINTR {
                continue;
            }
            return false;
        }
        off += n as usize;
    }
    true
}

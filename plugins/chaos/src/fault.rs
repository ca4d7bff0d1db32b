//! The faults chaos can inject, each a real one: a hang blocks the calling thread forever, `segv`
//! writes to an unmapped address, `segv_thread` starts a thread of the plugin's own that does so a
//! little later (the call itself returns fine), `bus` reads a mapping whose file was truncated, `ill`
//! executes an undefined instruction, `fpe` divides by zero in hardware, `abort` aborts, `exit`
//! exits; `misconfigured`, `not_installed` and `not_running` return those status codes, and `report`
//! starts a thread of the plugin's own that reports the resource's failure through the host a little
//! later (the call itself returns fine). Not the choice of when to fire (lib.rs).

use keelson_plugin::{Error, Host, Params};
use keelson_types::Op;
use std::time::Duration;

/// One kind of misbehaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Hang,
    Segv,
    /// A thread of the plugin's own writes to an unmapped address after this delay.
    SegvThread(Duration),
    Bus,
    Ill,
    Fpe,
    Abort,
    Panic,
    Exit(i32),
    Slow(Duration),
    Error,
    /// Returns `KEELSON_MISCONFIGURED`.
    Misconfigured,
    /// Returns `KEELSON_NOT_INSTALLED`.
    NotInstalled,
    /// Returns `KEELSON_NOT_RUNNING`.
    NotRunning,
    /// A thread of the plugin's own calls the host's `report_failure` after this delay.
    Report(Duration),
}

impl Fault {
    /// Parses `fault` (with its `slow_ms` / `exit_code` parameters).
    pub fn parse(name: &str, params: &Params) -> Result<Fault, String> {
        Ok(match name {
            "hang" => Fault::Hang,
            "segv" => Fault::Segv,
            "segv_thread" => Fault::SegvThread(Duration::from_millis(params.u64_or("thread_delay_ms", 100)?)),
            "bus" => Fault::Bus,
            "ill" => Fault::Ill,
            "fpe" => Fault::Fpe,
            "abort" => Fault::Abort,
            "panic" => Fault::Panic,
            "exit" => Fault::Exit(params.u64_or("exit_code", 3)?.min(255) as i32),
            "slow" => Fault::Slow(Duration::from_millis(params.u64_or("slow_ms", 1000)?)),
            "error" => Fault::Error,
            "misconfigured" => Fault::Misconfigured,
            "not_installed" => Fault::NotInstalled,
            "not_running" => Fault::NotRunning,
            "report" => Fault::Report(Duration::from_millis(params.u64_or("thread_delay_ms", 100)?)),
            other => {
                return Err(format!(
                    "parameter fault={other:?}: expected one of hang, segv, segv_thread, bus, ill, fpe, abort, panic, exit, slow, error, misconfigured, not_installed, not_running, report"
                ))
            }
        })
    }

    /// Does it, inside entry point `op` of a resource whose host is `host`.
    pub fn strike(self, op: Op, host: Host) -> Result<(), Error> {
        match self {
            Fault::Hang => hang(),
            Fault::Segv => segv(),
            Fault::SegvThread(delay) => segv_thread(delay),
            Fault::Bus => bus(),
            Fault::Ill => ill(),
            Fault::Fpe => fpe(),
            Fault::Abort => std::process::abort(),
            Fault::Panic => panic!("chaos: injected panic in {}", op.snake()),
            Fault::Exit(code) => std::process::exit(code),
            Fault::Slow(d) => {
                std::thread::sleep(d);
                Ok(())
            }
            Fault::Error => Err(format!("chaos: injected failure in {}", op.snake()).into()),
            Fault::Misconfigured => Err(Error::misconfigured(format!(
                "chaos: injected misconfiguration in {}",
                op.snake()
            ))),
            Fault::NotInstalled => Err(Error::not_installed(format!(
                "chaos: injected not installed in {}",
                op.snake()
            ))),
            Fault::NotRunning => Err(Error::not_running(format!(
                "chaos: injected not running in {}",
                op.snake()
            ))),
            Fault::Report(delay) => report_later(host, delay),
        }
    }
}

fn hang() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn segv() -> ! {
    // An address in the never-mapped first page: a real invalid write, not a raised signal.
    let target = std::hint::black_box(0x10usize) as *mut u8;
    // SAFETY: deliberately unsound: this plugin exists to crash its host with SIGSEGV.
    unsafe { std::ptr::write_volatile(target, 1) };
    unreachable!("the write above faults")
}

/// Starts a thread that nobody calls into (no call of the host runs on it) and that segfaults in
/// this plugin's own code once `delay` has passed; the entry point itself succeeds.
fn segv_thread(delay: Duration) -> Result<(), Error> {
    std::thread::Builder::new()
        .name("chaos-crasher".into())
        .spawn(move || {
            std::thread::sleep(delay);
            segv_here()
        })
        .map(|_| ())
        .map_err(|e| format!("chaos: cannot start the crashing thread: {e}").into())
}

/// Starts a thread of the plugin's own that, once `delay` has passed, logs its wall-clock instant
/// (`unix_us=…`, for a test to measure from) and reports the resource's failure through `host`.
fn report_later(host: Host, delay: Duration) -> Result<(), Error> {
    std::thread::Builder::new()
        .name("chaos-reporter".into())
        .spawn(move || {
            std::thread::sleep(delay);
            host.info(&format!(
                "chaos: reporting a failure at unix_us={}",
                unix_us()
            ));
            if !host.report_failure("chaos: injected failure report") {
                host.error("chaos: this host has no report_failure callback");
            }
        })
        .map(|_| ())
        .map_err(|e| format!("chaos: cannot start the reporting thread: {e}").into())
}

/// Microseconds since the Unix epoch, by the wall clock.
pub fn unix_us() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

/// A write to the never-mapped first page by an instruction in this function itself (not in a
/// library routine), so the faulting instruction address lies in this plugin's code.
#[inline(never)]
fn segv_here() -> ! {
    let target = std::hint::black_box(0x10usize);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: deliberately unsound: this plugin exists to crash its host with SIGSEGV.
    unsafe {
        std::arch::asm!("mov byte ptr [{0}], 1", in(reg) target)
    };
    #[cfg(target_arch = "aarch64")]
    // SAFETY: deliberately unsound: this plugin exists to crash its host with SIGSEGV.
    unsafe {
        std::arch::asm!("strb wzr, [{0}]", in(reg) target)
    };
    // SAFETY: deliberately unsound, as above, on other architectures.
    unsafe { std::ptr::write_volatile(target as *mut u8, 1) };
    unreachable!("the write above faults")
}

fn bus() -> ! {
    // A shared mapping of a file that is then truncated: touching the page raises SIGBUS.
    let path = std::env::temp_dir().join(format!("keelson-chaos-bus-{}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path);
    let _ = std::fs::remove_file(&path);
    let Ok(file) = file else { raise(libc::SIGBUS) };
    let _ = file.set_len(4096);
    use std::os::fd::AsRawFd;
    // SAFETY: deliberately unsound: map a page of the file, shrink the file under it, then read.
    unsafe {
        let page = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        );
        if page == libc::MAP_FAILED {
            raise(libc::SIGBUS);
        }
        let _ = file.set_len(0);
        std::ptr::read_volatile(page.cast::<u8>());
    }
    raise(libc::SIGBUS)
}

fn ill() -> ! {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: deliberately unsound: ud2 is the architecturally undefined instruction (SIGILL).
    unsafe {
        std::arch::asm!("ud2")
    };
    #[cfg(target_arch = "aarch64")]
    // SAFETY: deliberately unsound: udf is the permanently undefined instruction (SIGILL).
    unsafe {
        std::arch::asm!("udf #0")
    };
    raise(libc::SIGILL)
}

fn fpe() -> ! {
    #[cfg(target_arch = "x86_64")]
    {
        let zero = std::hint::black_box(0u64);
        // SAFETY: deliberately unsound: a hardware divide by zero (#DE, delivered as SIGFPE).
        unsafe {
            std::arch::asm!("xor edx, edx", "div {d}", d = in(reg) zero, inout("rax") 1u64 => _, out("rdx") _)
        };
    }
    // Other architectures do not trap on integer division by zero.
    raise(libc::SIGFPE)
}

/// Fallback for platforms or situations where the hardware fault cannot be produced.
fn raise(signal: i32) -> ! {
    // SAFETY: raising a signal in our own process.
    unsafe { libc::raise(signal) };
    unreachable!("a fatal signal with its default action ends the process")
}

//! Crash attribution: which resource and entry point the current thread is running, kept in a
//! thread-local that the async-signal-safe crash handler reads; which loaded plugin's code holds the
//! faulting instruction, from a table filled at load time; and the handler itself, which writes one
//! pre-sized `Crashed` frame to the alarm pipe. Not the signal plumbing (crates/sys::crash).

use keelson_proto::{encode_into, HostAlarm, PluginCode};
use keelson_sys::address_table::AddressTable;
use keelson_sys::crash::Fault;
use keelson_types::{Op, ResourceId};
use std::cell::Cell;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::OnceLock;

/// Where alarms go: the alarm pipe, set once at start-up and open until the process dies. Reading a
/// set `OnceLock` is one atomic load, so the crash handler may do it.
static ALARM: OnceLock<OwnedFd> = OnceLock::new();

/// Every loaded plugin's mapped segments, by slot (plugins.rs fills it at load; the handler reads it).
pub static PLUGIN_CODE: AddressTable = AddressTable::new();

/// Large enough for the biggest `Crashed` frame (about 60 bytes).
const ALARM_BUF_LEN: usize = 128;

thread_local! {
    /// (resource id, op as u8) of the call running on this thread; (0, 0) when idle. Const-initialised
    /// and without a destructor, so reading it from a signal handler touches no lazy state.
    static CURRENT: Cell<(u64, u8)> = const { Cell::new((0, 0)) };
}

/// Installs the fatal-signal handler that reports crashes on `alarm`.
pub fn install(alarm: OwnedFd) -> std::io::Result<()> {
    ALARM
        .set(alarm)
        .map_err(|_| std::io::Error::other("the crash handler is already installed"))?;
    keelson_sys::crash::install_handler(on_crash)
}

/// Marks this thread as running `op` on `resource` until the guard drops.
pub fn enter(resource: ResourceId, op: Op) -> CallGuard {
    CURRENT.with(|c| c.set((resource.0, op as u8)));
    CallGuard
}

/// Clears the thread's current call on drop.
pub struct CallGuard;

impl Drop for CallGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set((0, 0)));
    }
}

/// Runs inside the signal handler: no allocation, no locks, one `write(2)`.
fn on_crash(fault: &Fault) {
    let (resource, op) = CURRENT.with(|c| c.get());
    let in_plugin = PLUGIN_CODE.lookup(fault.pc).map(|hit| PluginCode {
        slot: hit.slot,
        offset: hit.offset as u64,
    });
    let alarm = HostAlarm::Crashed {
        resource: (resource != 0).then_some(ResourceId(resource)),
        op: Op::from_u8(op),
        signal: fault.signal,
        pc: fault.pc as u64,
        fault_addr: fault.addr as u64,
        in_plugin,
    };
    let mut buf = [0u8; ALARM_BUF_LEN];
    if let Ok(len) = encode_into(&alarm, &mut buf) {
        write_alarm(&buf[..len]);
    }
}

/// Writes a non-crash alarm (the deadlock monitor's) to the alarm pipe in one write.
pub fn raise_alarm(alarm: &HostAlarm) {
    let mut buf = [0u8; ALARM_BUF_LEN];
    if let Ok(len) = encode_into(alarm, &mut buf) {
        write_alarm(&buf[..len]);
    }
}

/// One raw write of an encoded alarm; nothing happens before `install`. Async-signal-safe.
fn write_alarm(frame: &[u8]) {
    if let Some(alarm) = ALARM.get() {
        keelson_sys::crash::write_raw(alarm.as_fd(), frame);
    }
}

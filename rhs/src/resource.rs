//! One open resource: its call thread, which runs OPEN, then serves calls from the resource's own
//! socket one at a time and, between them, the health checks the parent asked for, timing each under
//! the deadlock monitor and marking it for crash attribution, each through the resource's call gate
//! (gate.rs), which the fence shares. Not loading plugins (plugins.rs), not when checks are due
//! (polling.rs) and not deciding deadlines (the parent sends them).

use crate::callbacks::CallbackCtx;
use crate::fence::Fence;
use crate::gate::CallGate;
use crate::log::Logger;
use crate::monitor::{CallSlot, Monitor};
use crate::params::ParamBlock;
use crate::plugins::Plugin;
use crate::polling::Polling;
use crate::stats::StatsBoard;
use keelson_abi::{KeelsonResourceType, KEELSON_ERROR_BUF_LEN, KEELSON_INVALID, KEELSON_OK};
use keelson_proto::{
    write_frame, CallDone, FrameBuf, OpenResource, ResourceReply, ResourceRequest,
};
use keelson_types::{LogLevel, Op};
use std::ffi::{c_char, c_void, CStr};
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Waits for the next health check are rounded up to this many ms (a jiffy at HZ=250).
const WAIT_GRAIN_MS: u64 = 4;

/// The answer to an OPEN the host refuses before calling the plugin (bad type, bad parameters…).
pub fn refused_open(message: String) -> CallDone {
    CallDone {
        op: Op::Open,
        status: KEELSON_INVALID,
        message,
        elapsed_ns: 0,
    }
}

/// Everything a resource thread owns.
pub struct ResourceThread {
    pub spec: OpenResource,
    pub plugin: Arc<Plugin>,
    pub socket: UnixStream,
    pub monitor: Arc<Monitor>,
    pub logger: Logger,
    /// Where the statistics of the health checks this thread runs are posted.
    pub board: Arc<StatsBoard>,
    /// Where this resource's call gate is registered, so a fence can terminate it.
    pub fence: Arc<Fence>,
    /// Run VALIDATE on the parameters, answer it and end, instead of OPEN and serving calls.
    pub validate_only: bool,
}

/// The live resource: its type table, parameters (checked, defaulted) and call gate (which holds
/// the handle).
struct Live {
    table: KeelsonResourceType,
    params: ParamBlock,
    gate: Arc<CallGate>,
}

impl ResourceThread {
    /// Starts the thread. Errors before OPEN (unknown type, bad params) are answered on the socket.
    pub fn spawn(self) -> std::io::Result<()> {
        std::thread::Builder::new()
            .name(format!("res-{}", self.spec.resource.0))
            .stack_size(1 << 20)
            .spawn(move || self.run())
            .map(|_| ())
    }

    fn run(mut self) {
        if self.validate_only {
            return self.run_validate();
        }
        let _alt_stack = keelson_sys::crash::AltStack::install();
        crate::log::serve_resource_on_this_thread(self.spec.resource);
        let ctx = Box::new(
            CallbackCtx::new(
                self.spec.resource,
                self.spec.name.clone(),
                self.logger.clone(),
            )
            .placed(
                self.spec.node_name.as_deref(),
                self.spec.state_dir.as_deref(),
            ),
        );
        let slot = self
            .monitor
            .register(self.spec.resource, self.spec.name.clone());
        if let Some(mut live) = self.open(&slot, &ctx) {
            self.serve(&slot, &mut live, &ctx);
            self.fence.unregister(&live.gate);
        }
        self.monitor.unregister(&slot);
        drop(ctx);
    }

    /// The thread of a `Validate` request: VALIDATE alone, answered, then the thread ends.
    fn run_validate(self) {
        let _alt_stack = keelson_sys::crash::AltStack::install();
        crate::log::serve_resource_on_this_thread(self.spec.resource);
        let slot = self
            .monitor
            .register(self.spec.resource, self.spec.name.clone());
        self.validate_alone(&slot);
        self.monitor.unregister(&slot);
    }

    /// Runs VALIDATE on the parameters with nothing open (a gate of its own, not the fence's: there
    /// is no handle to terminate) and answers it.
    fn validate_alone(&self, slot: &CallSlot) {
        let refused = |message: String| CallDone {
            op: Op::Validate,
            ..refused_open(message)
        };
        let Some((table, info)) = self.plugin.resource_type(&self.spec.type_name) else {
            let message = format!(
                "plugin '{}' has no resource type '{}'",
                self.plugin.info.name, self.spec.type_name
            );
            self.reply(refused(message));
            return;
        };
        let table = *table;
        let params = match ParamBlock::prepare(&info.schema, &self.spec.params_json) {
            Ok(params) => params,
            Err(e) => {
                self.reply(refused(e));
                return;
            }
        };
        let gate = Arc::new(CallGate::new(
            self.spec.resource,
            self.spec.name.clone(),
            None,
            self.spec.deadline_ms,
        ));
        let live = Live {
            table,
            params,
            gate,
        };
        self.reply(self.validate(slot, &live, self.spec.deadline_ms));
    }

    /// Runs OPEN and answers it; the live resource on success.
    fn open(&mut self, slot: &CallSlot, ctx: &CallbackCtx) -> Option<Live> {
        let Some((table, info)) = self.plugin.resource_type(&self.spec.type_name) else {
            let known: Vec<&str> = self
                .plugin
                .info
                .types
                .iter()
                .map(|t| t.name.as_str())
                .collect();
            let message = format!(
                "plugin '{}' has no resource type '{}' (it has: {})",
                self.plugin.info.name,
                self.spec.type_name,
                known.join(", ")
            );
            self.reply(refused_open(message));
            return None;
        };
        let table = *table;
        let params = match ParamBlock::prepare(&info.schema, &self.spec.params_json) {
            Ok(params) => params,
            Err(e) => {
                self.reply(refused_open(e));
                return None;
            }
        };
        let Some(gate) = self.fence.register(
            self.spec.resource,
            self.spec.name.clone(),
            table.terminate,
            self.spec.deadline_ms,
        ) else {
            let message = "this host is fencing itself (its lease from rcm ran out)".to_string();
            self.reply(refused_open(message));
            return None;
        };
        let host = ctx.host();
        let mut got_handle = false;
        let done = self.timed(
            &gate,
            slot,
            Op::Open,
            self.spec.deadline_ms,
            |handle, err, cap| {
                let status = call_open(&table, &params, &host, handle, err, cap);
                if status != KEELSON_OK {
                    // A failed open's handle is not ours to use (nor for the fence to terminate).
                    *handle = std::ptr::null_mut();
                }
                got_handle = !handle.is_null();
                status
            },
        );
        let ok = done.status == KEELSON_OK && got_handle;
        if !ok {
            self.fence.unregister(&gate);
        }
        let done = if done.status == KEELSON_OK && !got_handle {
            CallDone {
                status: keelson_abi::KEELSON_ERROR,
                message: "open returned a NULL handle".into(),
                ..done
            }
        } else {
            done
        };
        self.reply(done);
        ok.then_some(Live {
            table,
            params,
            gate,
        })
    }

    /// Serves requests until CLOSE or until the parent drops the socket, and between them runs the
    /// health checks the parent asked for (`Poll`), on this thread, under the deadlock monitor.
    /// Each health verdict (a check run, a new plan) lets the plugin's next failure report through
    /// (`ctx`).
    fn serve(&self, slot: &CallSlot, live: &mut Live, ctx: &CallbackCtx) {
        let mut frames = FrameBuf::new();
        let mut health = Polling::new(self.spec.resource, self.board.clone());
        let mut last_deadline_ms = self.spec.deadline_ms;
        // The socket's receive timeout now (None: block): changed only when the next check moves.
        let mut timeout: Option<Duration> = None;
        let mut buf = [0u8; 512];
        loop {
            match frames.next_frame::<ResourceRequest>() {
                Ok(Some(ResourceRequest::Call { op, deadline_ms })) => {
                    // A close without a request (the parent dropped the socket) gets the latest
                    // deadline the parent sent; an asked-for close gets its own.
                    last_deadline_ms = deadline_ms;
                    if op == Op::Close {
                        health.stop(self.now_ms());
                        return self.close(slot, live, deadline_ms, true);
                    }
                    let done = self.call(slot, live, op, deadline_ms);
                    if !self.reply(done) {
                        return self.close(slot, live, last_deadline_ms, false);
                    }
                    continue;
                }
                Ok(Some(ResourceRequest::Poll { plan })) => {
                    if plan.is_some() {
                        ctx.health_verdict();
                    }
                    health.set(plan, self.now_ms());
                    continue;
                }
                Ok(None) => {}
                Err(e) => return self.bad_frame(slot, live, last_deadline_ms, &e.to_string()),
            }
            let now = self.now_ms();
            if let Some((op, deadline_ms)) = health.due(now) {
                let done = self.call(slot, live, op, deadline_ms);
                ctx.health_verdict();
                if let Some(failed) = health.done(op, &done, self.now_ms()) {
                    self.logger.control().send(&failed);
                }
                continue;
            }
            // Rounded up to the kernel's timer granularity: never early, and the same timeout from
            // one check to the next, so the socket option is seldom set again.
            let wait = health.next_due().map(|due| {
                Duration::from_millis(
                    due.saturating_sub(now)
                        .max(1)
                        .next_multiple_of(WAIT_GRAIN_MS),
                )
            });
            if wait != timeout {
                if let Err(e) = self.socket.set_read_timeout(wait) {
                    return self.bad_frame(slot, live, last_deadline_ms, &e.to_string());
                }
                timeout = wait;
            }
            match (&self.socket).read(&mut buf) {
                Ok(0) => {
                    health.stop(self.now_ms());
                    return self.close(slot, live, last_deadline_ms, false);
                }
                Ok(n) => frames.push(&buf[..n]),
                Err(e) if is_timeout(&e) => {}
                Err(e) => return self.bad_frame(slot, live, last_deadline_ms, &e.to_string()),
            }
        }
    }

    /// The socket failed or sent something undecodable: log it and close the resource.
    fn bad_frame(&self, slot: &CallSlot, live: &mut Live, deadline_ms: u64, error: &str) {
        self.logger.log(
            Some(self.spec.resource),
            LogLevel::Err,
            format!(
                "resource '{}': bad request frame ({error}); closing it",
                self.spec.name
            ),
        );
        self.close(slot, live, deadline_ms, false);
    }

    /// Milliseconds on this host's monotonic clock (the health schedule's clock).
    fn now_ms(&self) -> u64 {
        self.monitor.now_ms()
    }

    /// Runs one non-close entry point.
    fn call(&self, slot: &CallSlot, live: &Live, op: Op, deadline_ms: u64) -> CallDone {
        let table = &live.table;
        let entry = match op {
            Op::Online => table.online,
            Op::Offline => table.offline,
            Op::LooksAlive => table.looks_alive,
            Op::IsAlive => table.is_alive,
            Op::Terminate => table.terminate,
            Op::Validate => return self.validate(slot, live, deadline_ms),
            Op::Open | Op::Close => None,
        };
        let Some(entry) = entry else {
            let message = format!("{} is not a call on an open resource", op.upper());
            return CallDone {
                op,
                status: KEELSON_INVALID,
                message,
                elapsed_ns: 0,
            };
        };
        self.timed(&live.gate, slot, op, deadline_ms, |handle, err, cap| {
            // SAFETY: a v1 call entry point on the handle its own open returned; calls on one
            // resource never overlap (the gate's lock is held).
            unsafe { entry(*handle, err, cap) }
        })
    }

    /// Runs the type's `validate2` (parameters as JSON and pairs) when it has one, else its
    /// `validate` (JSON), on the resource's checked and defaulted parameters.
    fn validate(&self, slot: &CallSlot, live: &Live, deadline_ms: u64) -> CallDone {
        let (validate, validate2) = (live.table.validate, live.table.validate2);
        if validate.is_none() && validate2.is_none() {
            let message = "type has no validate entry point".to_string();
            return CallDone {
                op: Op::Validate,
                status: KEELSON_OK,
                message,
                elapsed_ns: 0,
            };
        }
        let (json, raw) = (live.params.json(), live.params.raw());
        self.timed(
            &live.gate,
            slot,
            Op::Validate,
            deadline_ms,
            |_, err, cap| match (validate2, validate) {
                // SAFETY: a validate2 entry point with a KeelsonParams whose strings the resource's
                // ParamBlock keeps alive, and an error buffer.
                (Some(validate2), _) => unsafe { validate2(&raw, err, cap) },
                // SAFETY: a v1 validate entry point with NUL-terminated params and an error buffer.
                (None, Some(validate)) => unsafe { validate(json, err, cap) },
                (None, None) => unreachable!("checked above"),
            },
        )
    }

    /// Runs CLOSE (timed like any call, within `deadline_ms`) and, if asked, answers it.
    fn close(&self, slot: &CallSlot, live: &mut Live, deadline_ms: u64, answer: bool) {
        let close = live.table.close.expect("checked at load");
        let done = self.timed(&live.gate, slot, Op::Close, deadline_ms, |handle, _, _| {
            let handle = std::mem::replace(handle, std::ptr::null_mut());
            // SAFETY: the handle came from this resource's open and, nulled in the gate, is not
            // used after close.
            unsafe { close(handle) };
            KEELSON_OK
        });
        if answer {
            self.reply(done);
        }
    }

    /// Runs `body` as call `op` through the resource's gate (with its handle), under the monitor
    /// and crash attribution, and measures it.
    fn timed(
        &self,
        gate: &CallGate,
        slot: &CallSlot,
        op: Op,
        deadline_ms: u64,
        body: impl FnOnce(&mut *mut c_void, *mut c_char, usize) -> i32,
    ) -> CallDone {
        let mut err = [0 as c_char; KEELSON_ERROR_BUF_LEN];
        let (status, elapsed_ns) = gate.call(deadline_ms, |handle| {
            let _attribution = crate::crash::enter(self.spec.resource, op);
            self.monitor.begin(slot, op, deadline_ms);
            let start = Instant::now();
            let status = body(handle, err.as_mut_ptr(), err.len() - 1);
            let elapsed_ns = start.elapsed().as_nanos() as u64;
            self.monitor.end(slot);
            (status, elapsed_ns)
        });
        let status = crate::status::normalise(self.spec.resource, &self.spec.name, op, status);
        let message = if status == KEELSON_OK {
            String::new()
        } else {
            // SAFETY: the buffer is zeroed and its last byte is never handed to the plugin, so it is
            // always NUL-terminated.
            unsafe { CStr::from_ptr(err.as_ptr()) }
                .to_string_lossy()
                .into_owned()
        };
        CallDone {
            op,
            status,
            message,
            elapsed_ns,
        }
    }

    /// Sends a reply; false when the parent is gone.
    fn reply(&self, done: CallDone) -> bool {
        write_frame(&mut &self.socket, &ResourceReply::CallDone(done)).is_ok()
    }
}

/// Calls the type's `open2` (parameters as JSON and pairs) when it has one, else its `open` (JSON).
fn call_open(
    table: &KeelsonResourceType,
    params: &ParamBlock,
    host: &keelson_abi::KeelsonHost,
    handle: &mut *mut c_void,
    err: *mut c_char,
    cap: usize,
) -> i32 {
    match (table.open2, table.open) {
        // SAFETY: an open2 entry point with valid arguments: a KeelsonParams whose strings outlive
        // the call, a host struct that outlives the resource (boxed ctx), a writable handle slot
        // and error buffer.
        (Some(open2), _) => unsafe { open2(&params.raw(), host, handle, err, cap) },
        // SAFETY: a v1 open entry point with the same guarantees and NUL-terminated JSON.
        (None, Some(open)) => unsafe { open(params.json(), host, handle, err, cap) },
        (None, None) => unreachable!("a type without open or open2 is refused at load"),
    }
}

/// A receive timeout ran out (the next health check is due), or a signal interrupted the wait.
fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock
            | std::io::ErrorKind::TimedOut
            | std::io::ErrorKind::Interrupted
    )
}

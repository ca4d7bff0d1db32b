//! Start-up and the control loop: adopt the inherited fds, install crash handling, exchange Hello,
//! start the lease watcher (with a lease socket), then serve LoadPlugin / Open / Shutdown until the
//! parent goes away. Not the per-resource calls (resource.rs) nor the lease (lease_watch.rs).

use crate::fence::Fence;
use crate::lease_watch::LeaseWatch;
use crate::log::{ControlWriter, Logger};
use crate::monitor::Monitor;
use crate::plugins::Registry;
use crate::resource::ResourceThread;
use crate::stats::StatsBoard;
use crate::{Options, EXIT_PROTOCOL};
use keelson_proto::{
    FrameBuf, Hello, HostReply, HostRequest, OpenResource, ProtoError, PROTOCOL_VERSION,
};
use keelson_types::LogLevel;
use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

/// The control loop's state.
struct Control {
    socket: UnixStream,
    frames: FrameBuf,
    /// Descriptors received and not yet claimed by an `Open` frame, in arrival order.
    fds: VecDeque<OwnedFd>,
    registry: Registry,
    monitor: Arc<Monitor>,
    /// Statistics of the health checks the resource threads run, for the reporter thread.
    board: Arc<StatsBoard>,
    /// Every open resource's call gate, for the fence.
    fence: Arc<Fence>,
    logger: Logger,
}

/// Runs the host until the parent closes the control socket or asks for shutdown.
pub fn run(opts: Options) -> Result<(), String> {
    // SAFETY: fds 3 and 4 are inherited from rcm (child::prepare) and nothing else here owns them.
    let control = unsafe { keelson_sys::process::adopt_fd(opts.control_fd) }.map_err(|e| {
        format!(
            "no control socket on fd {} ({e}); keelson-rhs is started by keelson-rcm",
            opts.control_fd
        )
    })?;
    // SAFETY: as above.
    let alarm = unsafe { keelson_sys::process::adopt_fd(opts.alarm_fd) }
        .map_err(|e| format!("no alarm pipe on fd {} ({e})", opts.alarm_fd))?;
    let lease = match opts.lease_fd {
        // SAFETY: as above: the parent placed it there for us alone.
        Some(fd) => Some(
            unsafe { keelson_sys::process::adopt_fd(fd) }
                .map_err(|e| format!("no lease socket on fd {fd} ({e})"))?,
        ),
        None => None,
    };
    let _ = keelson_sys::process::raise_fd_limit();
    if !opts.core_dumps {
        let _ = keelson_sys::process::disable_core_dumps();
    }
    crate::crash::install(alarm).map_err(|e| format!("cannot install crash handler: {e}"))?;
    let _main_alt_stack = keelson_sys::crash::AltStack::install();

    let socket = UnixStream::from(control);
    let writer = ControlWriter::new(socket.try_clone().map_err(|e| e.to_string())?);
    let logger = Logger::new(writer, opts.log_stderr)?;
    let monitor = Monitor::new(logger.clone());
    let board = Arc::new(StatsBoard::default());
    let fence = Fence::new(logger.clone());
    let mut control = Control {
        socket,
        frames: FrameBuf::new(),
        fds: VecDeque::new(),
        registry: Registry::new(logger.clone()),
        monitor: monitor.clone(),
        board: board.clone(),
        fence: fence.clone(),
        logger: logger.clone(),
    };
    control.handshake()?;
    if let Some(lease) = lease {
        let watch = LeaseWatch {
            socket: std::os::unix::net::UnixDatagram::from(lease),
            fence,
            logger: logger.clone(),
        };
        watch
            .spawn()
            .map_err(|e| format!("cannot start the lease watcher: {e}"))?;
    }
    std::thread::Builder::new()
        .name("deadlock-monitor".into())
        .spawn(move || monitor.run())
        .map_err(|e| format!("cannot start the deadlock monitor: {e}"))?;
    let control_writer = logger.control().clone();
    std::thread::Builder::new()
        .name("health-stats".into())
        .spawn(move || board.run(control_writer))
        .map_err(|e| format!("cannot start the statistics reporter: {e}"))?;
    control.serve()
}

impl Control {
    /// Sends our Hello and checks the parent's.
    fn handshake(&mut self) -> Result<(), String> {
        let hello = Hello {
            protocol_version: PROTOCOL_VERSION,
            pid: std::process::id(),
        };
        self.logger.control().send(&HostReply::Hello(hello));
        match self.next_request()? {
            Some(HostRequest::Hello(h)) if h.protocol_version == PROTOCOL_VERSION => Ok(()),
            Some(HostRequest::Hello(h)) => Err(format!(
                "parent speaks protocol version {}, this host speaks {PROTOCOL_VERSION}",
                h.protocol_version
            )),
            Some(other) => Err(format!("expected Hello from the parent, got {other:?}")),
            None => Err("parent closed the control socket before Hello".into()),
        }
    }

    fn serve(&mut self) -> Result<(), String> {
        loop {
            let request = match self.next_request() {
                Ok(Some(request)) => request,
                // The parent is gone: nothing may outlive it.
                Ok(None) => keelson_sys::process::exit_now(0),
                Err(e) => {
                    self.logger
                        .log(None, LogLevel::Err, format!("control channel broken: {e}"));
                    keelson_sys::process::exit_now(EXIT_PROTOCOL);
                }
            };
            match request {
                HostRequest::LoadPlugin { req, path } => {
                    let result = self.registry.get_or_load(&path).map(|p| p.info.clone());
                    self.logger
                        .control()
                        .send(&HostReply::PluginLoaded { req, result });
                }
                HostRequest::Open(spec) => self.open(spec, false),
                HostRequest::Validate(spec) => self.open(spec, true),
                HostRequest::Shutdown => keelson_sys::process::exit_now(0),
                HostRequest::Hello(_) => self.refuse("Hello sent twice".into()),
            }
        }
    }

    /// Starts a resource thread with the fd that came with the Open (or Validate) frame.
    fn open(&mut self, spec: OpenResource, validate_only: bool) {
        let Some(fd) = self.fds.pop_front() else {
            return self.refuse(format!(
                "Open of resource '{}' came without its socket",
                spec.name
            ));
        };
        let socket = UnixStream::from(fd);
        if spec.resource.0 == 0 {
            return answer_open_error(socket, "resource id 0 is reserved".into());
        }
        let plugin = match self.registry.get_or_load(&spec.plugin_path) {
            Ok(plugin) => plugin,
            Err(message) => return answer_open_error(socket, message),
        };
        let thread = ResourceThread {
            spec,
            plugin,
            socket,
            monitor: self.monitor.clone(),
            logger: self.logger.clone(),
            board: self.board.clone(),
            fence: self.fence.clone(),
            validate_only,
        };
        if let Err(e) = thread.spawn() {
            self.logger.log(
                None,
                LogLevel::Err,
                format!("cannot start a resource thread: {e}"),
            );
        }
    }

    fn refuse(&self, message: String) {
        self.logger.control().send(&HostReply::Refused { message });
    }

    /// The next complete request, reading (and collecting passed fds) as needed. None at EOF.
    fn next_request(&mut self) -> Result<Option<HostRequest>, String> {
        loop {
            match self.frames.next_frame::<HostRequest>() {
                Ok(Some(request)) => return Ok(Some(request)),
                Ok(None) => {}
                // A well-delimited but undecodable frame was skipped; the stream is still in step.
                Err(ProtoError::Malformed(e)) => {
                    self.refuse(format!("malformed request: {e}"));
                    continue;
                }
                Err(e) => return Err(e.to_string()),
            }
            let mut buf = [0u8; 16 * 1024];
            let (n, fds) = keelson_sys::fdpass::recv_with_fds(&self.socket, &mut buf)
                .map_err(|e| format!("control socket: {e}"))?;
            if n == 0 {
                return if self.frames.has_partial() {
                    Err("control socket closed in the middle of a frame".into())
                } else {
                    Ok(None)
                };
            }
            self.fds.extend(fds);
            self.frames.push(&buf[..n]);
        }
    }
}

/// Answers a failed Open on the resource's own socket (as a failed OPEN call) and drops it.
fn answer_open_error(mut socket: UnixStream, message: String) {
    let reply = keelson_proto::ResourceReply::CallDone(crate::resource::refused_open(message));
    let _ = keelson_proto::write_frame(&mut socket, &reply);
}

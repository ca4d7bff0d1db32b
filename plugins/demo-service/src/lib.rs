//! The `demo-service` resource type, for `keelson demo cluster`: while Online it listens on TCP
//! `port` (parameter, default 7070) on every address of its node's network namespace and answers
//! each connection with one line naming the address it was reached on, its host's pid and the
//! instant it came Online (ms since the Unix epoch), then closes it. A client that polls every
//! node's address therefore sees which node serves it, whether that instance restarted, and how
//! long it was gone. LooksAlive checks that the accept thread runs; IsAlive connects to the port
//! over loopback and reads the line. Not a real application and not a floating address: the
//! client finds the service by trying each node.
#![forbid(unsafe_code)]

use keelson_plugin::{export_plugin, Error, Host, Params, Resource};
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const KNOWN: [&str; 1] = ["port"];
const DEFAULT_PORT: u64 = 7070;
/// How long IsAlive waits for its own answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// The first words of every answer.
pub const GREETING: &str = "keelson demo-service";

fn port(params: &Params) -> Result<u16, String> {
    params.reject_unknown(&KNOWN)?;
    let port = params.u64_or("port", DEFAULT_PORT)?;
    u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("port {port}: it must be 1..=65535"))
}

/// The accept loop of one Online period; stopping it wakes it with a connection of its own.
struct Server {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
    port: u16,
}

impl Server {
    fn start(port: u16, online_since_ms: u128) -> Result<Server, String> {
        let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))
            .map_err(|e| format!("cannot listen on TCP port {port}: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let halt = stop.clone();
        let pid = std::process::id();
        let thread = std::thread::Builder::new()
            .name("demo-service".into())
            .spawn(move || serve(&listener, &halt, pid, online_since_ms))
            .map_err(|e| format!("cannot start the accept thread: {e}"))?;
        Ok(Server { stop, thread, port })
    }

    fn running(&self) -> bool {
        !self.thread.is_finished()
    }

    /// Stops accepting and closes the port before returning.
    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept; if the thread already ended, nobody listens and that is fine.
        let wake = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let _woke = TcpStream::connect_timeout(&wake, CHECK_TIMEOUT);
        // A panicked accept thread is gone either way, and its listener with it.
        let _joined = self.thread.join();
    }
}

fn serve(listener: &TcpListener, stop: &AtomicBool, pid: u32, since_ms: u128) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(mut conn) = conn else { continue };
        let local = conn
            .local_addr()
            .map_or_else(|_| "?".to_string(), |a| a.ip().to_string());
        let line = format!("{GREETING} at {local} pid {pid} online since {since_ms}\n");
        // A client that went away is its own business.
        if conn.write_all(line.as_bytes()).is_err() {
            continue;
        }
    }
}

/// One demo service.
pub struct DemoService {
    port: u16,
    server: Option<Server>,
    host: Host,
}

impl DemoService {
    fn stop_server(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
    }
}

impl Resource for DemoService {
    const TYPE_NAME: &'static std::ffi::CStr = c"demo-service";

    fn validate(params: &Params) -> Result<(), Error> {
        port(params).map(|_| ()).map_err(Error::from)
    }

    fn open(params: &Params, host: Host) -> Result<Self, Error> {
        Ok(DemoService {
            port: port(params)?,
            server: None,
            host,
        })
    }

    fn online(&mut self) -> Result<(), Error> {
        if self.server.is_none() {
            let since = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            self.server = Some(Server::start(self.port, since)?);
        }
        self.host
            .info(&format!("demo-service listening on TCP port {}", self.port));
        Ok(())
    }

    fn offline(&mut self) -> Result<(), Error> {
        self.stop_server();
        self.host
            .info(&format!("demo-service closed TCP port {}", self.port));
        Ok(())
    }

    fn looks_alive(&mut self) -> Result<(), Error> {
        match &self.server {
            Some(s) if s.running() => Ok(()),
            Some(_) => Err("demo-service: the accept thread has stopped".into()),
            None => Err("demo-service: not listening".into()),
        }
    }

    fn is_alive(&mut self) -> Result<(), Error> {
        self.looks_alive()?;
        let line = ask(SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)))?;
        if line.starts_with(GREETING) {
            Ok(())
        } else {
            Err(format!("demo-service: unexpected answer {line:?}").into())
        }
    }

    fn terminate(&mut self) -> Result<(), Error> {
        self.stop_server();
        Ok(())
    }
}

impl Drop for DemoService {
    fn drop(&mut self) {
        self.stop_server();
    }
}

/// Connects to `addr` and reads the service's line (without its newline).
pub fn ask(addr: SocketAddr) -> Result<String, String> {
    let conn = TcpStream::connect_timeout(&addr, CHECK_TIMEOUT)
        .map_err(|e| format!("demo-service: cannot connect to {addr}: {e}"))?;
    conn.set_read_timeout(Some(CHECK_TIMEOUT))
        .map_err(|e| format!("demo-service: {addr}: {e}"))?;
    let mut line = String::new();
    BufReader::new(conn)
        .read_line(&mut line)
        .map_err(|e| format!("demo-service: no answer from {addr}: {e}"))?;
    Ok(line.trim_end().to_string())
}

export_plugin!(name: c"demo-service", types: [DemoService]);

#[cfg(test)]
mod tests {
    use super::*;

    fn params(json: &str) -> Params {
        Params::parse(json).unwrap()
    }

    #[test]
    fn the_port_is_checked() {
        assert!(DemoService::validate(&params("{}")).is_ok());
        assert!(DemoService::validate(&params(r#"{"port":"7071"}"#)).is_ok());
        for (json, want) in [
            (r#"{"port":"0"}"#, "port 0"),
            (r#"{"port":"70000"}"#, "port 70000"),
            (r#"{"port":"x"}"#, "port"),
            (r#"{"colour":"red"}"#, "'colour'"),
        ] {
            let e = DemoService::validate(&params(json)).unwrap_err();
            assert!(e.contains(want), "{e} (wanted {want})");
        }
    }

    /// A free TCP port on loopback (bound, then released).
    fn free_port() -> u16 {
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[test]
    fn it_answers_only_while_online_and_names_its_instance() {
        let port = free_port();
        let json = format!(r#"{{"port":"{port}"}}"#);
        let mut r = DemoService::open(&params(&json), Host::detached()).unwrap();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        assert!(ask(addr).is_err(), "nothing listens before online");
        assert!(r.looks_alive().is_err());
        r.online().unwrap();
        let first = ask(addr).unwrap();
        assert!(
            first.starts_with(&format!(
                "{GREETING} at 127.0.0.1 pid {}",
                std::process::id()
            )),
            "{first}"
        );
        r.looks_alive().unwrap();
        r.is_alive().unwrap();
        assert_eq!(ask(addr).unwrap(), first, "the same instance answers");
        r.offline().unwrap();
        assert!(ask(addr).is_err(), "the port is closed once offline");
        assert!(r.is_alive().is_err());
        r.online().unwrap();
        assert!(ask(addr).is_ok(), "online again");
        r.terminate().unwrap();
        assert!(ask(addr).is_err(), "terminate closes the port");
    }
}

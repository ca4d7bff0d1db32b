//! A small TCP echo service for generic-app's tests (tests/t34_generic_app.rs): listens on
//! 127.0.0.1:PORT, echoes every line back on each connection, writes "tick N" to stdout every
//! 50 ms (so its log file keeps growing), and on a line "CLOSE" from any client stops accepting
//! new connections (closes its listener) while it keeps running and keeps serving the open ones.
//! Not a product: a real process for the type to start, adopt, probe and stop.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn main() {
    let port: u16 = match std::env::args().nth(1).and_then(|p| p.parse().ok()) {
        Some(port) => port,
        None => {
            eprintln!("usage: generic-app-echo PORT");
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("generic-app-echo: cannot listen on 127.0.0.1:{port}: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "listening on 127.0.0.1:{port} as pid {}",
        std::process::id()
    );
    let ticker = std::thread::spawn(|| {
        for n in 0u64.. {
            println!("tick {n}");
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let closing = Arc::new(AtomicBool::new(false));
    for stream in listener.incoming() {
        if closing.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let closing = closing.clone();
        std::thread::spawn(move || serve(stream, &closing, port));
    }
    drop(listener);
    println!("listener closed");
    let _ticks_forever = ticker.join();
}

fn serve(stream: TcpStream, closing: &AtomicBool, port: u16) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { return };
        if line == "CLOSE" {
            closing.store(true, Ordering::SeqCst);
            // Wakes the accept loop, which sees the flag and closes the listener.
            let _woken = TcpStream::connect(("127.0.0.1", port));
        }
        if writeln!(writer, "{line}").is_err() {
            return;
        }
    }
}

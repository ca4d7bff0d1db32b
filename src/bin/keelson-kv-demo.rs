//! A small durable TCP service for the end-to-end group test (t36): `W <text>` appends one line to
//! its file and fsyncs it before answering `OK <lines>`; `R` answers every line, then `.`. One
//! thread per connection. Not a product: no auth, no limits beyond a line length, no concurrency
//! control beyond a mutex around the file.
//!
//! Usage: keelson-kv-demo --listen ADDR:PORT --file PATH

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

const MAX_LINE: u64 = 4096;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (listen, path) = match parse(&args[1..]) {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "keelson-kv-demo: {e}\nusage: keelson-kv-demo --listen ADDR:PORT --file PATH"
            );
            std::process::exit(2);
        }
    };
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(&path)
        .unwrap_or_else(|e| die(&format!("{path}: {e}")));
    let listener = TcpListener::bind(&listen).unwrap_or_else(|e| die(&format!("{listen}: {e}")));
    println!("keelson-kv-demo: serving {path} on {listen}");
    let file = Arc::new(Mutex::new(file));
    for stream in listener.incoming() {
        match stream {
            Ok(s) => {
                let file = file.clone();
                std::thread::spawn(move || serve(s, &file));
            }
            Err(e) => eprintln!("keelson-kv-demo: accept: {e}"),
        }
    }
}

fn parse(args: &[String]) -> Result<(String, String), String> {
    let (mut listen, mut file) = (None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let value = it.next().ok_or(format!("{a} needs a value"))?.clone();
        match a.as_str() {
            "--listen" => listen = Some(value),
            "--file" => file = Some(value),
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    Ok((
        listen.ok_or("--listen is required")?,
        file.ok_or("--file is required")?,
    ))
}

fn die(msg: &str) -> ! {
    eprintln!("keelson-kv-demo: {msg}");
    std::process::exit(1)
}

fn serve(stream: TcpStream, file: &Mutex<File>) {
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut lines = BufReader::new(stream.take(u64::MAX));
    loop {
        let mut line = String::new();
        match lines.by_ref().take(MAX_LINE).read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let answer = match answer(line.trim_end_matches('\n'), file) {
            Ok(a) => a,
            Err(e) => format!("ERR {e}\n"),
        };
        if out.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn answer(request: &str, file: &Mutex<File>) -> std::io::Result<String> {
    let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(text) = request.strip_prefix("W ") {
        f.write_all(format!("{text}\n").as_bytes())?;
        f.sync_data()?;
        f.seek(SeekFrom::Start(0))?;
        let count = BufReader::new(&*f).lines().count();
        return Ok(format!("OK {count}\n"));
    }
    if request == "R" {
        f.seek(SeekFrom::Start(0))?;
        let mut all = String::new();
        f.read_to_string(&mut all)?;
        return Ok(format!("{all}.\n"));
    }
    Ok(format!("ERR unknown request '{request}'\n"))
}

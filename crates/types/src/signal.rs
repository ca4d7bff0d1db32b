//! Names of the signals keelson reports when a host dies. Not signal handling: that is crates/sys.

/// `SIGSEGV`, `SIGABRT`, … for the Linux signal numbers (identical on x86_64 and aarch64);
/// `SIG?` for any other number.
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        19 => "SIGSTOP",
        _ => "SIG?",
    }
}

//! The command line's diagnostics: `tracing` events and spans (one span per command) written to
//! stderr only when RUST_LOG asks for them (`RUST_LOG=debug keelson status`); silent otherwise,
//! because a command's output and its one `keelson: …` error line are its interface. Not the node
//! service's log (rcm's cluster.log).

use tracing_subscriber::filter::EnvFilter;

/// Installs the stderr subscriber with the filter `spec` (RUST_LOG syntax; empty: nothing shown).
pub fn install(spec: &str) -> Result<(), String> {
    let filter = filter(spec)?;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_ansi(false)
        .try_init()
        .map_err(|e| format!("cannot install the diagnostics subscriber: {e}"))
}

/// RUST_LOG-style `spec` over a default of nothing; a bad one is named in the error.
fn filter(spec: &str) -> Result<EnvFilter, String> {
    EnvFilter::builder()
        .with_regex(false)
        .parse(format!("off,{spec}"))
        .map_err(|e| format!("invalid RUST_LOG '{spec}': {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_shown_unless_asked_and_a_bad_filter_is_named() {
        assert_eq!(filter("").unwrap().to_string(), "off");
        assert_eq!(filter("debug").unwrap().to_string(), "debug");
        let err = filter("keelson_ctl=chatty").unwrap_err();
        assert!(
            err.starts_with("invalid RUST_LOG 'keelson_ctl=chatty'"),
            "{err}"
        );
    }
}

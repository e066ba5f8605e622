//! Logging through `tracing`, to stderr. `RUST_LOG` wins over `-v`.
use tracing_subscriber::EnvFilter;

/// Sets up the global subscriber: warnings by default, `-v` info, `-vv` debug, `-vvv` trace
/// (trace shows APDUs in hex, with secrets redacted).
pub fn init(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

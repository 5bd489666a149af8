//! One module per verb of `sandboxctl`.

/// `sandboxctl run`: run a command in a new sandbox and stream its output.
pub mod run;
/// `sandboxctl status`: the daemon's state.
pub mod status;

/// How sandboxctl names itself in its hello to the daemon.
pub const CLIENT_NAME: &str = concat!("sandboxctl ", env!("CARGO_PKG_VERSION"));

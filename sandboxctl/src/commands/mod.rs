//! One module per verb of `sandboxctl`, and the connection the long-lived verbs share.

use std::fmt;
use std::path::{Path, PathBuf};

use agent_sdk::Client;

/// `sandboxctl cp`: copy files between the host and a sandbox.
pub mod cp;
/// `sandboxctl create`: create a long-lived sandbox.
pub mod create;
/// `sandboxctl exec`: run a command in a long-lived sandbox.
pub mod exec;
/// `sandboxctl export-bundle`: a sandbox as an OCI bundle for runc and crun.
pub mod export_bundle;
/// `sandboxctl inspect`: one sandbox as JSON.
pub mod inspect;
/// `sandboxctl kill`: signal an exec or a whole sandbox.
pub mod kill;
/// `sandboxctl logs`: an exec's output, replayed (and followed).
pub mod logs;
/// `sandboxctl ls`: the caller's sandboxes.
pub mod ls;
/// `sandboxctl pause`: freeze a sandbox.
pub mod pause;
/// `sandboxctl policy`: validate a policy file, show a policy.
pub mod policy;
/// `sandboxctl resume`: thaw a sandbox.
pub mod resume;
/// `sandboxctl rm`: destroy sandboxes.
pub mod rm;
/// `sandboxctl run`: run a command in a new sandbox and stream its output.
pub mod run;
/// `sandboxctl state`: a sandbox's OCI runtime state.
pub mod state;
/// `sandboxctl stats`: a sandbox's resource usage.
pub mod stats;
/// `sandboxctl status`: the daemon's state.
pub mod status;

/// How sandboxctl names itself in its hello to the daemon.
pub const CLIENT_NAME: &str = concat!("sandboxctl ", env!("CARGO_PKG_VERSION"));

/// No daemon answers at the socket. The long-lived verbs never start an embedded one: their
/// sandboxes must outlive sandboxctl.
#[derive(Debug)]
pub struct NoDaemon {
    socket: PathBuf,
}

impl fmt::Display for NoDaemon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no sandboxd answers at {}: long-lived sandboxes need a running daemon \
             (start sandboxd, or point --socket or SANDBOXD_SOCKET at its socket)",
            self.socket.display()
        )
    }
}

impl std::error::Error for NoDaemon {}

/// Connects to the daemon at `socket`; a missing daemon is a [`NoDaemon`] error.
pub async fn connect(socket: &Path) -> anyhow::Result<Client> {
    match Client::connect_as(socket, CLIENT_NAME).await {
        Ok(client) => Ok(client),
        Err(err) if err.is_no_daemon() => Err(NoDaemon {
            socket: socket.to_path_buf(),
        }
        .into()),
        Err(err) => Err(err.into()),
    }
}

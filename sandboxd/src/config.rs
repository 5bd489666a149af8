//! The daemon's configuration: command-line flags with production defaults.

use std::path::PathBuf;

use clap::Parser;

/// `sandboxd` flags. Every limit on what clients may ask for is explicit here.
#[derive(Debug, Clone, Parser)]
#[command(name = "sandboxd", version, about = "Linux sandbox daemon")]
pub struct Config {
    /// Unix socket to listen on.
    #[arg(
        long,
        env = "SANDBOXD_SOCKET",
        default_value = "/run/sandboxd/sandboxd.sock"
    )]
    pub socket: PathBuf,
    /// Directory for the daemon's state (lock file, root assembly point).
    #[arg(long, default_value = "/var/lib/sandboxd")]
    pub state_dir: PathBuf,
    /// Group allowed to use the socket (mode 0660); root-only (0600) if the group does not exist.
    #[arg(long, default_value = "sandboxd")]
    pub group: String,
    /// Parent cgroup of every sandbox's cgroup, relative to the hierarchy root; owned by this
    /// daemon alone (left-over children are removed at start).
    #[arg(long, default_value = "sandboxd")]
    pub cgroup_parent: String,
    /// First host uid/gid of the user-namespace ranges; sandbox slot N maps its ids 0..65536
    /// to `uid_base + N * 65536`.
    #[arg(long, default_value_t = 1 << 30)]
    pub uid_base: u32,
    /// Most sandboxes alive at once (also the number of uid ranges).
    #[arg(long, default_value_t = 256)]
    pub max_sandboxes: u32,
    /// Most client connections at once.
    #[arg(long, default_value_t = 256)]
    pub max_connections: usize,
    /// Most concurrent runs on one connection.
    #[arg(long, default_value_t = 64)]
    pub max_runs_per_connection: usize,
    /// Largest frame accepted from a client, in bytes.
    #[arg(long, default_value_t = sandbox_proto::MAX_FRAME_LEN)]
    pub max_frame: usize,
    /// Directory of policy files (`NAME.toml`). When it exists, only its policies can be used;
    /// when it does not, the policies shipped in the binary (default, strict, ci, browser,
    /// network-allowlist).
    #[arg(long, default_value = "/etc/sandboxd/policies")]
    pub policy_dir: PathBuf,
    /// The policy of requests that name none.
    #[arg(long, default_value = "default")]
    pub default_policy: String,
    /// Most long-lived sandboxes one non-root uid may have at once.
    #[arg(long, default_value_t = 32)]
    pub max_sandboxes_per_uid: usize,
    /// Most execs one non-root uid may run at once, over all its sandboxes.
    #[arg(long, default_value_t = 256)]
    pub max_execs_per_uid: usize,
    /// Where exec output logs live (runtime data, written on every exec: keep it on tmpfs).
    /// Default: `logs/` beside the socket (under /run on a systemd host).
    #[arg(long)]
    pub exec_log_dir: Option<PathBuf>,
    /// Size cap of each exec's output log, in bytes (output past it is dropped and marked).
    #[arg(long, default_value_t = 16 << 20)]
    pub exec_log_cap: u64,
}

impl Config {
    /// Ids per sandbox user namespace.
    pub const IDS_PER_SANDBOX: u32 = 65536;

    /// Checks the flags against each other.
    pub fn validate(&self) -> Result<(), String> {
        // One range past the sandboxes' own: the export range of OCI bundles.
        let top = u64::from(self.uid_base)
            + (u64::from(self.max_sandboxes) + 1) * u64::from(Self::IDS_PER_SANDBOX);
        if self.uid_base < Self::IDS_PER_SANDBOX || top > u64::from(u32::MAX - 1) {
            return Err(format!(
                "--uid-base {} with --max-sandboxes {} leaves the valid uid range",
                self.uid_base, self.max_sandboxes
            ));
        }
        if self.max_sandboxes == 0 {
            return Err("--max-sandboxes must be at least 1".into());
        }
        if self.max_frame < 4096 || self.max_frame > 64 << 20 {
            return Err("--max-frame must be between 4 KiB and 64 MiB".into());
        }
        if self.cgroup_parent.is_empty()
            || self
                .cgroup_parent
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(format!(
                "--cgroup-parent {:?} is not a relative cgroup path",
                self.cgroup_parent
            ));
        }
        Ok(())
    }

    /// Where exec logs live: `--exec-log-dir`, else `logs/` beside the socket.
    pub fn exec_log_dir(&self) -> PathBuf {
        self.exec_log_dir.clone().unwrap_or_else(|| {
            self.socket
                .parent()
                .unwrap_or(std::path::Path::new("/run/sandboxd"))
                .join("logs")
        })
    }

    /// Where a sandbox's root filesystem is assembled (inside its own mount namespace).
    pub fn root_dir(&self) -> PathBuf {
        self.state_dir.join("root")
    }
}

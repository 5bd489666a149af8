//! The sandbox flags `run` and `create` share (limits, root filesystem, mounts, environment,
//! hostname), their parsers, and how they fill an SDK builder.

use std::path::PathBuf;

use agent_sdk::{FsMode, Mount, NetMode, Rootfs, SandboxBuilder};
use clap::Args;

use crate::units::parse_size;

/// Flags describing a sandbox.
#[derive(Debug, Args)]
pub struct SandboxFlags {
    /// Policy: a name the daemon knows (default, strict, ci, browser, ...) or a policy file
    /// (a path with a '/'; root only) [default: the daemon's default policy]
    #[arg(long, value_name = "NAME|FILE")]
    pub policy: Option<String>,
    /// Filesystem mode, at most the policy's
    #[arg(long, value_name = "MODE", value_parser = parse_fs_mode)]
    pub filesystem: Option<FsMode>,
    /// Network mode, at most the policy's
    #[arg(long, value_name = "MODE", value_parser = parse_net_mode)]
    pub network: Option<NetMode>,
    /// Keep this capability (repeatable; each must be allowed by the policy)
    #[arg(long = "cap", value_name = "CAP_NAME")]
    pub caps: Vec<String>,
    /// Memory limit: bytes, or k/M/G (binary units; KiB/MiB/GiB also accepted)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub memory: Option<u64>,
    /// Most processes and threads at once
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub pids: Option<u64>,
    /// CPU quota as a number of CPUs (0.5 = half of one)
    #[arg(long, value_name = "F", value_parser = parse_cpus)]
    pub cpus: Option<f64>,
    /// Size of the /workspace tmpfs
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub workspace_size: Option<u64>,
    /// Swap on top of the memory limit
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub swap: Option<u64>,
    /// Size of the /tmp tmpfs
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub tmp_size: Option<u64>,
    /// Size of the /dev/shm tmpfs
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub shm_size: Option<u64>,
    /// Most open files per process
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub open_files: Option<u64>,
    /// Root filesystem: the host's system folders or a directory [default: the policy's]
    #[arg(long, value_name = "host|PATH", value_parser = parse_rootfs)]
    pub rootfs: Option<Rootfs>,
    /// Bind host folder H at S in the sandbox, read-only with :ro (repeatable)
    #[arg(long = "mount", value_name = "H:S[:ro]", value_parser = parse_mount)]
    pub mounts: Vec<Mount>,
    /// Set an environment variable (repeatable)
    #[arg(long = "env", value_name = "K=V", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Hostname in the sandbox [default: the sandbox id]
    #[arg(long, value_name = "H")]
    pub hostname: Option<String>,
}

impl SandboxFlags {
    /// Sets every flag given on `b`; reads a policy file named by path.
    pub fn apply<B: SandboxBuilder>(&self, mut b: B) -> anyhow::Result<B> {
        if let Some(p) = &self.policy {
            b = if p.contains('/') {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| anyhow::anyhow!("reading policy file {p}: {e}"))?;
                b.policy_text(p.clone(), text)
            } else {
                b.policy(p.clone())
            };
        }
        if let Some(mode) = self.filesystem {
            b = b.filesystem(mode);
        }
        if let Some(mode) = self.network {
            b = b.network(mode);
        }
        if !self.caps.is_empty() {
            b = b.capabilities(self.caps.iter().cloned());
        }
        if let Some(bytes) = self.swap {
            b = b.swap(bytes);
        }
        if let Some(bytes) = self.tmp_size {
            b = b.tmp_size(bytes);
        }
        if let Some(bytes) = self.shm_size {
            b = b.shm_size(bytes);
        }
        if let Some(n) = self.open_files {
            b = b.open_files(n);
        }
        if let Some(bytes) = self.memory {
            b = b.memory(bytes);
        }
        if let Some(n) = self.pids {
            b = b.pids(n);
        }
        if let Some(cpus) = self.cpus {
            b = b.cpus(cpus);
        }
        if let Some(bytes) = self.workspace_size {
            b = b.workspace_size(bytes);
        }
        b = match &self.rootfs {
            None | Some(Rootfs::Policy) => b,
            Some(Rootfs::Host) => b.rootfs_host(),
            Some(Rootfs::Path { path }) => b.rootfs_path(path.clone()),
        };
        for m in &self.mounts {
            b = b.mount(m.host.clone(), m.sandbox.clone(), m.read_only);
        }
        for (key, value) in &self.env {
            b = b.env(key, value);
        }
        if let Some(name) = &self.hostname {
            b = b.hostname(name.clone());
        }
        Ok(b)
    }
}

fn parse_fs_mode(text: &str) -> Result<FsMode, String> {
    [FsMode::ReadOnly, FsMode::WorkspaceOnly, FsMode::Full]
        .into_iter()
        .find(|m| m.as_str() == text)
        .ok_or_else(|| format!("{text:?}: expected read-only, workspace-only or full"))
}

fn parse_net_mode(text: &str) -> Result<NetMode, String> {
    [NetMode::None, NetMode::Allowlist, NetMode::Full]
        .into_iter()
        .find(|m| m.as_str() == text)
        .ok_or_else(|| format!("{text:?}: expected none, allowlist or full"))
}

fn parse_cpus(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(cpus) if cpus.is_finite() && cpus > 0.0 => Ok(cpus),
        _ => Err(format!(
            "invalid cpu count {text:?}: expected a positive number like 0.5 or 2"
        )),
    }
}

/// `host`, or a directory (made absolute against the current directory).
fn parse_rootfs(text: &str) -> Result<Rootfs, String> {
    if text == "host" {
        return Ok(Rootfs::Host);
    }
    Ok(Rootfs::Path {
        path: host_path(text)?,
    })
}

/// `HOST:SANDBOX[:ro|:rw]`; a relative host path is made absolute against the current
/// directory, the sandbox path must be absolute.
fn parse_mount(text: &str) -> Result<Mount, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let read_only = match parts.get(2).copied() {
        None => false,
        Some("ro") => true,
        Some("rw") => false,
        Some(other) => {
            return Err(format!(
                "invalid mount {text:?}: unknown option {other:?} (use ro)"
            ))
        }
    };
    let (host, sandbox) = match parts[..] {
        [host, sandbox] | [host, sandbox, _] if !host.is_empty() => (host, sandbox),
        _ => {
            return Err(format!(
                "invalid mount {text:?}: expected HOST:SANDBOX or HOST:SANDBOX:ro"
            ))
        }
    };
    let sandbox =
        parse_sandbox_path(sandbox).map_err(|e| format!("invalid mount {text:?}: {e}"))?;
    Ok(Mount {
        host: host_path(host)?,
        sandbox,
        read_only,
    })
}

pub fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!(
            "invalid environment variable {text:?}: expected KEY=VALUE"
        )),
    }
}

pub fn parse_sandbox_path(text: &str) -> Result<String, String> {
    if text.starts_with('/') {
        Ok(text.to_string())
    } else {
        Err(format!("sandbox path {text:?} is not absolute"))
    }
}

fn host_path(text: &str) -> Result<String, String> {
    let path = std::path::absolute(PathBuf::from(text))
        .map_err(|e| format!("cannot make {text:?} absolute: {e}"))?;
    path.into_os_string().into_string().map_err(|p| {
        format!(
            "host path {} is not valid UTF-8",
            PathBuf::from(p).display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_host_paths_become_absolute() {
        let cwd = std::env::current_dir().unwrap();
        let mount = parse_mount("proj:/workspace").unwrap();
        assert_eq!(PathBuf::from(&mount.host), cwd.join("proj"));
        assert_eq!(
            parse_rootfs("root").unwrap(),
            Rootfs::Path {
                path: cwd.join("root").to_str().unwrap().into()
            }
        );
        assert_eq!(parse_rootfs("host").unwrap(), Rootfs::Host);
    }
}

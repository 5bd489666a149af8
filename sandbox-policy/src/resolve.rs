//! A request against a policy: what the sandbox gets, or the field that asks too much.

use sandbox_proto::{Mount, Rootfs};

use crate::file::{
    check_capability, check_rootfs_path, is_under, range, unclean, Kind, FULL_NEEDS_PATH,
};
use crate::{FsMode, HostPattern, NetMode, Policy, RootfsSetting};

/// What a request asks of a policy (the parts of a run or create spec a policy bounds).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Resource limits; each `None` takes the policy's.
    pub limits: &'a sandbox_proto::Limits,
    /// Lifetime of a kept sandbox, ms; `None`: the policy's.
    pub ttl_ms: Option<u64>,
    /// Idle timeout of a kept sandbox, ms; `None`: the policy's.
    pub idle_timeout_ms: Option<u64>,
    /// Filesystem mode; `None`: the policy's.
    pub filesystem: Option<FsMode>,
    /// Network mode; `None`: the policy's.
    pub network: Option<NetMode>,
    /// Capabilities to keep; `None`: the policy's `process.capabilities`.
    pub capabilities: Option<&'a [String]>,
    /// Root filesystem; [`Rootfs::Policy`]: the policy's.
    pub rootfs: &'a Rootfs,
    /// Host folders to mount.
    pub mounts: &'a [Mount],
}

/// What a sandbox gets: the request within the policy, the policy's values where the request
/// names none.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// Memory limit, bytes.
    pub memory: u64,
    /// Swap on top of memory, bytes.
    pub swap: u64,
    /// CPU quota in CPUs (`cpu_percent / 100`); `None`: no limit.
    pub cpus: Option<f64>,
    /// Most processes and threads.
    pub pids: u64,
    /// `/workspace` size, bytes.
    pub workspace_size: u64,
    /// `/tmp` size, bytes.
    pub tmp_size: u64,
    /// `/dev/shm` size, bytes.
    pub shm_size: u64,
    /// RLIMIT_NOFILE.
    pub open_files: u64,
    /// Run timeout, ms; `None`: none.
    pub timeout_ms: Option<u64>,
    /// Idle timeout of a kept sandbox, ms; `None`: none.
    pub idle_timeout_ms: Option<u64>,
    /// Lifetime of a kept sandbox, ms; `None`: unlimited.
    pub ttl_ms: Option<u64>,
    /// Filesystem mode.
    pub filesystem: FsMode,
    /// Network mode.
    pub network: NetMode,
    /// Capabilities every process keeps.
    pub capabilities: Vec<String>,
    /// Root filesystem.
    pub rootfs: RootfsSetting,
    /// The policy's seccomp profile.
    pub seccomp: String,
    /// The policy's `no_new_privileges`.
    pub no_new_privileges: bool,
    /// The policy's devices.
    pub devices: Vec<String>,
    /// The policy's environment, `KEY=VALUE`, sorted by key.
    pub env: Vec<String>,
    /// The policy's allowlist.
    pub allow_hosts: Vec<HostPattern>,
    /// The policy's deny list.
    pub deny_hosts: Vec<HostPattern>,
}

/// A request asks for more than its policy allows, or for something that is no value at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct BoundError {
    /// The request's field: `limits.memory`, `limits.cpus`, `ttl_ms`, `filesystem`, `network`,
    /// `capabilities[1]`, `rootfs`, `mounts[0].host`, `mounts[0].read_only`.
    pub field: String,
    /// Why it is refused, ending with the policy's name.
    pub reason: String,
    /// The value is malformed or outside the sanity range any policy has (a client error),
    /// rather than beyond what this policy allows.
    pub invalid: bool,
}

impl Policy {
    /// Resolves `req` against the policy: every value the request names must be within the
    /// sanity ranges of a policy file and within `[max]`; modes at most as permissive as the
    /// policy's; capabilities among `max.capabilities`; another root filesystem only with
    /// `custom_rootfs`; mounts under `host_mounts` (read-only in read-only mode). What the
    /// request leaves out comes from the policy. The request's environment is not looked at.
    pub fn resolve(&self, req: &Request<'_>) -> Result<Resolved, BoundError> {
        let fail = |field: &str, reason: String| BoundError {
            field: field.to_owned(),
            reason: format!("{reason} (policy {})", self.name),
            invalid: false,
        };
        let bad = |field: &str, reason: String| BoundError {
            invalid: true,
            ..fail(field, reason)
        };
        let unit = |kind: Kind| match kind {
            Kind::Size => " bytes",
            Kind::Duration => " ms",
            Kind::Count => "",
        };
        // A requested value against its sanity range (by policy-file key) and its bound.
        let check = |field: &str, key: &str, value: u64, bound: Option<u64>| {
            let (kind, min, max) = range(key);
            let unit = unit(kind);
            if value < min {
                return Err(bad(
                    field,
                    format!("{value}{unit} is below the minimum {min}{unit}"),
                ));
            }
            if let Some(bound) = bound.filter(|b| value > *b) {
                return Err(fail(
                    field,
                    format!("{value}{unit} is above the policy's maximum {bound}{unit}"),
                ));
            }
            if value > max {
                return Err(bad(
                    field,
                    format!("{value}{unit} is above the maximum {max}{unit}"),
                ));
            }
            Ok(value)
        };
        let pick = |field: &str, key: &str, value: Option<u64>, bound: u64, default: u64| {
            value.map_or(Ok(default), |v| check(field, key, v, Some(bound)))
        };
        let pick_opt = |field: &str, key: &str, value: Option<u64>, bound: Option<u64>, default| {
            value.map_or(Ok(default), |v| check(field, key, v, bound).map(Some))
        };
        let (l, m, rl) = (&self.limits, &self.max, req.limits);

        let memory = pick("limits.memory", "memory", rl.memory, m.memory, l.memory)?;
        let swap = pick("limits.swap", "swap", rl.swap, m.swap, l.swap)?;
        let pids = pick("limits.pids", "pids", rl.pids, m.pids, l.pids)?;
        let workspace_size = pick(
            "limits.workspace_size",
            "workspace_size",
            rl.workspace_size,
            m.workspace_size,
            l.workspace_size,
        )?;
        let tmp_size = pick(
            "limits.tmp_size",
            "tmp_size",
            rl.tmp_size,
            m.tmp_size,
            l.tmp_size,
        )?;
        let shm_size = pick(
            "limits.shm_size",
            "shm_size",
            rl.shm_size,
            m.shm_size,
            l.shm_size,
        )?;
        let open_files = pick(
            "limits.open_files",
            "open_files",
            rl.open_files,
            m.open_files,
            l.open_files,
        )?;
        let timeout_ms = pick_opt(
            "limits.timeout_ms",
            "timeout",
            rl.timeout_ms,
            m.timeout_ms,
            l.timeout_ms,
        )?;
        let idle_timeout_ms = pick_opt(
            "idle_timeout_ms",
            "idle_timeout",
            req.idle_timeout_ms,
            m.idle_timeout_ms,
            l.idle_timeout_ms,
        )?;
        let ttl_ms = pick_opt("ttl_ms", "ttl", req.ttl_ms, m.ttl_ms, l.ttl_ms)?;
        let cpus = match rl.cpus {
            None => l.cpu_percent.map(|p| f64::from(p) / 100.0),
            Some(cpus) => {
                let field = "limits.cpus";
                if !cpus.is_finite() || cpus <= 0.0 {
                    return Err(bad(
                        field,
                        format!("{cpus} is not a positive number of CPUs"),
                    ));
                }
                // Compared in CPUs: `percent / 100` and the same number sent by a client
                // round to the same f64.
                if cpus < 0.01 {
                    return Err(bad(field, format!("{cpus} CPUs is below the minimum 0.01")));
                }
                if let Some(max) = m.cpu_percent.map(|p| f64::from(p) / 100.0) {
                    if cpus > max {
                        return Err(fail(
                            field,
                            format!("{cpus} CPUs is above the policy's maximum {max} CPUs"),
                        ));
                    }
                }
                if cpus > 1024.0 {
                    return Err(bad(field, format!("{cpus} CPUs is above the maximum 1024")));
                }
                Some(cpus)
            }
        };

        let filesystem = match req.filesystem {
            None => self.filesystem.mode,
            Some(mode) if mode <= self.filesystem.mode => mode,
            Some(mode) => {
                return Err(fail(
                    "filesystem",
                    format!(
                        "{} is more than the policy's {}",
                        mode.as_str(),
                        self.filesystem.mode.as_str()
                    ),
                ))
            }
        };
        let network = match req.network {
            None => self.network.mode,
            Some(mode) if mode <= self.network.mode => mode,
            Some(mode) => {
                return Err(fail(
                    "network",
                    format!(
                        "{} is more than the policy's {}",
                        mode.as_str(),
                        self.network.mode.as_str()
                    ),
                ))
            }
        };

        let capabilities = match req.capabilities {
            None => self.process.capabilities.clone(),
            Some(list) => {
                for (i, cap) in list.iter().enumerate() {
                    let field = format!("capabilities[{i}]");
                    check_capability(cap).map_err(|m| bad(&field, m))?;
                    if list[..i].contains(cap) {
                        return Err(bad(&field, format!("{cap} is listed twice")));
                    }
                    if !m.capabilities.contains(cap) {
                        let allowed = if m.capabilities.is_empty() {
                            "none".to_owned()
                        } else {
                            m.capabilities.join(", ")
                        };
                        return Err(fail(
                            &field,
                            format!(
                                "{cap} is not among the capabilities the policy allows ({allowed})"
                            ),
                        ));
                    }
                }
                list.to_vec()
            }
        };

        let rootfs = self
            .resolve_rootfs(req.rootfs)
            .map_err(|m| fail("rootfs", m))?;
        if filesystem == FsMode::Full && rootfs == RootfsSetting::Host {
            return Err(fail("filesystem", FULL_NEEDS_PATH.to_owned()));
        }

        for (i, mount) in req.mounts.iter().enumerate() {
            let host = &mount.host;
            let field = format!("mounts[{i}].host");
            if let Some(why) = unclean(host) {
                return Err(bad(&field, format!("{host:?}: {why}")));
            }
            let dirs = &self.filesystem.host_mounts;
            if !dirs.iter().any(|dir| is_under(host, dir)) {
                let reason = if dirs.is_empty() {
                    "the policy allows no host directories".to_owned()
                } else {
                    format!(
                        "{host} is not under a directory the policy allows ({})",
                        dirs.join(", ")
                    )
                };
                return Err(fail(&field, reason));
            }
            if filesystem == FsMode::ReadOnly && !mount.read_only {
                return Err(fail(
                    &format!("mounts[{i}].read_only"),
                    "the filesystem mode is read-only: a host directory must be mounted read-only"
                        .to_owned(),
                ));
            }
        }

        Ok(Resolved {
            memory,
            swap,
            cpus,
            pids,
            workspace_size,
            tmp_size,
            shm_size,
            open_files,
            timeout_ms,
            idle_timeout_ms,
            ttl_ms,
            filesystem,
            network,
            capabilities,
            rootfs,
            seccomp: self.process.seccomp.clone(),
            no_new_privileges: self.process.no_new_privileges,
            devices: self.devices.clone(),
            env: self
                .process
                .env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
            allow_hosts: self.network.allow_hosts.clone(),
            deny_hosts: self.network.deny_hosts.clone(),
        })
    }

    /// The request's root filesystem, if the policy allows it; the reason otherwise.
    fn resolve_rootfs(&self, rootfs: &Rootfs) -> Result<RootfsSetting, String> {
        let wanted = match rootfs {
            Rootfs::Policy => return Ok(self.filesystem.rootfs.clone()),
            Rootfs::Host => RootfsSetting::Host,
            Rootfs::Path { path } => {
                check_rootfs_path(path)?;
                RootfsSetting::Path(path.clone())
            }
        };
        if wanted == self.filesystem.rootfs || self.filesystem.custom_rootfs {
            Ok(wanted)
        } else {
            Err("the policy allows no other root filesystem than its own".to_owned())
        }
    }
}

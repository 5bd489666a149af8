//! Pure decisions: a client's [`RunSpec`] plus who asked plus the daemon's configuration become
//! a [`Plan`], plain data that the isolation code applies. Nothing here touches the kernel, so
//! every rule is tested as data.

use std::path::{Component, Path};

use sandbox_proto::{CreateSpec, ExecSpec, FsMode, NetMode, RunSpec};
use serde::{Deserialize, Serialize};

use sandbox_policy::{Policy, Resolved, RootfsSetting};

use crate::cgroups::CgroupLimits;
use crate::config::Config;

/// Most argv entries a run may have.
pub const MAX_ARGS: usize = 4096;
/// Most environment entries.
pub const MAX_ENV: usize = 4096;
/// Most host mounts.
pub const MAX_MOUNTS: usize = 32;
/// Longest path accepted.
pub const MAX_PATH: usize = 4096;
/// Smallest memory limit (the sandbox's own init needs some).
pub const MIN_MEMORY: u64 = 8 << 20;
/// Longest timeout: 30 days.
pub const MAX_TIMEOUT_MS: u64 = 30 * 24 * 3600 * 1000;
/// The default environment; the client's entries override these.
pub const DEFAULT_ENV: &[&str] = &[
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME=/tmp",
    "LANG=C.UTF-8",
];
/// Where the tmpfs workspace is mounted, and the default working directory.
pub const WORKSPACE: &str = "/workspace";
/// Sandbox paths no host folder may be mounted on or under.
const RESERVED: &[&str] = &["/proc", "/dev", "/sys"];

/// The client that asked, from `SO_PEERCRED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// Its uid.
    pub uid: u32,
    /// Its gid.
    pub gid: u32,
    /// Its pid.
    pub pid: i32,
}

/// What the daemon has set aside for one sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// The sandbox id (12 hex digits).
    pub sandbox_id: String,
    /// Index of its uid range.
    pub slot: u32,
}

/// A policy decision failed: the request is not allowed as it stands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A field has a value outside what is allowed.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field, as the client named it (e.g. `limits.memory`, `mounts[0].sandbox`).
        field: String,
        /// Why.
        reason: String,
    },
    /// The request asks for more than its policy allows.
    #[error("{field}: {reason}")]
    Bound {
        /// The request field.
        field: String,
        /// Why (names the policy's bound).
        reason: String,
    },
    /// The caller may not use this host path.
    #[error("{field}: {reason}")]
    Denied {
        /// The field.
        field: String,
        /// Why.
        reason: String,
    },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> PolicyError {
    PolicyError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// How a sandbox's user namespace maps ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    /// Host uid (and gid) of sandbox root.
    pub host_base: u32,
    /// How many ids are mapped (sandbox ids `0..count`).
    pub count: u32,
    /// The client's uid: files the sandbox creates in host mounts get it.
    pub caller_uid: u32,
    /// The client's gid.
    pub caller_gid: u32,
}

/// The root filesystem to assemble.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RootPlan {
    /// Read-only binds of the host's system directories and a curated `/etc`.
    Host,
    /// Every top-level entry of this host directory, read-only.
    Path(String),
}

/// A host folder to bind into the sandbox through an idmapped mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindPlan {
    /// Absolute host path, as checked by the daemon.
    pub host: String,
    /// Absolute sandbox path.
    pub sandbox: String,
    /// Mount read-only.
    pub read_only: bool,
    /// Device and inode the daemon checked; the helper refuses a different directory there.
    pub dev: u64,
    /// See `dev`.
    pub ino: u64,
}

/// Everything needed to build and run one sandbox; applied by `isolation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The sandbox id.
    pub sandbox_id: String,
    /// The command.
    pub argv: Vec<String>,
    /// The full environment, `KEY=VALUE`.
    pub env: Vec<String>,
    /// Working directory inside.
    pub cwd: String,
    /// Hostname inside.
    pub hostname: String,
    /// The root filesystem.
    pub rootfs: RootPlan,
    /// Host folders, in mount order (parents before children).
    pub mounts: Vec<BindPlan>,
    /// Size of the `/workspace` tmpfs; `None` when a host folder is mounted there.
    pub workspace_size: Option<u64>,
    /// Size of the `/tmp` tmpfs.
    pub tmp_size: u64,
    /// User-namespace id mapping.
    pub ids: IdMap,
    /// The sandbox's cgroup, relative to the hierarchy roots.
    pub cgroup: String,
    /// Its cgroup limits.
    pub limits: CgroupLimits,
    /// Wall-clock limit (one-shot runs).
    pub timeout_ms: Option<u64>,
    /// A kept sandbox is destroyed this long after its creation.
    pub ttl_ms: Option<u64>,
    /// A kept sandbox is destroyed after this long without requests while no exec runs.
    pub idle_timeout_ms: Option<u64>,
    /// RLIMIT_NOFILE.
    pub nofile: u64,
    /// Host directory where the root is assembled (in the sandbox's private mount namespace).
    pub root_dir: String,
    /// The policy it was made under (its name).
    pub policy: String,
    /// What the sandbox may write.
    pub fs_mode: FsMode,
    /// Its network.
    pub network: NetMode,
    /// Size of the `/dev/shm` tmpfs.
    pub shm_size: u64,
    /// `full` mode: size of the tmpfs holding the root's writable layer.
    pub overlay_size: Option<u64>,
    /// Capabilities every exec keeps (`CAP_*`).
    pub capabilities: Vec<String>,
    /// Set no_new_privs on every exec.
    pub no_new_privileges: bool,
    /// The seccomp profile: a name sandboxd ships, or an absolute path.
    pub seccomp: String,
    /// Host device nodes bound into the sandbox's `/dev` (absolute host paths, kept at the
    /// same path inside).
    pub devices: Vec<String>,
}

impl From<sandbox_policy::BoundError> for PolicyError {
    fn from(e: sandbox_policy::BoundError) -> Self {
        if e.invalid {
            PolicyError::Invalid {
                field: e.field,
                reason: e.reason,
            }
        } else {
            PolicyError::Bound {
                field: e.field,
                reason: e.reason,
            }
        }
    }
}

/// Checks that `p` is absolute, has no `.` or `..` and no NUL, and returns it without a
/// trailing slash.
pub fn clean_abs_path(field: &str, p: &str) -> Result<String, PolicyError> {
    if p.len() > MAX_PATH {
        return Err(invalid(field, format!("longer than {MAX_PATH} bytes")));
    }
    if p.contains('\0') {
        return Err(invalid(field, "contains a NUL byte"));
    }
    let path = Path::new(p);
    if !path.is_absolute() {
        return Err(invalid(field, format!("{p:?} is not an absolute path")));
    }
    let mut out = String::new();
    for c in path.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(s) => {
                out.push('/');
                out.push_str(&s.to_string_lossy());
            }
            _ => return Err(invalid(field, format!("{p:?} contains `.` or `..`"))),
        }
    }
    if p.split('/').any(|s| s == "." || s == "..") {
        return Err(invalid(field, format!("{p:?} contains `.` or `..`")));
    }
    Ok(if out.is_empty() { "/".into() } else { out })
}

fn check_hostname(h: &str) -> Result<(), PolicyError> {
    let ok = !h.is_empty()
        && h.len() <= 64
        && !h.starts_with(['-', '.'])
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "hostname",
            format!("{h:?} is not a valid hostname (1-64 of A-Z, a-z, 0-9, '-', '.', not starting with '-' or '.')"),
        ))
    }
}

fn merge_env(extra: &[String]) -> Result<Vec<String>, PolicyError> {
    merge_env_over(DEFAULT_ENV.iter().map(|s| s.to_string()).collect(), extra)
}

fn merge_env_over(mut env: Vec<String>, extra: &[String]) -> Result<Vec<String>, PolicyError> {
    if extra.len() > MAX_ENV {
        return Err(invalid("env", format!("more than {MAX_ENV} entries")));
    }
    for (i, kv) in extra.iter().enumerate() {
        let field = format!("env[{i}]");
        let Some((k, _)) = kv.split_once('=') else {
            return Err(invalid(field, format!("{kv:?} is not KEY=VALUE")));
        };
        if k.is_empty() || kv.contains('\0') {
            return Err(invalid(
                field,
                format!("{kv:?} has an empty key or a NUL byte"),
            ));
        }
        env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k));
        env.push(kv.clone());
    }
    Ok(env)
}

/// Most annotations of a sandbox.
pub const MAX_ANNOTATIONS: usize = 64;

fn check_annotations(a: &std::collections::BTreeMap<String, String>) -> Result<(), PolicyError> {
    if a.len() > MAX_ANNOTATIONS {
        return Err(invalid(
            "annotations",
            format!("more than {MAX_ANNOTATIONS} entries"),
        ));
    }
    for (k, v) in a {
        if k.is_empty() || k.len() > 256 || v.len() > 4096 {
            return Err(invalid(
                format!("annotations.{k}"),
                "keys must have 1..=256 bytes, values at most 4096",
            ));
        }
    }
    Ok(())
}

fn check_argv(argv: &[String]) -> Result<(), PolicyError> {
    if argv.is_empty() || argv[0].is_empty() {
        return Err(invalid("argv", "empty command"));
    }
    if argv.len() > MAX_ARGS {
        return Err(invalid("argv", format!("more than {MAX_ARGS} arguments")));
    }
    if let Some(i) = argv.iter().position(|a| a.contains('\0')) {
        return Err(invalid(format!("argv[{i}]"), "contains a NUL byte"));
    }
    Ok(())
}

/// Turns a one-shot run's request into a plan under `policy`, or says which field is not
/// allowed.
pub fn plan(
    spec: &RunSpec,
    policy: &Policy,
    caller: &Caller,
    cfg: &Config,
    alloc: &Allocation,
) -> Result<Plan, PolicyError> {
    check_argv(&spec.argv)?;
    let req = sandbox_policy::Request {
        limits: &spec.limits,
        ttl_ms: None,
        idle_timeout_ms: None,
        filesystem: spec.filesystem,
        network: spec.network,
        capabilities: spec.capabilities.as_deref(),
        rootfs: &spec.rootfs,
        mounts: &spec.mounts,
    };
    let resolved = policy.resolve(&req)?;
    plan_sandbox(spec, policy, &resolved, caller, cfg, alloc)
}

/// Turns a `create` request into a plan (with no command: execs come later).
pub fn plan_create(
    spec: &CreateSpec,
    policy: &Policy,
    caller: &Caller,
    cfg: &Config,
    alloc: &Allocation,
) -> Result<Plan, PolicyError> {
    if spec.limits.timeout_ms.is_some() {
        return Err(invalid(
            "limits.timeout_ms",
            "a kept sandbox has no wall-clock limit: use ttl_ms, or an exec's timeout_ms",
        ));
    }
    let req = sandbox_policy::Request {
        limits: &spec.limits,
        ttl_ms: spec.ttl_ms,
        idle_timeout_ms: spec.idle_timeout_ms,
        filesystem: spec.filesystem,
        network: spec.network,
        capabilities: spec.capabilities.as_deref(),
        rootfs: &spec.rootfs,
        mounts: &spec.mounts,
    };
    check_annotations(&spec.annotations)?;
    let mut resolved = policy.resolve(&req)?;
    // A kept sandbox lives by its ttl and idle timeout; the policy's run timeout is for runs.
    resolved.timeout_ms = None;
    let as_run = RunSpec {
        argv: Vec::new(),
        env: spec.env.clone(),
        hostname: spec.hostname.clone(),
        mounts: spec.mounts.clone(),
        ..RunSpec::default()
    };
    plan_sandbox(&as_run, policy, &resolved, caller, cfg, alloc)
}

/// One command to start in an existing sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecPlan {
    /// The command.
    pub argv: Vec<String>,
    /// The whole environment.
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: String,
    /// User inside.
    pub uid: u32,
    /// Group inside.
    pub gid: u32,
    /// Kill it after this long.
    pub timeout_ms: Option<u64>,
}

/// Checks an exec request against its sandbox: `base_env` is the sandbox's environment and
/// `ids` how many ids its user namespace maps.
pub fn plan_exec(spec: &ExecSpec, base_env: &[String], ids: u32) -> Result<ExecPlan, PolicyError> {
    check_argv(&spec.argv)?;
    let env = merge_env_over(base_env.to_vec(), &spec.env)?;
    let cwd = clean_abs_path("cwd", spec.cwd.as_deref().unwrap_or(WORKSPACE))?;
    for (field, v) in [("uid", spec.uid), ("gid", spec.gid)] {
        if v >= ids {
            return Err(invalid(
                field,
                format!("{v} is not mapped in the sandbox (0..{ids})"),
            ));
        }
    }
    if let Some(t) = spec.timeout_ms {
        if t == 0 || t > MAX_TIMEOUT_MS {
            return Err(invalid(
                "timeout_ms",
                format!("{t} is outside 1..{MAX_TIMEOUT_MS}"),
            ));
        }
    }
    if let Some(sz) = spec.tty {
        if sz.rows == 0 || sz.cols == 0 {
            return Err(invalid("tty", "rows and cols must be at least 1"));
        }
    }
    Ok(ExecPlan {
        argv: spec.argv.clone(),
        env,
        cwd,
        uid: spec.uid,
        gid: spec.gid,
        timeout_ms: spec.timeout_ms,
    })
}

fn plan_sandbox(
    spec: &RunSpec,
    policy: &Policy,
    r: &Resolved,
    caller: &Caller,
    cfg: &Config,
    alloc: &Allocation,
) -> Result<Plan, PolicyError> {
    let env = merge_env_over(merge_env(&r.env)?, &spec.env)?;
    let cwd = clean_abs_path("cwd", spec.cwd.as_deref().unwrap_or(WORKSPACE))?;
    let hostname = spec
        .hostname
        .clone()
        .unwrap_or_else(|| alloc.sandbox_id.clone());
    check_hostname(&hostname)?;
    if r.network != NetMode::None {
        // Until the proxy and the routed link exist, any other mode would be a silent `none`.
        return Err(PolicyError::Bound {
            field: "network".into(),
            reason: format!(
                "network mode {} is not available in this sandboxd (only none); the policy {} asks for it",
                r.network.as_str(),
                policy.name
            ),
        });
    }

    let rootfs = match &r.rootfs {
        RootfsSetting::Host => RootPlan::Host,
        RootfsSetting::Path(path) => {
            let p = clean_abs_path("rootfs.path", path)?;
            if p == "/" {
                return Err(invalid(
                    "rootfs.path",
                    "the host's / cannot be a sandbox root",
                ));
            }
            RootPlan::Path(p)
        }
    };

    if spec.mounts.len() > MAX_MOUNTS {
        return Err(invalid("mounts", format!("more than {MAX_MOUNTS} mounts")));
    }
    let mut mounts = Vec::with_capacity(spec.mounts.len());
    for (i, m) in spec.mounts.iter().enumerate() {
        let host = clean_abs_path(&format!("mounts[{i}].host"), &m.host)?;
        let field = format!("mounts[{i}].sandbox");
        let sandbox = clean_abs_path(&field, &m.sandbox)?;
        if sandbox == "/" {
            return Err(invalid(field, "cannot mount over the sandbox root"));
        }
        if let Some(r) = RESERVED
            .iter()
            .find(|r| sandbox == **r || sandbox.starts_with(&format!("{r}/")))
        {
            return Err(invalid(
                field,
                format!("{sandbox} is under {r}, which the sandbox owns"),
            ));
        }
        if mounts.iter().any(|b: &BindPlan| b.sandbox == sandbox) {
            return Err(invalid(field, format!("{sandbox} is mounted twice")));
        }
        mounts.push(BindPlan {
            host,
            sandbox,
            read_only: m.read_only,
            dev: 0,
            ino: 0,
        });
    }
    // Parents before children, so a child mount lands inside its parent's mount.
    mounts.sort_by_key(|b| b.sandbox.matches('/').count());
    let workspace_size = if mounts.iter().any(|b| b.sandbox == WORKSPACE) {
        None
    } else {
        Some(r.workspace_size)
    };

    Ok(Plan {
        sandbox_id: alloc.sandbox_id.clone(),
        argv: spec.argv.clone(),
        env,
        cwd,
        hostname,
        rootfs,
        mounts,
        workspace_size,
        tmp_size: r.tmp_size,
        ids: IdMap {
            host_base: cfg.uid_base + alloc.slot * Config::IDS_PER_SANDBOX,
            count: Config::IDS_PER_SANDBOX,
            caller_uid: caller.uid,
            caller_gid: caller.gid,
        },
        cgroup: format!("{}/{}", cfg.cgroup_parent, alloc.sandbox_id),
        limits: CgroupLimits {
            memory: Some(r.memory),
            swap: r.swap,
            pids: Some(r.pids),
            cpus: r.cpus,
        },
        timeout_ms: r.timeout_ms,
        ttl_ms: r.ttl_ms,
        idle_timeout_ms: r.idle_timeout_ms,
        nofile: r.open_files,
        root_dir: cfg.root_dir().to_string_lossy().into_owned(),
        policy: policy.name.clone(),
        fs_mode: r.filesystem,
        network: r.network,
        shm_size: r.shm_size,
        overlay_size: (r.filesystem == FsMode::Full).then_some(r.workspace_size),
        capabilities: r.capabilities.clone(),
        no_new_privileges: r.no_new_privileges,
        seccomp: r.seccomp.clone(),
        devices: r.devices.clone(),
    })
}

/// What the daemon saw of a host folder a client asked to mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostDirFacts {
    /// It is a directory (not following a final symlink).
    pub is_dir: bool,
    /// Its owner.
    pub uid: u32,
}

/// Whether `caller` may mount the host directory described by `facts` at all. Root may mount
/// any directory; anyone else only directories they own. (Inside, the idmapped mount shows
/// only the caller's own files as the sandbox's; other files keep their host permissions.)
pub fn check_host_dir(
    field: &str,
    facts: &HostDirFacts,
    caller: &Caller,
) -> Result<(), PolicyError> {
    if !facts.is_dir {
        return Err(invalid(field, "is not a directory"));
    }
    if caller.uid != 0 && facts.uid != caller.uid {
        return Err(PolicyError::Denied {
            field: field.into(),
            reason: format!(
                "owned by uid {}, not by the caller (uid {})",
                facts.uid, caller.uid
            ),
        });
    }
    Ok(())
}

/// Owner and mode of one directory on a host path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirPerm {
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// Whether a non-root `caller` could itself reach a host path: it must be allowed to search
/// every directory on the way (`chain`: `/` first, the path itself last). The daemon opens
/// paths as root, so without this a client could use a world-readable tree under another
/// user's private directory. Only the caller's primary group is considered.
pub fn check_reachable(
    field: &str,
    path: &str,
    chain: &[DirPerm],
    caller: &Caller,
) -> Result<(), PolicyError> {
    if caller.uid == 0 {
        return Ok(());
    }
    for d in chain {
        let bits = if d.uid == caller.uid {
            d.mode >> 6
        } else if d.gid == caller.gid {
            d.mode >> 3
        } else {
            d.mode
        };
        if bits & 0o1 == 0 {
            return Err(PolicyError::Denied {
                field: field.into(),
                reason: format!("uid {} may not reach {path}", caller.uid),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

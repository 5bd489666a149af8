//! One cgroup per sandbox, created, limited, killed and removed through cgroups-rs (v1 and v2).
//!
//! A sandbox cgroup is `<parent>/<name>` under the hierarchy roots (never relative to the
//! daemon's own cgroup). On cgroup v1, including hybrid hosts, it exists once per hierarchy
//! (memory, pids, cpu, cpuacct, freezer, blkio); on v2 it is one directory under /sys/fs/cgroup
//! with memory, pids and cpu (and io, where available) enabled along the parent chain. Sandbox
//! cgroups are leaves: this module never creates cgroups below them. Besides limits and kills,
//! it reads usage (`stats`) and freezes and thaws sandboxes. Everything here needs root.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use cgroups_rs::cpu::CpuController;
use cgroups_rs::error::{Error as CgError, ErrorKind};
use cgroups_rs::freezer::{FreezerController, FreezerState};
use cgroups_rs::hierarchies::{self, UNIFIED_MOUNTPOINT};
use cgroups_rs::memory::MemController;
use cgroups_rs::pid::PidController;
use cgroups_rs::{Cgroup, CgroupPid, ControllIdentifier, Controller, MaxValue, Subsystem};
use nix::errno::Errno;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// The CFS period of the `cpus` limit, in microseconds.
const CPU_PERIOD_US: u64 = 100_000;
/// The smallest CFS quota the kernel accepts, in microseconds.
const CPU_MIN_QUOTA_US: f64 = 1_000.0;
/// How long `destroy` waits for killed processes to leave.
const DESTROY_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the bounded waits poll.
const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// The first, short wait of a backing-off poll.
const FIRST_POLL: Duration = Duration::from_micros(50);
/// How long one freezer round waits for v1 FREEZING to become FROZEN before killing anyway.
const FREEZE_TIMEOUT: Duration = Duration::from_millis(100);
/// Freeze, kill, thaw rounds before `kill_all` leaves the rest to `destroy`'s wait.
const FREEZE_KILL_ROUNDS: usize = 50;

/// How long `freeze` waits for every process to be frozen.
const FREEZE_WAIT: Duration = Duration::from_secs(2);
/// v1 reports "unlimited" memory as the page-rounded i64::MAX; anything this close is no limit.
const V1_UNLIMITED: u64 = i64::MAX as u64 - (1 << 20);

/// The v1 hierarchies a sandbox cgroup lives in, where mounted; memory, pids, cpu and freezer
/// are required (freezer makes the kill race-free), cpuacct and blkio only feed `stats`.
const V1_CONTROLLERS: &[&str] = &["memory", "pids", "cpu", "cpuacct", "freezer", "blkio"];
/// The v2 controllers enabled for a sandbox cgroup. The v2 freezer is core (`cgroup.freeze`):
/// cgroups-rs models it as a pseudo controller, loaded but never enabled.
const V2_CONTROLLERS: &[&str] = &["memory", "pids", "cpu"];

/// Which cgroup hierarchy the host uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// Legacy or hybrid: one hierarchy per controller under /sys/fs/cgroup/<controller>.
    V1,
    /// Unified: cgroup2 mounted on /sys/fs/cgroup.
    V2,
}

impl CgroupVersion {
    /// "v1" or "v2".
    pub fn as_str(self) -> &'static str {
        match self {
            CgroupVersion::V1 => "v1",
            CgroupVersion::V2 => "v2",
        }
    }
}

/// What this host uses: v2 only in unified mode (a hybrid host's cgroup2 mount is ignored).
pub fn version() -> CgroupVersion {
    if hierarchies::is_cgroup2_unified_mode() {
        CgroupVersion::V2
    } else {
        CgroupVersion::V1
    }
}

/// Resource limits of one sandbox; `None` leaves that resource unlimited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CgroupLimits {
    /// Memory limit in bytes; with it, swap is limited to `swap` (off when that is 0).
    pub memory: Option<u64>,
    /// Swap the sandbox may use on top of `memory`, in bytes.
    pub swap: u64,
    /// Maximum number of processes (and threads).
    pub pids: Option<u64>,
    /// CPU bandwidth in CPUs, e.g. 1.5 (at least 0.01).
    pub cpus: Option<f64>,
}

/// Resource usage of one sandbox's cgroup, as the wire carries it; fields the host's cgroup
/// does not provide are None. Sources: CPU from v2 `cpu.stat` or v1 `cpuacct.usage` and
/// `cpuacct.stat` (tick-grained); memory from v2 `memory.current`/`memory.peak` (linux >= 5.19)
/// or v1 `memory.usage_in_bytes`/`memory.max_usage_in_bytes`; `pids.current`; io from v2
/// `io.stat` (when the io controller is enabled) or v1 `blkio.throttle.io_service_bytes`.
pub use sandbox_proto::SandboxStats as CgroupStats;

/// An error of one step of managing a sandbox cgroup.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("invalid cgroup path {path:?}")]
    InvalidPath { path: String },
    #[error("invalid cpus limit {cpus} for cgroup {path}")]
    InvalidCpus { path: String, cpus: f64 },
    #[error("cgroup {path} already exists")]
    AlreadyExists { path: String },
    #[error("failed to create cgroup {path}")]
    Create {
        path: String,
        #[source]
        source: CgError,
    },
    #[error("controller {controller} is not available for cgroup {path}")]
    ControllerUnavailable {
        path: String,
        controller: &'static str,
    },
    #[error("cgroup directory {} was not created", dir.display())]
    CreateIncomplete { dir: PathBuf },
    #[error("failed to read {}", file.display())]
    ReadControllers {
        file: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to enable controller {controller} in {}", file.display())]
    EnableController {
        file: PathBuf,
        controller: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("failed to set the {limit} limit of cgroup {path}")]
    SetLimit {
        path: String,
        limit: &'static str,
        #[source]
        source: CgError,
    },
    #[error("failed to move process {pid} into cgroup {path}")]
    Attach {
        path: String,
        pid: u32,
        #[source]
        source: CgError,
    },
    #[error("failed to write cgroup.kill of cgroup {path}")]
    Kill {
        path: String,
        #[source]
        source: CgError,
    },
    #[error("failed to set the freezer state of cgroup {path} to {state}")]
    Freezer {
        path: String,
        state: &'static str,
        #[source]
        source: CgError,
    },
    #[error("failed to send SIGKILL to process {pid} of cgroup {path}")]
    Signal {
        path: String,
        pid: u32,
        #[source]
        source: Errno,
    },
    #[error("cgroup {path} still holds processes {pids:?} after being killed")]
    StillPopulated { path: String, pids: Vec<u32> },
    #[error("failed to remove cgroup {path}")]
    Remove {
        path: String,
        #[source]
        source: CgError,
    },
    #[error("failed to list the child cgroups of {}", dir.display())]
    ListChildren {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cgroup {path} does not exist")]
    NotFound { path: String },
    #[error("failed to read {}", file.display())]
    ReadStat {
        file: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("unexpected content in {}: {text:?}", file.display())]
    ParseStat { file: PathBuf, text: String },
    #[error("cgroup {path} was not frozen within {timeout:?}")]
    FreezeTimeout { path: String, timeout: Duration },
}

/// Checks that `path` is relative and has no empty, `.` or `..` component, so that it cannot
/// name a hierarchy root or leave it (cgroups-rs panics on paths that leave the hierarchy).
fn validate_path(path: &str) -> Result<(), CgroupError> {
    let bad = |c: &str| c.is_empty() || c == "." || c == ".." || c.contains('\0');
    match path.split('/').any(bad) {
        true => Err(CgroupError::InvalidPath { path: path.into() }),
        false => Ok(()),
    }
}

/// The CFS quota for `cpus`, in whole microseconds per `CPU_PERIOD_US`.
#[allow(
    clippy::cast_possible_truncation,
    reason = "a whole number in i64 range"
)]
fn cpu_quota_us(path: &str, cpus: f64) -> Result<i64, CgroupError> {
    let quota = (cpus * CPU_PERIOD_US as f64).round();
    // Also rejects NaN; the upper bound keeps the cast exact.
    if !(CPU_MIN_QUOTA_US..=1e15).contains(&quota) {
        let path = path.to_owned();
        return Err(CgroupError::InvalidCpus { path, cpus });
    }
    Ok(quota as i64)
}

/// A sandbox's cgroup, in every hierarchy it lives in.
#[derive(Debug)]
pub struct SandboxCgroup {
    cg: Cgroup,
    path: String,
    version: CgroupVersion,
}

impl SandboxCgroup {
    /// Creates `<parent>/<name>` (parent may be nested, e.g. "system.slice/sandboxd") in every
    /// hierarchy needed and applies `limits`: memory (limit in bytes, swap off), pids (pids.max)
    /// and cpus (CFS quota per 100 ms period). Fails if the cgroup exists already. If a step
    /// fails, the sandbox directory is removed again; parent directories are kept, as sibling
    /// sandboxes may be using them.
    pub fn create(parent: &str, name: &str, limits: &CgroupLimits) -> Result<Self, CgroupError> {
        let path = format!("{parent}/{name}");
        validate_path(&path)?;
        if name.contains('/') {
            return Err(CgroupError::InvalidPath { path });
        }
        let cpu_quota = limits.cpus.map(|c| cpu_quota_us(&path, c)).transpose()?;
        let cg = Self::load(&path);
        if cg.exists() {
            return Err(CgroupError::AlreadyExists { path });
        }
        // On v2 cgroups-rs checks the controllers against the root's cgroup.controllers, then
        // writes "+<controller>" into each ancestor's cgroup.subtree_control, ignoring failures;
        // on v1 it ignores mkdir failures and skips hierarchies that are not mounted.
        // `check_created` catches all of these.
        let enable = match cg.version {
            CgroupVersion::V1 => V1_CONTROLLERS,
            CgroupVersion::V2 => V2_CONTROLLERS,
        };
        let enable = Some(enable.iter().map(|c| c.to_string()).collect());
        let created = Cgroup::new_with_specified_controllers(hierarchies::auto(), &path, enable)
            .map_err(|source| CgroupError::Create { path, source })
            .and_then(|_| cg.check_created())
            .and_then(|()| cg.apply(limits, cpu_quota));
        if let Err(err) = created {
            // Best effort: the error of the step that failed is the one worth reporting.
            let _ = cg.destroy();
            return Err(err);
        }
        Ok(cg)
    }

    /// Opens an existing cgroup by its relative path ("sandboxd/abc"), e.g. in another process.
    /// Nothing is checked here: with an invalid path the other calls fail or report nothing.
    pub fn load(relative_path: &str) -> Self {
        let version = version();
        let controllers = match version {
            CgroupVersion::V1 => V1_CONTROLLERS,
            CgroupVersion::V2 => &["memory", "pids", "cpu", "freezer"],
        };
        let controllers = controllers.iter().map(|c| c.to_string()).collect();
        let hier = hierarchies::auto();
        let cg = Cgroup::load_with_specified_controllers(hier, relative_path, controllers);
        let path = relative_path.to_owned();
        Self { cg, path, version }
    }

    /// The path relative to the hierarchy roots, e.g. "sandboxd/abc".
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Moves process `pid` (a thread-group id, with all its threads) into this cgroup in every
    /// hierarchy. On v1 a failure can leave it moved in some hierarchies only: destroy the
    /// cgroup then.
    pub fn attach(&self, pid: u32) -> Result<(), CgroupError> {
        validate_path(&self.path)?;
        let path = self.path.clone();
        let tgid = CgroupPid::from(u64::from(pid));
        let attach = self.cg.add_task_by_tgid(tgid);
        attach.map_err(|source| CgroupError::Attach { path, pid, source })
    }

    /// The processes (thread-group ids) in this cgroup now.
    pub fn pids(&self) -> Vec<u32> {
        if validate_path(&self.path).is_err() {
            return Vec::new();
        }
        let pids = self.cg.procs().into_iter();
        // cgroups-rs reports a line it cannot parse as pid 0.
        let pids = pids.filter_map(|p| u32::try_from(p.pid).ok());
        pids.filter(|&p| p != 0).collect()
    }

    /// How many processes the kernel OOM killer killed in this cgroup; 0 if unreadable.
    pub fn oom_kills(&self) -> u64 {
        if validate_path(&self.path).is_err() {
            return 0;
        }
        match self.version {
            // cgroups-rs 0.3.4 has no call for v2 memory.events (and its v2 memory_stat()
            // panics when a file is missing).
            CgroupVersion::V2 => File::open(self.v2_dir().join("memory.events"))
                .ok()
                .and_then(|f| cgroups_rs::flat_keyed_to_hashmap(f).ok())
                .and_then(|events| u64::try_from(*events.get("oom_kill")?).ok())
                .unwrap_or(0),
            // Only memory.oom_control (cgroups-rs's memory_stat() reads a dozen files for it).
            CgroupVersion::V1 => {
                let kills = |text: &str| {
                    text.lines()
                        .find_map(|l| l.strip_prefix("oom_kill "))
                        .and_then(|v| v.trim().parse::<u64>().ok())
                };
                self.stat("memory", "memory.oom_control", kills)
                    .ok()
                    .flatten()
                    .unwrap_or(0)
            }
        }
    }

    /// The resource usage of this cgroup, read from its files (cgroups-rs 0.3.4 lacks some and
    /// panics on missing ones). A file the host does not provide leaves its field None.
    pub fn stats(&self) -> Result<CgroupStats, CgroupError> {
        validate_path(&self.path)?;
        if !self.exists() {
            let path = self.path.clone();
            return Err(CgroupError::NotFound { path });
        }
        let (cpu_usage_us, cpu_user_us, cpu_system_us, io) = match self.version {
            CgroupVersion::V2 => {
                let cpu = self.stat("", "cpu.stat", |s| {
                    let usage = keyed(s, "usage_usec")?;
                    Some((usage, keyed(s, "user_usec")?, keyed(s, "system_usec")?))
                })?;
                let io = self.stat("", "io.stat", io_v2)?;
                (cpu.map(|c| c.0), cpu.map(|c| c.1), cpu.map(|c| c.2), io)
            }
            CgroupVersion::V1 => {
                let usage_ns = self.stat("cpuacct", "cpuacct.usage", number)?;
                let ticks = |s: &str| Some((keyed(s, "user")?, keyed(s, "system")?));
                let ticks = self.stat("cpuacct", "cpuacct.stat", ticks)?;
                let hz = clock_ticks_per_second();
                let us = |ticks: u64| ticks.saturating_mul(1_000_000) / hz;
                let io = self.stat("blkio", "blkio.throttle.io_service_bytes", io_v1)?;
                let usage_us = usage_ns.map(|ns| ns / 1_000);
                (usage_us, ticks.map(|t| us(t.0)), ticks.map(|t| us(t.1)), io)
            }
        };
        let (current, peak, memory_limit) = match self.version {
            CgroupVersion::V2 => ("memory.current", "memory.peak", "memory.max"),
            CgroupVersion::V1 => (
                "memory.usage_in_bytes",
                "memory.max_usage_in_bytes",
                "memory.limit_in_bytes",
            ),
        };
        Ok(CgroupStats {
            cpu_usage_us,
            cpu_user_us,
            cpu_system_us,
            memory_current: self.stat("memory", current, number)?,
            memory_peak: self.stat("memory", peak, number)?,
            memory_limit: self.stat("memory", memory_limit, limit)?.flatten(),
            pids_current: self.stat("pids", "pids.current", number)?,
            pids_limit: self.stat("pids", "pids.max", limit)?.flatten(),
            oom_kills: self.oom_kills(),
            io_read_bytes: io.map(|io| io.0),
            io_write_bytes: io.map(|io| io.1),
            frozen: self.is_frozen(),
        })
    }

    /// Freezes every process (v2 cgroup.freeze = 1, waiting until cgroup.events says frozen 1;
    /// v1 freezer.state FROZEN, waiting until it reads FROZEN). Bounded wait (~2 s) → error;
    /// the cgroup is thawed again then, rather than left half frozen. `kill_all` and `destroy`
    /// work on a frozen cgroup.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        let freezer = self.freezer()?;
        freezer.freeze().map_err(self.freezer_failed("frozen"))?;
        let deadline = Instant::now() + FREEZE_WAIT;
        let mut wait = FIRST_POLL;
        loop {
            match self.frozen()? {
                Some(true) => return Ok(()),
                Some(false) if Instant::now() < deadline => {}
                Some(false) => {
                    // Best effort: the timeout is the error worth reporting.
                    let _ = freezer.thaw();
                    let (path, timeout) = (self.path.clone(), FREEZE_WAIT);
                    return Err(CgroupError::FreezeTimeout { path, timeout });
                }
                None => {
                    let path = self.path.clone();
                    return Err(CgroupError::NotFound { path });
                }
            }
            thread::sleep(wait);
            wait = (wait * 2).min(POLL_INTERVAL);
        }
    }

    /// Thaws (v2 cgroup.freeze = 0; v1 THAWED). Thawing a cgroup that is not frozen is Ok.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        let freezer = self.freezer()?;
        freezer.thaw().map_err(self.freezer_failed("thawed"))
    }

    /// Whether every process of this cgroup is frozen now (false while freezing, and when the
    /// state cannot be read).
    pub fn is_frozen(&self) -> bool {
        validate_path(&self.path).is_ok() && self.frozen().ok().flatten().unwrap_or(false)
    }

    /// SIGKILLs every process in this cgroup without racing against forks: v2 writes
    /// cgroup.kill (linux >= 5.14); older v2 kernels and v1 freeze the cgroup, kill each
    /// process, thaw, and repeat until it is empty (bounded). The processes may still be
    /// exiting on return. A cgroup that does not exist is Ok. A frozen cgroup is killed too: v2
    /// delivers SIGKILL to frozen processes, and the v1 freezer kill ends thawed.
    pub fn kill_all(&self) -> Result<(), CgroupError> {
        validate_path(&self.path)?;
        if !self.exists() {
            return Ok(());
        }
        if self.version == CgroupVersion::V2 {
            match self.cg.kill() {
                Ok(()) => return Ok(()),
                // cgroups-rs says InvalidOperation when cgroup.kill is missing.
                Err(e) if *e.kind() == ErrorKind::InvalidOperation => {}
                Err(source) => {
                    let path = self.path.clone();
                    return Err(CgroupError::Kill { path, source });
                }
            }
        }
        self.kill_frozen()
    }

    /// `kill_all`, then waits (at most ~2 s) until no process is left and removes the cgroup
    /// directory from every hierarchy. Destroying a cgroup that is already gone is Ok.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        validate_path(&self.path)?;
        if !self.exists() {
            return Ok(());
        }
        self.kill_all()?;
        let deadline = Instant::now() + DESTROY_TIMEOUT;
        // Dying processes usually leave within microseconds: poll fast first, then back off.
        let mut wait = FIRST_POLL;
        loop {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                let path = self.path.clone();
                return Err(CgroupError::StillPopulated { path, pids });
            }
            thread::sleep(wait);
            wait = (wait * 2).min(POLL_INTERVAL);
        }
        // rmdir can fail with EBUSY for a moment after the last process left (cgroups-rs
        // retries v1 directories itself, v2 not).
        let deadline = Instant::now() + 20 * POLL_INTERVAL;
        let mut wait = FIRST_POLL;
        loop {
            match self.cg.delete() {
                Ok(()) => return Ok(()),
                Err(_) if !self.exists() => return Ok(()),
                Err(source) if Instant::now() >= deadline => {
                    let path = self.path.clone();
                    return Err(CgroupError::Remove { path, source });
                }
                Err(_) => {
                    thread::sleep(wait);
                    wait = (wait * 2).min(POLL_INTERVAL);
                }
            }
        }
    }

    /// Whether the cgroup directory still exists in any hierarchy.
    pub fn exists(&self) -> bool {
        validate_path(&self.path).is_ok() && self.cg.exists()
    }

    /// On cgroup v2, the cgroup's directory opened for `CLONE_INTO_CGROUP`, so a process can
    /// start in it instead of being moved in (a move takes a global lock and can wait for an
    /// RCU grace period). None on v1, or if it cannot be opened.
    pub fn clone_target(&self) -> Option<std::os::fd::OwnedFd> {
        if self.version != CgroupVersion::V2 {
            return None;
        }
        std::fs::File::open(self.v2_dir())
            .ok()
            .map(std::os::fd::OwnedFd::from)
    }

    /// The cgroup's directories, one per hierarchy (co-mounted hierarchies share one).
    fn dirs(&self) -> Vec<PathBuf> {
        let dirs = self.cg.subsystems().iter();
        let mut dirs: Vec<PathBuf> = dirs.map(|s| s.to_controller().path().into()).collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }

    fn v2_dir(&self) -> PathBuf {
        Path::new(UNIFIED_MOUNTPOINT).join(&self.path)
    }

    /// Checks what cgroups-rs does not: on v1 that every required hierarchy is mounted and its
    /// directory exists; on v2 that the controllers are enabled for the new cgroup. If one is
    /// not, enables it down the parent chain here, so that a failure names the refusing file.
    fn check_created(&self) -> Result<(), CgroupError> {
        if self.version == CgroupVersion::V1 {
            self.controller::<MemController>("memory")?;
            self.controller::<PidController>("pids")?;
            self.controller::<CpuController>("cpu")?;
            self.controller::<FreezerController>("freezer")?;
            return match self.dirs().into_iter().find(|d| !d.is_dir()) {
                Some(dir) => Err(CgroupError::CreateIncomplete { dir }),
                None => Ok(()),
            };
        }
        let file = self.v2_dir().join("cgroup.controllers");
        let enabled = || {
            let read = fs::read_to_string(&file);
            let file = file.clone();
            read.map_err(|source| CgroupError::ReadControllers { file, source })
        };
        let missing = |enabled: &str, c: &&str| !enabled.split_whitespace().any(|e| e == *c);
        let first = enabled()?;
        for &controller in V2_CONTROLLERS.iter().filter(|c| missing(&first, c)) {
            self.enable_v2(controller)?;
        }
        let now = enabled()?;
        if let Some(&controller) = V2_CONTROLLERS.iter().find(|c| missing(&now, c)) {
            let path = self.path.clone();
            return Err(CgroupError::ControllerUnavailable { path, controller });
        }
        // io only feeds `stats` (io.stat): a host without it, or refusing it, still gets
        // sandboxes.
        let root = fs::read_to_string(Path::new(UNIFIED_MOUNTPOINT).join("cgroup.controllers"));
        if missing(&now, &"io") && root.is_ok_and(|root| !missing(&root, &"io")) {
            let _ = self.enable_v2("io");
        }
        Ok(())
    }

    /// Writes "+<controller>" into cgroup.subtree_control from the v2 root down to the parent:
    /// the sandbox itself gets no children.
    fn enable_v2(&self, controller: &'static str) -> Result<(), CgroupError> {
        let mut dir = PathBuf::from(UNIFIED_MOUNTPOINT);
        let mut components = self.path.split('/');
        components.next_back();
        loop {
            let file = dir.join("cgroup.subtree_control");
            let write = fs::write(&file, format!("+{controller}"));
            write.map_err(|source| CgroupError::EnableController {
                file,
                controller,
                source,
            })?;
            match components.next() {
                Some(component) => dir.push(component),
                None => return Ok(()),
            }
        }
    }

    /// Writes the limits through the cgroups-rs controller setters (`Cgroup::apply` would
    /// ignore memory write failures).
    fn apply(&self, limits: &CgroupLimits, cpu_quota: Option<i64>) -> Result<(), CgroupError> {
        let failed = |limit| {
            let path = self.path.clone();
            move |source| CgroupError::SetLimit {
                path,
                limit,
                source,
            }
        };
        // Beyond i64::MAX is unlimited for memory, and refused by the kernel for pids.
        let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        if let Some(bytes) = limits.memory.map(to_i64) {
            let mem = self.controller::<MemController>("memory")?;
            mem.set_limit(bytes).map_err(failed("memory"))?;
            // The swap limit: v2 limits swap alone, v1 memory+swap. The file is missing when
            // swap accounting is off, and then there is no swap limit to set.
            let swap = to_i64(limits.swap);
            let (file, swap) = match self.version {
                CgroupVersion::V2 => ("memory.swap.max", swap),
                CgroupVersion::V1 => ("memory.memsw.limit_in_bytes", bytes.saturating_add(swap)),
            };
            if mem.path().join(file).exists() {
                mem.set_memswap_limit(swap).map_err(failed("swap"))?;
            }
        }
        if let Some(max) = limits.pids.map(to_i64) {
            let pids = self.controller::<PidController>("pids")?;
            pids.set_pid_max(MaxValue::Value(max))
                .map_err(failed("pids"))?;
        }
        if let Some(quota) = cpu_quota {
            let cpu = self.controller::<CpuController>("cpu")?;
            cpu.set_cfs_quota_and_period(Some(quota), Some(CPU_PERIOD_US))
                .map_err(failed("cpu"))?;
        }
        Ok(())
    }

    fn controller<'a, T>(&'a self, controller: &'static str) -> Result<&'a T, CgroupError>
    where
        &'a T: From<&'a Subsystem>,
        T: Controller + ControllIdentifier,
    {
        let path = || self.path.clone();
        let unavailable = || CgroupError::ControllerUnavailable {
            path: path(),
            controller,
        };
        self.cg.controller_of::<T>().ok_or_else(unavailable)
    }

    /// The freezer kill: while frozen nothing in the cgroup can fork, so the pids read then are
    /// all there is. A v1 SIGKILLed task dies once thawed; v2 delivers SIGKILL to frozen tasks.
    /// Each round ends thawed, so this also kills a cgroup that `freeze` froze.
    fn kill_frozen(&self) -> Result<(), CgroupError> {
        let freezer = self.controller::<FreezerController>("freezer")?;
        let failed = |state| self.freezer_failed(state);
        for _ in 0..FREEZE_KILL_ROUNDS {
            if self.pids().is_empty() {
                return Ok(());
            }
            freezer.freeze().map_err(failed("frozen"))?;
            let deadline = Instant::now() + FREEZE_TIMEOUT;
            while matches!(freezer.state(), Ok(FreezerState::Freezing)) {
                if Instant::now() >= deadline {
                    break;
                }
                thread::sleep(Duration::from_millis(1));
            }
            let killed = self.pids().into_iter().try_for_each(|p| self.sigkill(p));
            // Thaw even when a kill failed, or the cgroup stays frozen.
            freezer.thaw().map_err(failed("thawed"))?;
            killed?;
            thread::sleep(POLL_INTERVAL);
        }
        Ok(())
    }

    fn freezer_failed(&self, state: &'static str) -> impl FnOnce(CgError) -> CgroupError {
        let path = self.path.clone();
        move |source| CgroupError::Freezer {
            path,
            state,
            source,
        }
    }

    /// The freezer of an existing cgroup, for `freeze` and `thaw`.
    fn freezer(&self) -> Result<&FreezerController, CgroupError> {
        validate_path(&self.path)?;
        if !self.exists() {
            let path = self.path.clone();
            return Err(CgroupError::NotFound { path });
        }
        self.controller::<FreezerController>("freezer")
    }

    /// Whether every process is frozen: v2 cgroup.events "frozen 1" (cgroup.freeze is only the
    /// request), v1 freezer.state FROZEN (not FREEZING). None if the file is missing.
    fn frozen(&self) -> Result<Option<bool>, CgroupError> {
        match self.version {
            CgroupVersion::V2 => self.stat("", "cgroup.events", |s| Some(keyed(s, "frozen")? == 1)),
            CgroupVersion::V1 => {
                self.stat("freezer", "freezer.state", |s| Some(s.trim() == "FROZEN"))
            }
        }
    }

    /// Reads and parses the file `name` of this cgroup, in the v1 hierarchy `v1` or in the v2
    /// directory. A missing file, or v1 hierarchy, is None: the host does not provide it.
    fn stat<T>(
        &self,
        v1: &str,
        name: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, CgroupError> {
        let file = match self.version {
            CgroupVersion::V2 => self.v2_dir().join(name),
            CgroupVersion::V1 => {
                let mut subsystems = self.cg.subsystems().iter();
                match subsystems.find(|s| s.controller_name() == v1) {
                    Some(s) => s.to_controller().path().join(name),
                    None => return Ok(None),
                }
            }
        };
        let text = match fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CgroupError::ReadStat { file, source }),
        };
        match parse(&text) {
            Some(value) => Ok(Some(value)),
            None => {
                let text = text.trim().to_owned();
                Err(CgroupError::ParseStat { file, text })
            }
        }
    }

    fn sigkill(&self, pid: u32) -> Result<(), CgroupError> {
        // Kernel pids fit in i32 (pid_max <= 2^22).
        let Ok(raw) = i32::try_from(pid) else {
            return Ok(());
        };
        match signal::kill(Pid::from_raw(raw), Signal::SIGKILL) {
            Ok(()) | Err(Errno::ESRCH) => Ok(()),
            Err(source) => {
                let path = self.path.clone();
                Err(CgroupError::Signal { path, pid, source })
            }
        }
    }
}

/// `sysconf(_SC_CLK_TCK)`, the unit of v1 cpuacct.stat; USER_HZ is 100 where it fails.
fn clock_ticks_per_second() -> u64 {
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK);
    let hz = hz.ok().flatten().and_then(|hz| u64::try_from(hz).ok());
    hz.filter(|&hz| hz > 0).unwrap_or(100)
}

/// A file holding one number ("123\n").
fn number(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// A limit file: Some(None) when unlimited ("max" on v2, about i64::MAX on v1).
fn limit(text: &str) -> Option<Option<u64>> {
    match text.trim() {
        "max" => Some(None),
        value => value.parse().ok().map(|v| (v < V1_UNLIMITED).then_some(v)),
    }
}

/// The value of `key` in a flat keyed file ("key value" lines).
fn keyed(text: &str, key: &str) -> Option<u64> {
    let mut pairs = text.lines().filter_map(|line| line.split_once(' '));
    let (_, value) = pairs.find(|(k, _)| *k == key)?;
    value.trim().parse().ok()
}

/// Bytes read and written, summed over the devices of v2 io.stat
/// ("8:0 rbytes=1 wbytes=2 rios=3 ..." lines; no line when nothing was done).
fn io_v2(text: &str) -> Option<(u64, u64)> {
    let fields = text
        .lines()
        .flat_map(|line| line.split_whitespace().skip(1));
    let mut sum = (0u64, 0u64);
    for (key, value) in fields.filter_map(|field| field.split_once('=')) {
        match key {
            "rbytes" => sum.0 = sum.0.saturating_add(value.parse().ok()?),
            "wbytes" => sum.1 = sum.1.saturating_add(value.parse().ok()?),
            _ => {}
        }
    }
    Some(sum)
}

/// Bytes read and written, summed over the devices of v1 blkio.throttle.io_service_bytes
/// ("8:0 Read 1" lines per device and operation, then "Total 3").
fn io_v1(text: &str) -> Option<(u64, u64)> {
    let mut sum = (0u64, 0u64);
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields[..] {
            [_, "Read", n] => sum.0 = sum.0.saturating_add(n.parse().ok()?),
            [_, "Write", n] => sum.1 = sum.1.saturating_add(n.parse().ok()?),
            _ => {}
        }
    }
    Some(sum)
}

/// At daemon start: destroys every child cgroup directly under `parent` (left by a crashed
/// daemon) in any hierarchy, and returns their names, sorted. A missing parent is not an error.
/// Names that are not UTF-8 (never created by this module) are left alone.
pub fn sweep(parent: &str) -> Result<Vec<String>, CgroupError> {
    validate_path(parent)?;
    let mut names = Vec::new();
    for dir in SandboxCgroup::load(parent).dirs() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(CgroupError::ListChildren { dir, source }),
        };
        let list_err = |source| CgroupError::ListChildren {
            dir: dir.clone(),
            source,
        };
        for entry in entries {
            let entry = entry.map_err(list_err)?;
            if entry.file_type().map_err(list_err)?.is_dir() {
                names.extend(entry.file_name().to_str().map(str::to_owned));
            }
        }
    }
    names.sort();
    names.dedup();
    for name in &names {
        SandboxCgroup::load(&format!("{parent}/{name}")).destroy()?;
    }
    Ok(names)
}

#[cfg(test)]
mod tests;

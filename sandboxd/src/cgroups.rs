//! One cgroup per sandbox, created, limited, killed and removed through cgroups-rs (v1 and v2).
//!
//! A sandbox cgroup is `<parent>/<name>` under the hierarchy roots (never relative to the
//! daemon's own cgroup). On cgroup v1, including hybrid hosts, it exists once per hierarchy
//! (memory, pids, cpu, cpuacct, freezer); on v2 it is one directory under /sys/fs/cgroup with
//! memory, pids and cpu enabled along the parent chain. Sandbox cgroups are leaves: this module
//! never creates cgroups below them. Everything here needs root.

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

/// The v1 hierarchies a sandbox cgroup lives in; all but cpuacct are required (freezer makes
/// the kill race-free).
const V1_CONTROLLERS: &[&str] = &["memory", "pids", "cpu", "cpuacct", "freezer"];
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
    /// Memory limit in bytes; swap is turned off for the sandbox whenever this is set.
    pub memory: Option<u64>,
    /// Maximum number of processes (and threads).
    pub pids: Option<u64>,
    /// CPU bandwidth in CPUs, e.g. 1.5 (at least 0.01).
    pub cpus: Option<f64>,
}

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
            // The v1 memory_stat() falls back to defaults for files it cannot read.
            CgroupVersion::V1 => self
                .cg
                .controller_of::<MemController>()
                .map_or(0, |m| m.memory_stat().oom_control.oom_kill),
        }
    }

    /// SIGKILLs every process in this cgroup without racing against forks: v2 writes
    /// cgroup.kill (linux >= 5.14); older v2 kernels and v1 freeze the cgroup, kill each
    /// process, thaw, and repeat until it is empty (bounded). The processes may still be
    /// exiting on return. A cgroup that does not exist is Ok.
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
            // From the root down to the parent: the sandbox itself gets no children.
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
                    None => break,
                }
            }
        }
        let now = enabled()?;
        match V2_CONTROLLERS.iter().find(|c| missing(&now, c)) {
            Some(&controller) => {
                let path = self.path.clone();
                Err(CgroupError::ControllerUnavailable { path, controller })
            }
            None => Ok(()),
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
            // Swap off: v2 limits swap alone, v1 memory+swap. The file is missing when swap
            // accounting is off, and then there is no swap limit to set.
            let (file, swap) = match self.version {
                CgroupVersion::V2 => ("memory.swap.max", 0),
                CgroupVersion::V1 => ("memory.memsw.limit_in_bytes", bytes),
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
    fn kill_frozen(&self) -> Result<(), CgroupError> {
        let freezer = self.controller::<FreezerController>("freezer")?;
        let failed = |state| {
            let path = self.path.clone();
            move |source| CgroupError::Freezer {
                path,
                state,
                source,
            }
        };
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
mod tests {
    use std::io::Write;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Child, Command, Stdio};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    static NEXT: AtomicUsize = AtomicUsize::new(0);

    /// A unique parent cgroup `sandboxd-cgtest-<pid>-<n>[/nested]`, swept and removed on drop,
    /// also when the test fails.
    struct Parent(Vec<String>);

    impl Parent {
        fn new(nested: bool) -> Self {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let top = format!("sandboxd-cgtest-{}-{n}", std::process::id());
            let nested = nested.then(|| format!("{top}/nested"));
            Self([top].into_iter().chain(nested).collect())
        }

        fn path(&self) -> &str {
            self.0.last().expect("one level at least")
        }

        fn create(&self, name: &str, limits: &CgroupLimits) -> SandboxCgroup {
            SandboxCgroup::create(self.path(), name, limits).expect("create")
        }
    }

    impl Drop for Parent {
        fn drop(&mut self) {
            for level in self.0.iter().rev() {
                let _ = sweep(level);
                let _ = SandboxCgroup::load(level).destroy();
            }
        }
    }

    /// Whether privileged tests can run: skipped when not root, unless SANDBOX_TESTS_MUST_RUN=1.
    fn privileged() -> bool {
        let root = nix::unistd::geteuid().is_root();
        let must = std::env::var("SANDBOX_TESTS_MUST_RUN").is_ok_and(|v| v == "1");
        assert!(root || !must, "SANDBOX_TESTS_MUST_RUN=1 but not root");
        if !root {
            eprintln!("skipped: cgroup tests need root");
        }
        root
    }

    /// Reads `file` of `cg` in the v1 hierarchy `controller`, or in its v2 directory.
    fn read(cg: &SandboxCgroup, controller: &str, file: &str) -> Option<String> {
        let dir = match version() {
            CgroupVersion::V1 => Path::new("/sys/fs/cgroup").join(controller),
            CgroupVersion::V2 => PathBuf::from("/sys/fs/cgroup"),
        };
        let value = fs::read_to_string(dir.join(cg.path()).join(file)).ok();
        value.map(|s| s.trim().to_owned())
    }

    /// `sh -c script` that first waits for a line on stdin, so that it can be attached first.
    fn gated(script: &str) -> Child {
        let script = format!("read x; {script}");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &script]).stdin(Stdio::piped());
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        cmd.spawn().expect("spawn sh")
    }

    fn open_gate(child: &mut Child) {
        let stdin = child.stdin.as_mut().expect("piped stdin");
        stdin.write_all(b"go\n").expect("write the gate line");
    }

    fn limits(memory: Option<u64>, pids: Option<u64>, cpus: Option<f64>) -> CgroupLimits {
        CgroupLimits { memory, pids, cpus }
    }

    /// Expected files: "<v1 hierarchy> <v1 file> <value>|<v2 file> <value>". Swap files may be
    /// missing (swap accounting off).
    const LIMITED: &[&str] = &[
        "memory memory.limit_in_bytes 67108864|memory.max 67108864",
        "memory memory.memsw.limit_in_bytes 67108864|memory.swap.max 0",
        "pids pids.max 32|pids.max 32",
        "cpu cpu.cfs_quota_us 150000|cpu.max 150000 100000",
        "cpu cpu.cfs_period_us 100000|cpu.max 150000 100000",
        "freezer freezer.state THAWED|cgroup.freeze 0",
        "cpuacct cgroup.procs |cgroup.procs ",
    ];
    const UNLIMITED: &[&str] = &[
        "memory memory.limit_in_bytes 9223372036854771712|memory.max max",
        "pids pids.max max|pids.max max",
        "cpu cpu.cfs_quota_us -1|cpu.max max 100000",
    ];

    #[test]
    fn paths_and_cpus_are_checked_before_anything_is_created() {
        let bad = [
            ("", "a"),
            ("/abs", "a"),
            ("a//b", "c"),
            ("a/..", "b"),
            ("a", "b/c"),
        ];
        for (parent, name) in bad {
            let err = SandboxCgroup::create(parent, name, &limits(None, None, None)).unwrap_err();
            assert!(matches!(err, CgroupError::InvalidPath { .. }), "{err}");
        }
        for cpus in [0.0, 0.001, -1.0, f64::NAN, f64::INFINITY] {
            let limits = limits(None, None, Some(cpus));
            let err = SandboxCgroup::create("sandboxd-cgtest-none", "x", &limits).unwrap_err();
            assert!(matches!(err, CgroupError::InvalidCpus { .. }), "{err}");
        }
        assert!(!SandboxCgroup::load("sandboxd-cgtest-none").exists());
        assert!(!SandboxCgroup::load("../etc").exists());
        let err = sweep("a/../b").unwrap_err().to_string();
        assert_eq!(err, "invalid cgroup path \"a/../b\"");
        let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        assert_eq!(version().as_str(), if v2 { "v2" } else { "v1" });
    }

    #[test]
    fn limits_are_written_to_the_version_s_files() {
        if !privileged() {
            return;
        }
        let parent = Parent::new(true);
        let full = limits(Some(64 << 20), Some(32), Some(1.5));
        let cases = [(full, LIMITED), (CgroupLimits::default(), UNLIMITED)];
        for (i, (limits, files)) in cases.iter().enumerate() {
            let cg = parent.create(&format!("box{i}"), limits);
            assert_eq!(cg.path(), format!("{}/box{i}", parent.path()));
            for line in *files {
                let (v1, v2) = line.split_once('|').unwrap();
                let (controller, v1) = v1.split_once(' ').unwrap();
                let (file, want) = match version() {
                    CgroupVersion::V1 => v1.split_once(' ').unwrap(),
                    CgroupVersion::V2 => v2.split_once(' ').unwrap(),
                };
                match read(&cg, controller, file) {
                    Some(got) => assert_eq!(got, want, "{file}"),
                    None => assert!(file.contains("sw"), "{file} is missing"),
                }
            }
            let err = SandboxCgroup::create(parent.path(), &format!("box{i}"), limits);
            let err = err.unwrap_err();
            assert!(matches!(err, CgroupError::AlreadyExists { .. }), "{err}");
            cg.destroy().unwrap();
            assert!(!cg.exists());
            cg.destroy().unwrap();
            cg.kill_all().unwrap();
        }
    }

    #[test]
    fn failed_create_removes_the_cgroup() {
        if !privileged() {
            return;
        }
        let parent = Parent::new(false);
        // Above PIDS_MAX (2^22 + 1): the kernel refuses it after the directories exist.
        let limits = limits(None, Some(10_000_000), None);
        let err = SandboxCgroup::create(parent.path(), "box", &limits).unwrap_err();
        assert!(
            matches!(err, CgroupError::SetLimit { limit: "pids", .. }),
            "{err}"
        );
        assert!(!SandboxCgroup::load(&format!("{}/box", parent.path())).exists());
    }

    #[test]
    fn attached_process_is_listed_and_killed() {
        if !privileged() {
            return;
        }
        let parent = Parent::new(false);
        let cg = parent.create("box", &CgroupLimits::default());
        let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
        cg.attach(child.id()).unwrap();
        assert_eq!(cg.pids(), vec![child.id()]);
        // Loaded by path, as the per-sandbox helper does.
        SandboxCgroup::load(cg.path()).kill_all().unwrap();
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
        cg.destroy().unwrap();
        assert!(!cg.exists());
    }

    #[test]
    fn freezer_kill_gets_forked_children_too() {
        if !privileged() {
            return;
        }
        let parent = Parent::new(false);
        let cg = parent.create("box", &CgroupLimits::default());
        let mut child = gated("sleep 1000 & sleep 1000 & wait");
        cg.attach(child.id()).unwrap();
        open_gate(&mut child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while cg.pids().len() < 3 && Instant::now() < deadline {
            thread::sleep(POLL_INTERVAL);
        }
        assert_eq!(cg.pids().len(), 3, "{:?}", cg.pids());
        // The fallback of v2 kernels without cgroup.kill, and the only way on v1.
        cg.kill_frozen().unwrap();
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
        cg.destroy().unwrap();
        assert!(!cg.exists());
    }

    #[test]
    fn sweep_destroys_leftovers_with_live_processes() {
        if !privileged() {
            return;
        }
        let parent = Parent::new(false);
        let missing = format!("{}/missing", parent.path());
        assert_eq!(sweep(&missing).unwrap(), Vec::<String>::new());
        let busy = parent.create("busy", &CgroupLimits::default());
        let idle = parent.create("idle", &CgroupLimits::default());
        let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
        busy.attach(child.id()).unwrap();
        assert_eq!(sweep(parent.path()).unwrap(), vec!["busy", "idle"]);
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
        assert!(!busy.exists() && !idle.exists());
        assert_eq!(sweep(parent.path()).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn oom_kill_is_counted() {
        if !privileged() {
            return;
        }
        let parent = Parent::new(false);
        let cg = parent.create("box", &limits(Some(32 << 20), None, None));
        assert_eq!(cg.oom_kills(), 0);
        // tail keeps all of its newline-free input: 200 MiB against 32 MiB, swap off.
        let mut child = gated("head -c 209715200 /dev/zero | tail");
        cg.attach(child.id()).unwrap();
        open_gate(&mut child);
        let status = child.wait().unwrap();
        assert!(!status.success(), "{status:?}");
        assert!(cg.oom_kills() >= 1, "oom_kills = {}", cg.oom_kills());
        cg.destroy().unwrap();
    }
}

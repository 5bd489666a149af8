//! Long-lived sandboxes: the table of those `create` made, each with its live sandbox, its
//! cgroup, its execs and their output logs; and the watcher that releases everything a
//! sandbox had once it ends (destroy, TTL, idle timeout, its init dying, daemon shutdown).

use std::collections::{BTreeMap, HashMap};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use sandbox_proto::{CreateSpec, ExecInfo, Limits, Mount, Rootfs, SandboxInfo};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::cgroups::SandboxCgroup;
use crate::policy::{Allocation, Caller, Plan, RootPlan};
use crate::sandbox::live::{LiveSandbox, Monitor};
use crate::sandbox::outlog::OutLog;
use crate::sandbox::Registry;
use crate::store::Store;

/// Ended execs kept in a sandbox's record (the oldest are forgotten first).
pub const MAX_EXEC_RECORDS: usize = 256;

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// One exec of a kept sandbox.
#[derive(Debug)]
pub struct ExecRecord {
    /// What `inspect` shows.
    pub info: ExecInfo,
    /// Its output.
    pub log: Arc<OutLog>,
    /// The pty master of a tty exec (for resizes).
    pub master: Option<Arc<OwnedFd>>,
    /// The exec's stdin, until a client takes it.
    pub stdin: Mutex<Option<tokio::net::unix::pipe::Sender>>,
}

/// A sandbox made by `create`.
#[derive(Debug)]
pub struct Kept {
    /// Its id.
    pub id: String,
    /// The uid that created it.
    pub owner_uid: u32,
    /// Its plan (the environment every exec starts from, ids, limits).
    pub plan: Plan,
    /// What the client asked for.
    pub spec: CreateSpec,
    /// The running sandbox.
    pub live: LiveSandbox,
    /// Its cgroup.
    pub cgroup: SandboxCgroup,
    /// Where its execs' logs live.
    pub logs_dir: PathBuf,
    /// Creation time, ms.
    pub created_ms: u64,
    last_used_ms: AtomicU64,
    running: AtomicUsize,
    paused: AtomicBool,
    /// A record write is scheduled.
    dirty: AtomicBool,
    execs: Mutex<BTreeMap<u64, ExecRecord>>,
    gone: watch::Receiver<bool>,
}

impl Kept {
    /// Records a request about this sandbox (for the idle timeout).
    pub fn touch(&self) {
        self.last_used_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Whether the caller may see this sandbox: its owner, or root.
    pub fn visible_to(&self, caller: &Caller) -> bool {
        caller.uid == 0 || caller.uid == self.owner_uid
    }

    /// An exec started.
    pub fn add_exec(&self, exec_id: u64, record: ExecRecord) {
        self.running.fetch_add(1, Ordering::AcqRel);
        let mut execs = self.execs.lock().unwrap_or_else(|p| p.into_inner());
        execs.insert(exec_id, record);
        while execs.len() > MAX_EXEC_RECORDS {
            let Some(oldest) = execs
                .iter()
                .find(|(_, r)| r.info.exit.is_some())
                .map(|(id, _)| *id)
            else {
                break;
            };
            execs.remove(&oldest);
        }
    }

    /// An exec ended.
    pub fn end_exec(&self, exec_id: u64, status: sandbox_proto::ExitStatus) {
        if let Some(r) = self
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&exec_id)
        {
            r.info.next_seq = r.log.next_seq();
            r.info.exit = Some(status);
        }
        self.running.fetch_sub(1, Ordering::AcqRel);
        self.touch();
    }

    /// An exec's log and pty master, if the exec is known.
    pub fn exec(&self, exec_id: u64) -> Option<(Arc<OutLog>, Option<Arc<OwnedFd>>)> {
        self.execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&exec_id)
            .map(|r| (r.log.clone(), r.master.clone()))
    }

    /// Takes an exec's stdin (the first client that sends stdin gets it).
    pub fn take_stdin(&self, exec_id: u64) -> Option<tokio::net::unix::pipe::Sender> {
        let execs = self.execs.lock().unwrap_or_else(|p| p.into_inner());
        execs
            .get(&exec_id)
            .and_then(|r| r.stdin.lock().unwrap_or_else(|p| p.into_inner()).take())
    }

    /// Marks it paused or running.
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
    }

    /// Whether the TTL or the idle timeout has passed at `now`.
    pub fn expired(&self, now: u64) -> Option<&'static str> {
        if self
            .plan
            .ttl_ms
            .is_some_and(|ttl| now >= self.created_ms.saturating_add(ttl))
        {
            return Some("ttl");
        }
        let idle = self.running.load(Ordering::Acquire) == 0
            && self.plan.idle_timeout_ms.is_some_and(|t| {
                now >= self.last_used_ms.load(Ordering::Relaxed).saturating_add(t)
            });
        idle.then_some("idle timeout")
    }

    /// Ends the sandbox: thaws it first (on cgroup v1 a frozen process cannot die), then kills
    /// its init, and with it everything. The watcher releases the rest.
    pub async fn terminate(self: &Arc<Self>) {
        if self.paused.load(Ordering::Relaxed) {
            let k = self.clone();
            let _ = tokio::task::spawn_blocking(move || k.cgroup.thaw()).await;
        }
        self.live.kill().await;
    }

    /// Waits until everything of the sandbox is released.
    pub async fn wait_gone(&self) {
        let mut gone = self.gone.clone();
        let _ = gone.wait_for(|g| *g).await;
    }

    /// What `list` and `inspect` show.
    pub fn info(&self) -> SandboxInfo {
        let execs = self.execs.lock().unwrap_or_else(|p| p.into_inner());
        SandboxInfo {
            sandbox_id: self.id.clone(),
            state: if self.paused.load(Ordering::Relaxed) {
                "paused"
            } else {
                "running"
            }
            .into(),
            owner_uid: self.owner_uid,
            created_unix_ms: self.created_ms,
            last_used_unix_ms: self.last_used_ms.load(Ordering::Relaxed),
            ttl_ms: self.plan.ttl_ms,
            idle_timeout_ms: self.plan.idle_timeout_ms,
            policy: self.plan.policy.clone(),
            filesystem: self.plan.fs_mode,
            network: self.plan.network,
            capabilities: self.plan.capabilities.clone(),
            annotations: self.spec.annotations.clone(),
            hostname: self.plan.hostname.clone(),
            rootfs: match &self.plan.rootfs {
                RootPlan::Host => Rootfs::Host,
                RootPlan::Path(p) => Rootfs::Path { path: p.clone() },
            },
            mounts: self
                .plan
                .mounts
                .iter()
                .map(|m| Mount {
                    host: m.host.clone(),
                    sandbox: m.sandbox.clone(),
                    read_only: m.read_only,
                })
                .collect(),
            limits: Limits {
                memory: self.plan.limits.memory,
                pids: self.plan.limits.pids,
                cpus: self.plan.limits.cpus,
                timeout_ms: None,
                workspace_size: self.plan.workspace_size,
                swap: Some(self.plan.limits.swap),
                tmp_size: Some(self.plan.tmp_size),
                shm_size: Some(self.plan.shm_size),
                open_files: Some(self.plan.nofile),
            },
            host_uid_base: self.plan.ids.host_base,
            cgroup: self.plan.cgroup.clone(),
            init_pid: u32::try_from(self.live.init_pid).unwrap_or(0),
            execs: execs
                .values()
                .map(|r| {
                    let mut i = r.info.clone();
                    i.next_seq = r.log.next_seq();
                    i
                })
                .collect(),
        }
    }
}

/// What is kept on disk about a sandbox (`store`): enough for a restarted daemon to find
/// everything it created — its plan (ids, cgroup, mounts), the processes by pid and start
/// time (a pid alone could be reused), and its execs.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// What `inspect` shows, execs included.
    pub info: SandboxInfo,
    /// The plan it was built from.
    pub plan: Plan,
    /// Host pid of its sandbox-init and that process's start time (`/proc/PID/stat`
    /// field 22), which together identify it.
    pub init: (i32, u64),
}

/// Start time of a process in clock ticks since boot (field 22 of `/proc/PID/stat`).
pub fn start_time(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (field 2) may hold spaces: count fields after its closing ')'.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(19))
        .and_then(|f| f.parse().ok())
        .unwrap_or(0)
}

impl Kept {
    /// The record to keep on disk.
    pub fn record(&self) -> Record {
        Record {
            info: self.info(),
            plan: self.plan.clone(),
            init: (self.live.init_pid, start_time(self.live.init_pid)),
        }
    }

    /// Execs running now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }
}

/// Writes a sandbox's record again, at most about once a second per sandbox (an fsync'd
/// rewrite per exec would cost each exec a millisecond): the first change schedules a write a
/// second later, which takes in every change made meanwhile.
pub fn save_later(kept: &Arc<Kept>, store: &Arc<Store>) {
    if kept.dirty.swap(true, Ordering::AcqRel) {
        return;
    }
    let (k, store) = (kept.clone(), store.clone());
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        k.dirty.store(false, Ordering::Release);
        if *k.gone.borrow() {
            return;
        }
        let k2 = k.clone();
        let saved = tokio::task::spawn_blocking(move || store.save(&k2.id, &k2.record())).await;
        if let Ok(Err(e)) = saved {
            warn!(sandbox = %k.id, error = crate::isolation::ipc::chain(&e), "saving the state record");
        }
    });
}

/// The kept sandboxes by id.
#[derive(Debug, Default)]
pub struct KeptTable {
    map: Mutex<HashMap<String, Arc<Kept>>>,
}

impl KeptTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Kept>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The sandbox, if it exists and the caller may see it (otherwise the same "not found").
    pub fn get(&self, caller: &Caller, id: &str) -> Option<Arc<Kept>> {
        self.lock()
            .get(id)
            .filter(|k| k.visible_to(caller))
            .cloned()
    }

    /// The caller's sandboxes (root: all), by id.
    pub fn list(&self, caller: &Caller) -> Vec<Arc<Kept>> {
        let mut v: Vec<_> = self
            .lock()
            .values()
            .filter(|k| k.visible_to(caller))
            .cloned()
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Every sandbox.
    pub fn all(&self) -> Vec<Arc<Kept>> {
        self.lock().values().cloned().collect()
    }

    /// How many sandboxes `uid` has.
    pub fn count_of(&self, uid: u32) -> usize {
        self.lock().values().filter(|k| k.owner_uid == uid).count()
    }

    /// How many execs run now in the sandboxes of `uid`.
    pub fn running_execs_of(&self, uid: u32) -> usize {
        self.lock()
            .values()
            .filter(|k| k.owner_uid == uid)
            .map(|k| k.running())
            .sum()
    }
}

/// What a new kept sandbox is made of.
#[derive(Debug)]
pub struct Parts {
    /// Who created it.
    pub owner: Caller,
    /// Its reservation in the registry.
    pub alloc: Allocation,
    /// Its plan.
    pub plan: Plan,
    /// The request.
    pub spec: CreateSpec,
    /// The running sandbox and its monitor.
    pub live: (LiveSandbox, Monitor),
    /// Its cgroup.
    pub cgroup: SandboxCgroup,
}

/// Adds a new sandbox to the table and starts its watcher: when the sandbox ends, for
/// whatever reason, the watcher destroys its cgroup, removes its record and logs, frees its
/// uid range and takes it out of the table.
pub fn adopt(
    table: &Arc<KeptTable>,
    registry: &Arc<Registry>,
    store: &Arc<Store>,
    log_root: &std::path::Path,
    parts: Parts,
) -> Result<Arc<Kept>, crate::store::StoreError> {
    let Parts {
        owner,
        alloc,
        plan,
        spec,
        live: (live, monitor),
        cgroup,
    } = parts;
    let logs_dir = log_root.join(&alloc.sandbox_id);
    let (gone_tx, gone) = watch::channel(false);
    let now = now_ms();
    let kept = Arc::new(Kept {
        id: alloc.sandbox_id.clone(),
        owner_uid: owner.uid,
        plan,
        spec,
        live,
        cgroup,
        logs_dir,
        created_ms: now,
        last_used_ms: AtomicU64::new(now),
        running: AtomicUsize::new(0),
        paused: AtomicBool::new(false),
        dirty: AtomicBool::new(false),
        execs: Mutex::new(BTreeMap::new()),
        gone,
    });
    table.lock().insert(kept.id.clone(), kept.clone());
    store.save(&kept.id, &kept.record())?;
    let (table, registry, store, k) =
        (table.clone(), registry.clone(), store.clone(), kept.clone());
    tokio::spawn(async move {
        monitor.wait().await;
        release(&k, &store).await;
        table.lock().remove(&k.id);
        registry.release(&alloc);
        info!(sandbox = %k.id, "sandbox destroyed");
        let _ = gone_tx.send(true);
    });
    Ok(kept)
}

/// Everything of an ended sandbox: its cgroup (thawed first), its record, its logs.
async fn release(k: &Arc<Kept>, store: &Arc<Store>) {
    let (k2, store2) = (k.clone(), store.clone());
    let r = tokio::task::spawn_blocking(move || {
        let _ = k2.cgroup.thaw();
        let cg = k2.cgroup.destroy();
        let rec = store2.remove(&k2.id);
        let logs = match std::fs::remove_dir_all(&k2.logs_dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
        (cg, rec, logs)
    })
    .await;
    if let Ok((cg, rec, logs)) = r {
        if let Err(e) = cg {
            warn!(sandbox = %k.id, error = crate::isolation::ipc::chain(&e), "destroying the cgroup");
        }
        if let Err(e) = rec {
            warn!(sandbox = %k.id, error = crate::isolation::ipc::chain(&e), "removing the state record");
        }
        if let Err(e) = logs {
            warn!(sandbox = %k.id, error = %e, "removing the exec logs");
        }
    }
}

/// Kills sandboxes whose TTL or idle timeout has passed, forever (a daemon task).
pub async fn reaper(table: Arc<KeptTable>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    loop {
        tick.tick().await;
        let now = now_ms();
        for k in table.all() {
            if let Some(why) = k.expired(now) {
                info!(sandbox = %k.id, why, "expired; destroying");
                k.terminate().await;
            }
        }
    }
}

//! Sandbox lifecycle on the daemon side: the registry of live sandboxes and their uid ranges
//! (this file), and one file per verb (`run`). Owns no system calls beyond what tokio does.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::sync::Mutex;

use sandbox_proto::SandboxSummary;

use crate::config::Config;
use crate::policy::Allocation;

/// `create` and `destroy` of long-lived sandboxes.
pub mod create;
/// `exec` and `attach` in a long-lived sandbox; output through its log.
pub mod exec;
/// `export_bundle` (a sandbox's OCI form) and `policy` (a policy with its defaults).
pub mod export;
/// The table of long-lived sandboxes, their execs, their watcher and reaper.
pub mod kept;
/// The connection-to-run link: shared credit counters, the stdin queue, signals.
pub mod link;
/// A live sandbox: its helper, its sandbox-init, execs.
pub mod live;
/// Single-answer calls: export_bundle, policy, list, inspect, stats, signal, pause, resume, files.
pub mod ops;
/// Per-exec output logs with sequence numbers: replay and live follow.
pub mod outlog;
/// One-shot runs: create, stream, exit, destroy.
pub mod run;

/// The registry refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Every uid range is in use.
    #[error("all {0} sandbox slots are in use")]
    Full(u32),
    /// The daemon is shutting down.
    #[error("the daemon is shutting down")]
    ShuttingDown,
}

#[derive(Debug, Default)]
struct Inner {
    used_slots: BTreeSet<u32>,
    live: HashMap<String, SandboxSummary>,
    closed: bool,
}

/// Live sandboxes and the uid ranges they hold. A range is never given to two live sandboxes.
#[derive(Debug)]
pub struct Registry {
    max: u32,
    uid_base: u32,
    inner: Mutex<Inner>,
}

pub(crate) fn random_id() -> String {
    let mut b = [0u8; 6];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        // Unique enough as a fallback: the clock's nanoseconds and our pid.
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        b[..4].copy_from_slice(&n.to_le_bytes());
        b[4..].copy_from_slice(&(std::process::id() as u16).to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Registry {
    /// An empty registry for `cfg`'s limits.
    pub fn new(cfg: &Config) -> Self {
        Registry {
            max: cfg.max_sandboxes,
            uid_base: cfg.uid_base,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves an id and the lowest free uid range for a new sandbox of `owner_uid`.
    pub fn allocate(
        &self,
        owner_uid: u32,
        cgroup_parent: &str,
    ) -> Result<Allocation, RegistryError> {
        let mut inner = self.lock();
        if inner.closed {
            return Err(RegistryError::ShuttingDown);
        }
        let slot = (0..self.max)
            .find(|s| !inner.used_slots.contains(s))
            .ok_or(RegistryError::Full(self.max))?;
        let mut sandbox_id = random_id();
        while inner.live.contains_key(&sandbox_id) {
            sandbox_id = random_id();
        }
        inner.used_slots.insert(slot);
        inner.live.insert(
            sandbox_id.clone(),
            SandboxSummary {
                sandbox_id: sandbox_id.clone(),
                owner_uid,
                host_uid_base: self.uid_base + slot * Config::IDS_PER_SANDBOX,
                cgroup: format!("{cgroup_parent}/{sandbox_id}"),
                init_pid: 0,
            },
        );
        Ok(Allocation { sandbox_id, slot })
    }

    /// Records the host pid of a sandbox's init.
    pub fn set_init_pid(&self, sandbox_id: &str, pid: u32) {
        if let Some(s) = self.lock().live.get_mut(sandbox_id) {
            s.init_pid = pid;
        }
    }

    /// Frees a sandbox's id and uid range; call only once everything of it is gone.
    pub fn release(&self, alloc: &Allocation) {
        let mut inner = self.lock();
        inner.live.remove(&alloc.sandbox_id);
        inner.used_slots.remove(&alloc.slot);
    }

    /// Live sandboxes, by id.
    pub fn summaries(&self) -> Vec<SandboxSummary> {
        let mut v: Vec<_> = self.lock().live.values().cloned().collect();
        v.sort_by(|a, b| a.sandbox_id.cmp(&b.sandbox_id));
        v
    }

    /// How many sandboxes are live.
    pub fn len(&self) -> usize {
        self.lock().live.len()
    }

    /// Whether none is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Refuses new sandboxes from now on (shutdown).
    pub fn close(&self) {
        self.lock().closed = true;
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn slots_are_unique_and_reused_after_release() {
        let cfg = Config::parse_from(["sandboxd", "--max-sandboxes", "2"]);
        let r = Registry::new(&cfg);
        let a = r.allocate(0, "p").unwrap();
        let b = r.allocate(0, "p").unwrap();
        assert_ne!(a.slot, b.slot);
        assert_ne!(a.sandbox_id, b.sandbox_id);
        assert_eq!(r.allocate(0, "p").unwrap_err(), RegistryError::Full(2));
        r.release(&a);
        let c = r.allocate(7, "p").unwrap();
        assert_eq!(c.slot, a.slot);
        let s = r.summaries();
        assert_eq!(s.len(), 2);
        assert!(s
            .iter()
            .any(|x| x.owner_uid == 7 && x.host_uid_base == cfg.uid_base + c.slot * 65536));
        r.close();
        assert_eq!(r.allocate(0, "p").unwrap_err(), RegistryError::ShuttingDown);
    }
}

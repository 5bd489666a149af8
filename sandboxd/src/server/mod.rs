//! The daemon: socket setup, the accept loop, and graceful shutdown. tokio only; the sandboxes
//! themselves are made by helper processes (`isolation::spawn`).

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::fcntl::{Flock, FlockArg};
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{watch, Semaphore};
use tracing::{info, warn};

use crate::config::Config;
use crate::sandbox::kept::KeptTable;
use crate::sandbox::live::{InitAssets, Zygote};
use crate::sandbox::run::RunContext;
use crate::sandbox::Registry;
use crate::store::Store;

/// One client connection.
mod conn;

/// How long shutdown waits for sandboxes to be torn down.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Shared daemon state.
#[derive(Debug)]
pub struct Daemon {
    /// What every request handler needs.
    pub ctx: RunContext,
    /// Configuration.
    pub cfg: Arc<Config>,
    /// Live sandboxes.
    pub registry: Arc<Registry>,
    /// Becomes true at shutdown.
    pub shutdown: watch::Receiver<bool>,
    /// sandbox-init's sealed executable and the configuration every sandbox's init gets.
    pub init: Arc<InitAssets>,
}

/// The sealed sandbox-init and its configuration, made once (the seccomp profile is compiled
/// here rather than per sandbox), and the zygote that forks helpers.
fn init_assets() -> anyhow::Result<InitAssets> {
    // Compiled here once, so a broken embedded profile stops the daemon at start.
    for (name, _) in crate::isolation::seccomp::PROFILES {
        crate::isolation::seccomp::program_for(name)
            .with_context(|| format!("compiling the seccomp profile {name}"))?;
    }
    let memfd = crate::isolation::initbin::sealed_memfd().context("preparing sandbox-init")?;
    // Helpers are forked by a zygote; without one (it could not start), each is an exec.
    let zygote = match Zygote::start() {
        Ok(z) => Some(z),
        Err(e) => {
            warn!(error = %e, "no zygote: each sandbox's helper will be an exec of sandboxd");
            None
        }
    };
    Ok(InitAssets { memfd, zygote })
}

fn prepare_dirs(cfg: &Config) -> anyhow::Result<Flock<std::fs::File>> {
    std::fs::create_dir_all(&cfg.state_dir)
        .with_context(|| format!("creating {}", cfg.state_dir.display()))?;
    // 0711: sandbox ids (unprivileged on the host) must traverse it to reach `root`, and
    // nothing else.
    std::fs::set_permissions(&cfg.state_dir, std::fs::Permissions::from_mode(0o711))?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(cfg.state_dir.join("sandboxd.lock"))
        .context("opening the state lock")?;
    let lock = Flock::lock(lock, FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| e)
        .with_context(|| format!("another sandboxd uses {}", cfg.state_dir.display()))?;
    let root = cfg.root_dir();
    std::fs::create_dir_all(&root)?;
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755))?;
    check_searchable(&root)?;
    if let Some(dir) = cfg.socket.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(lock)
}

/// Each sandbox's init, as an unprivileged host uid, mounts its root on `root`: every directory
/// above it must be searchable by others. Better to say so at start than per sandbox.
fn check_searchable(root: &std::path::Path) -> anyhow::Result<()> {
    let abs = std::fs::canonicalize(root)?;
    for dir in abs.ancestors().skip(1) {
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o001 == 0 {
            anyhow::bail!(
                "{} (mode {:o}) is not searchable by others; sandboxes could not reach {}: use another --state-dir or chmod o+x",
                dir.display(),
                mode & 0o7777,
                abs.display()
            );
        }
    }
    Ok(())
}

fn bind(cfg: &Config) -> anyhow::Result<UnixListener> {
    // We hold the state lock, so a socket file left here is a dead daemon's.
    if cfg.socket.exists() {
        std::fs::remove_file(&cfg.socket)
            .with_context(|| format!("removing stale {}", cfg.socket.display()))?;
    }
    let listener = UnixListener::bind(&cfg.socket)
        .with_context(|| format!("binding {}", cfg.socket.display()))?;
    let group = nix::unistd::Group::from_name(&cfg.group).ok().flatten();
    let mode = match &group {
        Some(g) => {
            nix::unistd::chown(
                &cfg.socket,
                Some(nix::unistd::Uid::from_raw(0)),
                Some(g.gid),
            )
            .context("chown of the socket")?;
            0o660
        }
        None => {
            warn!(
                group = cfg.group,
                "group does not exist; the socket is root-only (0600)"
            );
            0o600
        }
    };
    std::fs::set_permissions(&cfg.socket, std::fs::Permissions::from_mode(mode))?;
    Ok(listener)
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let _lock = prepare_dirs(&cfg)?;
    let parent = cfg.cgroup_parent.clone();
    let swept = tokio::task::spawn_blocking(move || crate::cgroups::sweep(&parent)).await??;
    if !swept.is_empty() {
        warn!(count = swept.len(), cgroups = ?swept, "removed cgroups left by a previous daemon");
    }
    let init = Arc::new(init_assets()?);
    // A default policy that does not load would fail every request that names none.
    crate::sandbox::run::load_named(&cfg, &cfg.default_policy)
        .map_err(|f| anyhow::anyhow!("the default policy: {}", f.message))?;
    let listener = bind(&cfg)?;
    let (shutdown_tx, shutdown) = watch::channel(false);
    let cfg = Arc::new(cfg);
    let store = Arc::new(Store::open(&cfg.state_dir).context("opening the state store")?);
    forget_lost(&store, &cfg.exec_log_dir());
    let registry = Arc::new(Registry::new(&cfg));
    let kept = Arc::new(KeptTable::default());
    let ctx = RunContext {
        cfg: cfg.clone(),
        registry: registry.clone(),
        shutdown: shutdown.clone(),
        init: init.clone(),
        kept: kept.clone(),
        store,
    };
    let daemon = Arc::new(Daemon {
        ctx,
        cfg: cfg.clone(),
        registry,
        shutdown,
        init,
    });
    let reaper = tokio::spawn(crate::sandbox::kept::reaper(kept.clone()));
    let connections = Arc::new(Semaphore::new(cfg.max_connections));
    info!(
        socket = %cfg.socket.display(),
        cgroup = crate::cgroups::version().as_str(),
        parent = cfg.cgroup_parent,
        "sandboxd {} listening",
        env!("CARGO_PKG_VERSION")
    );
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => match connections.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let d = daemon.clone();
                        tokio::spawn(async move {
                            conn::serve(d, stream).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        warn!("connection limit reached; refusing a client");
                        tokio::spawn(refuse(stream));
                    }
                },
                Err(e) => warn!(error = %e, "accept"),
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    info!("shutting down: killing {} sandboxes", daemon.registry.len());
    daemon.registry.close();
    let _ = shutdown_tx.send(true);
    reaper.abort();
    crate::sandbox::create::kill_all(&kept).await;
    drop(listener);
    let _ = std::fs::remove_file(&cfg.socket);
    let start = Instant::now();
    while !daemon.registry.is_empty() && start.elapsed() < SHUTDOWN_GRACE {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if !daemon.registry.is_empty() {
        warn!(
            left = daemon.registry.len(),
            "sandboxes still alive after the grace period"
        );
    }
    // Whatever is left (a helper that did not answer) goes with its cgroup.
    let parent = cfg.cgroup_parent.clone();
    let _ = tokio::task::spawn_blocking(move || crate::cgroups::sweep(&parent)).await;
    remove_parent(&cfg.cgroup_parent);
    info!("stopped");
    Ok(())
}

/// Records of sandboxes a previous daemon left: their processes died with it (each helper
/// kills its sandbox when the daemon goes away) and `sweep` removed their cgroups; what is
/// left is their records and logs. (Restart recovery will re-adopt instead.)
fn forget_lost(store: &Store, log_root: &std::path::Path) {
    for id in store.ids().unwrap_or_default() {
        warn!(
            sandbox = id,
            "sandbox lost with the previous daemon; removing its record and logs"
        );
        let _ = store.remove(&id);
        let _ = std::fs::remove_dir_all(log_root.join(&id));
    }
}

/// Removes the daemon's own parent cgroup, which `sweep` has just emptied.
fn remove_parent(parent: &str) {
    if let Err(e) = crate::cgroups::SandboxCgroup::load(parent).destroy() {
        warn!(
            parent,
            error = crate::isolation::ipc::chain(&e),
            "removing the parent cgroup"
        );
    }
}

async fn refuse(stream: tokio::net::UnixStream) {
    let mut stream = stream;
    let msg = sandbox_proto::Response::Error {
        id: None,
        code: sandbox_proto::ErrorCode::ResourceExhausted,
        message: "too many connections".into(),
    };
    if let Ok(frame) = sandbox_proto::encode(&msg) {
        let _ = sandbox_proto::codec::write_frame_async(&mut stream, &frame).await;
    }
}

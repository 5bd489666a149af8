//! `Run`: create a sandbox for one command, stream its output under flow control, feed its
//! stdin, enforce the timeout, report the exit, and destroy everything it had.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use sandbox_proto::init::{ExecRequest, FromInit};
use sandbox_proto::{
    ErrorCode, ExitStatus, PolicyRef, Response, RunSpec, Stream, MAX_OUTPUT_CHUNK,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::cgroups::SandboxCgroup;
use crate::config::Config;
use crate::isolation::ipc::{self, HelperEvent};
use crate::policy::{self, Allocation, Caller, DirPerm, HostDirFacts, Plan, PolicyError, RootPlan};
use crate::sandbox::link::{Control, LinkRx, RunLink};
use crate::sandbox::live::{Failure, InitAssets, LiveSandbox, Monitor};
use crate::sandbox::Registry;

/// What a run needs from the daemon.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// Configuration.
    pub cfg: Arc<Config>,
    /// Live sandboxes.
    pub registry: Arc<Registry>,
    /// Becomes true when the daemon shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// sandbox-init's sealed executable and configuration.
    pub init: Arc<InitAssets>,
    /// Long-lived sandboxes.
    pub kept: Arc<crate::sandbox::kept::KeptTable>,
    /// State records.
    pub store: Arc<crate::store::Store>,
}

/// Largest inline policy text accepted.
pub const MAX_INLINE_POLICY: usize = 256 << 10;

impl RunContext {
    /// The policy a request names (`None`: the daemon's default). A named policy comes from
    /// `--policy-dir` (or the shipped set when that directory does not exist); an inline one
    /// only from root, since a policy is what bounds a client.
    pub fn policy_for(
        &self,
        caller: &Caller,
        r: Option<&PolicyRef>,
    ) -> Result<sandbox_policy::Policy, Failure> {
        let invalid = |msg: String| Failure::new(ErrorCode::InvalidArgument, msg);
        match r {
            None => load_named(&self.cfg, &self.cfg.default_policy),
            Some(PolicyRef::Name { name }) => {
                // A name only: a path would let a client make the daemon read any file.
                if name.contains('/') {
                    return Err(invalid(format!(
                        "policy: {name:?} is not a policy name (a policy file is sent inline)"
                    )));
                }
                load_named(&self.cfg, name)
            }
            Some(PolicyRef::Inline { source, text }) => {
                if caller.uid != 0 {
                    return Err(Failure::new(
                        ErrorCode::PermissionDenied,
                        "policy: only root may send a policy inline; name one of the daemon's",
                    ));
                }
                if text.len() > MAX_INLINE_POLICY {
                    return Err(invalid(format!(
                        "policy: {source}: larger than {MAX_INLINE_POLICY} bytes"
                    )));
                }
                let name = std::path::Path::new(source)
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "inline".into());
                sandbox_policy::Policy::parse(&name, source, text)
                    .map_err(|e| invalid(format!("policy: {e}")))
            }
        }
    }
}

/// Loads the policy `name` as the daemon's configuration says. A parsed policy is kept and
/// reused while its file's size and modification time stay the same (the shipped ones, used
/// when the policy directory does not exist, for good): parsing one costs more than the rest
/// of planning a sandbox.
pub fn load_named(cfg: &Config, name: &str) -> Result<sandbox_policy::Policy, Failure> {
    use std::collections::HashMap;
    use std::os::unix::fs::MetadataExt;
    use std::sync::Mutex;
    type Stamp = (i64, i64, u64);
    static CACHE: Mutex<Option<HashMap<String, (Stamp, sandbox_policy::Policy)>>> =
        Mutex::new(None);
    // One stat of the directory, one of the file: what decides whether the cached copy holds.
    let file = cfg.policy_dir.join(format!("{name}.toml"));
    let (key, stamp): (String, Option<Stamp>) = if cfg.policy_dir.exists() {
        let stamp = std::fs::metadata(&file)
            .ok()
            .map(|m| (m.mtime(), m.mtime_nsec(), m.size()));
        (file.to_string_lossy().into_owned(), stamp)
    } else {
        (format!("(shipped) {name}"), Some((0, 0, 0)))
    };
    // A name that is not a policy name goes straight to `load`, which says why.
    let stamp = stamp.filter(|_| sandbox_policy::is_policy_name(name));
    if let Some(stamp) = stamp {
        let cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((s, p)) = cache.as_ref().and_then(|c| c.get(&key)) {
            if *s == stamp {
                return Ok(p.clone());
            }
        }
    }
    let policy = sandbox_policy::load(Some(&cfg.policy_dir), name).map_err(|e| {
        let code = match e {
            sandbox_policy::LoadError::NotFound { .. } => ErrorCode::NotFound,
            _ => ErrorCode::InvalidArgument,
        };
        Failure::new(code, format!("policy: {e}"))
    })?;
    if let Some(stamp) = stamp {
        let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
        let map = cache.get_or_insert_with(HashMap::new);
        // Bounded: one entry per policy file; a directory of thousands is not expected.
        if map.len() >= 1024 {
            map.clear();
        }
        map.insert(key, (stamp, policy.clone()));
    }
    Ok(policy)
}

impl From<PolicyError> for Failure {
    fn from(e: PolicyError) -> Self {
        let code = match e {
            PolicyError::Invalid { .. } => ErrorCode::InvalidArgument,
            PolicyError::Denied { .. } => ErrorCode::PermissionDenied,
            PolicyError::Bound { .. } => ErrorCode::PolicyViolation,
        };
        Failure::new(code, e.to_string())
    }
}

/// Runs one command in a new sandbox; sends `Started`, `Output`s and `Exit` (or one `Error`)
/// on `out`. Returns when the sandbox is gone.
pub async fn run(
    ctx: RunContext,
    caller: Caller,
    id: u64,
    spec: RunSpec,
    out: mpsc::Sender<Response>,
    link: LinkRx,
) {
    let shared = link.link.clone();
    let alloc = match ctx.registry.allocate(caller.uid, &ctx.cfg.cgroup_parent) {
        Ok(a) => a,
        Err(e) => {
            let code = match e {
                super::RegistryError::Full(_) => ErrorCode::ResourceExhausted,
                super::RegistryError::ShuttingDown => ErrorCode::ShuttingDown,
            };
            let _ = out
                .send(Response::Error {
                    id: Some(id),
                    code,
                    message: e.to_string(),
                })
                .await;
            shared.finish();
            return;
        }
    };
    let argv0 = spec.argv.first().cloned().unwrap_or_default();
    info!(id, sandbox = %alloc.sandbox_id, argv0, "run");
    let t0 = Instant::now();
    let mut ending = None;
    let (result, cgroup) = match prepare(&ctx, &caller, &spec, &alloc).await {
        Ok((plan, cgroup)) => {
            debug!(us = t0.elapsed().as_micros(), "cgroup ready");
            let r = supervise(
                &ctx,
                &plan,
                &cgroup,
                id,
                spec.stdin,
                &out,
                link,
                &mut ending,
            )
            .await;
            debug!(us = t0.elapsed().as_micros(), "command ended");
            (r, Some(cgroup))
        }
        Err(f) => (Err(f), None),
    };
    // The command has ended and its output is delivered; the sandbox is being killed. The
    // client hears of the end at once; the teardown (init's pid namespace, the cgroup
    // directory, the uid range) follows.
    match result {
        Ok(Some(status)) => {
            info!(id, sandbox = %alloc.sandbox_id, code = status.shell_code(), ms = status.duration_ms, "exit");
            let _ = out.send(Response::Exit { id, status }).await;
        }
        Ok(None) => {
            info!(id, sandbox = %alloc.sandbox_id, "abandoned by its client; killed")
        }
        Err(f) => {
            info!(id, sandbox = %alloc.sandbox_id, code = %f.code, error = %f.message, "run failed");
            let _ = out.send(f.into_response(id)).await;
        }
    }
    shared.finish();
    if let Some(monitor) = ending {
        monitor.wait().await;
        debug!(us = t0.elapsed().as_micros(), "sandbox gone");
    }
    if let Some(cgroup) = cgroup {
        destroy(cgroup).await;
        debug!(us = t0.elapsed().as_micros(), "cgroup destroyed");
    }
    // The uid range is reused only once nothing of the sandbox is left.
    ctx.registry.release(&alloc);
}

/// Policy, host-path checks and the cgroup.
async fn prepare(
    ctx: &RunContext,
    caller: &Caller,
    spec: &RunSpec,
    alloc: &Allocation,
) -> Result<(Plan, SandboxCgroup), Failure> {
    let pol = ctx.policy_for(caller, spec.policy.as_ref())?;
    let plan = policy::plan(spec, &pol, caller, &ctx.cfg, alloc)?;
    prepare_plan(ctx, caller, plan, alloc).await
}

/// Checks a plan's host paths for `caller` (recording the folders' identities) and creates
/// the sandbox's cgroup.
pub async fn prepare_plan(
    ctx: &RunContext,
    caller: &Caller,
    mut plan: Plan,
    alloc: &Allocation,
) -> Result<(Plan, SandboxCgroup), Failure> {
    check_paths(caller, &mut plan)?;
    let (parent, name, limits) = (
        ctx.cfg.cgroup_parent.clone(),
        alloc.sandbox_id.clone(),
        plan.limits.clone(),
    );
    let cgroup =
        tokio::task::spawn_blocking(move || SandboxCgroup::create(&parent, &name, &limits))
            .await
            .map_err(|e| Failure::new(ErrorCode::Internal, e.to_string()))?
            .map_err(|e| Failure::new(ErrorCode::SpawnFailed, ipc::chain(&e)))?;
    Ok((plan, cgroup))
}

/// Checks the plan's host folders and root filesystem directory for `caller`, recording the
/// folders' identities.
pub fn check_paths(caller: &Caller, plan: &mut Plan) -> Result<(), Failure> {
    for (i, m) in plan.mounts.iter_mut().enumerate() {
        let field = format!("mounts[{i}].host");
        let meta = std::fs::symlink_metadata(&m.host).map_err(|e| {
            Failure::new(
                ErrorCode::InvalidArgument,
                format!("{field}: {}: {e}", m.host),
            )
        })?;
        policy::check_host_dir(
            &field,
            &HostDirFacts {
                is_dir: meta.is_dir(),
                uid: meta.uid(),
            },
            caller,
        )?;
        policy::check_reachable(&field, &m.host, &dir_chain(&m.host), caller)?;
        m.dev = meta.dev();
        m.ino = meta.ino();
    }
    if let RootPlan::Path(p) = &plan.rootfs {
        let ok = std::fs::metadata(p).map(|m| m.is_dir()).unwrap_or(false);
        if !ok {
            return Err(Failure::new(
                ErrorCode::InvalidArgument,
                format!("rootfs.path: {p} is not a directory"),
            ));
        }
        policy::check_reachable("rootfs.path", p, &dir_chain(p), caller)?;
    }
    Ok(())
}

/// Owner and mode of `/` and of every directory down to `path` (not following a final
/// symlink; an unreadable step is treated as unsearchable).
fn dir_chain(path: &str) -> Vec<DirPerm> {
    let p = std::path::Path::new(path);
    let mut chain: Vec<DirPerm> = p
        .ancestors()
        .map(|a| match std::fs::symlink_metadata(a) {
            Ok(m) => DirPerm {
                mode: m.mode(),
                uid: m.uid(),
                gid: m.gid(),
            },
            Err(_) => DirPerm {
                mode: 0,
                uid: u32::MAX,
                gid: u32::MAX,
            },
        })
        .collect();
    chain.reverse();
    chain
}

async fn destroy(cgroup: SandboxCgroup) {
    let path = cgroup.path().to_string();
    match tokio::task::spawn_blocking(move || cgroup.destroy()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn!(
            cgroup = path,
            error = ipc::chain(&e),
            "destroying the cgroup"
        ),
        Err(e) => warn!(cgroup = path, error = %e, "destroying the cgroup"),
    }
}

fn pipe_fds() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    // Only our end is non-blocking: the command gets an ordinary blocking pipe.
    fcntl(&r, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    Ok((r, w))
}

/// The daemon's ends of the command's stdio.
struct Pipes {
    stdin: Option<pipe::Sender>,
    stdout: pipe::Receiver,
    stderr: pipe::Receiver,
}

/// Makes the pipes and returns the sandbox's ends [stdin, stdout, stderr].
fn make_pipes(want_stdin: bool) -> std::io::Result<(Pipes, [OwnedFd; 3])> {
    let (out_r, out_w) = pipe_fds()?;
    let (err_r, err_w) = pipe_fds()?;
    let (stdin, stdin_r) = if want_stdin {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        fcntl(&w, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
        (Some(pipe::Sender::from_owned_fd(w)?), r)
    } else {
        (None, std::fs::File::open("/dev/null")?.into())
    };
    let pipes = Pipes {
        stdin,
        stdout: pipe::Receiver::from_owned_fd(out_r)?,
        stderr: pipe::Receiver::from_owned_fd(err_r)?,
    };
    Ok((pipes, [stdin_r, out_w, err_w]))
}

/// Writes the client's stdin bytes into the command's pipe, in order, and gives the client
/// its window back as each chunk is drained. The pipe closes when the client closes stdin.
fn stdin_writer(
    mut pipe: pipe::Sender,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    id: u64,
    out: mpsc::Sender<Response>,
    link: Arc<RunLink>,
) {
    tokio::spawn(async move {
        while let Some(chunk) = rx.recv().await {
            if pipe.write_all(&chunk).await.is_err() {
                // The command stopped reading: drop the rest.
                break;
            }
            let bytes = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
            link.refill_stdin(u64::from(bytes));
            let _ = out.send(Response::StdinCredit { id, bytes }).await;
        }
    });
}

/// One output stream's state.
struct OutStream {
    stream: Stream,
    eof: bool,
    buf: Vec<u8>,
}

impl OutStream {
    fn new(stream: Stream) -> Self {
        OutStream {
            stream,
            eof: false,
            buf: vec![0; MAX_OUTPUT_CHUNK],
        }
    }
    /// How much may be read now: up to a chunk within the client's credit; anything once
    /// the client is gone (the output is drained and dropped).
    fn limit(&self, link: &RunLink, abandoned: bool) -> usize {
        if self.eof {
            0
        } else if abandoned {
            MAX_OUTPUT_CHUNK
        } else {
            MAX_OUTPUT_CHUNK
                .min(usize::try_from(link.credit(self.stream)).unwrap_or(MAX_OUTPUT_CHUNK))
        }
    }
}

/// Starts the sandbox and runs it to the end. `Ok(None)`: the client went away. The
/// sandbox's monitor is left in `ending`, to wait for its teardown after answering.
#[allow(clippy::too_many_arguments)]
async fn supervise(
    ctx: &RunContext,
    plan: &Plan,
    cgroup: &SandboxCgroup,
    id: u64,
    want_stdin: bool,
    out: &mpsc::Sender<Response>,
    link: LinkRx,
    ending: &mut Option<Monitor>,
) -> Result<Option<ExitStatus>, Failure> {
    let LinkRx {
        link,
        stdin: stdin_rx,
        mut signals,
    } = link;
    let started = Instant::now();
    let (sandbox, mut monitor) = LiveSandbox::start(plan, &ctx.init).await?;
    debug!(
        us = started.elapsed().as_micros(),
        init_pid = sandbox.init_pid,
        "sandbox ready"
    );
    ctx.registry.set_init_pid(
        &plan.sandbox_id,
        u32::try_from(sandbox.init_pid).unwrap_or(0),
    );
    let result = stream(
        ctx,
        plan,
        &sandbox,
        &mut monitor,
        id,
        want_stdin,
        out,
        &link,
        stdin_rx,
        &mut signals,
        started,
    )
    .await;
    // Whatever happened, the sandbox ends with its command. The command and its output are
    // done; the caller waits for the rest of the teardown after answering the client.
    sandbox.kill().await;
    *ending = Some(monitor);
    let (exit, timed_out, abandoned) = result?;
    // One small read of a cgroup file: cheaper inline than a trip to the blocking pool.
    let oom_kills = cgroup.oom_kills();
    if abandoned {
        return Ok(None);
    }
    let (code, signal) = exit;
    let oom_killed = oom_kills > 0
        && !timed_out
        && (signal == Some(libc::SIGKILL) || code == Some(128 + libc::SIGKILL));
    Ok(Some(ExitStatus {
        code,
        signal,
        timed_out,
        oom_killed,
        memory_limit: plan.limits.memory,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }))
}

/// How the command ended (code, signal), whether it timed out, whether its client left.
type Ending = ((Option<i32>, Option<i32>), bool, bool);

/// Runs the command in the live sandbox and streams it until it ended and its output is
/// drained.
#[allow(clippy::too_many_arguments)]
async fn stream(
    ctx: &RunContext,
    plan: &Plan,
    sandbox: &LiveSandbox,
    monitor: &mut Monitor,
    id: u64,
    want_stdin: bool,
    out: &mpsc::Sender<Response>,
    link: &Arc<RunLink>,
    stdin_rx: Option<mpsc::UnboundedReceiver<Vec<u8>>>,
    signals: &mut mpsc::Receiver<Control>,
    started: Instant,
) -> Result<Ending, Failure> {
    let (mut pipes, sandbox_fds) = make_pipes(want_stdin)
        .map_err(|e| Failure::new(ErrorCode::Internal, format!("making pipes: {e}")))?;
    give_pipes_to_sandbox(&sandbox_fds, plan.ids.host_base)?;
    let req = ExecRequest {
        exec_id: 0,
        argv: plan.argv.clone(),
        env: plan.env.clone(),
        cwd: plan.cwd.clone(),
        uid: 0,
        gid: 0,
        tty: None,
    };
    let mut exec = sandbox.exec(req, Some(sandbox_fds)).await?;
    debug!(
        us = started.elapsed().as_micros(),
        pid = exec.pid,
        "command started"
    );
    let mut abandoned = out
        .send(Response::Started {
            id,
            sandbox_id: plan.sandbox_id.clone(),
            exec_id: None,
        })
        .await
        .is_err();
    if let (Some(pipe), Some(rx)) = (pipes.stdin.take(), stdin_rx) {
        stdin_writer(pipe, rx, id, out.clone(), link.clone());
    }
    let (mut so, mut se) = (
        OutStream::new(Stream::Stdout),
        OutStream::new(Stream::Stderr),
    );
    let deadline = plan
        .timeout_ms
        .map(|ms| tokio::time::Instant::now() + Duration::from_millis(ms));
    let mut timed_out = false;
    let mut failure: Option<Failure> = None;
    // The command's own end, from sandbox-init; or the sandbox's end (killed, init gone).
    let mut exit: Option<(Option<i32>, Option<i32>)> = None;
    let mut gone = false;
    let mut shutdown = ctx.shutdown.clone();
    let mut killed = false;

    while !(exit.is_some() || gone) || !so.eof || !se.eof {
        let (so_limit, se_limit) = (so.limit(link, abandoned), se.limit(link, abandoned));
        tokio::select! {
            r = pipes.stdout.read(&mut so.buf[..so_limit]), if so_limit > 0 => {
                forward(r, &mut so, link, id, out, &mut abandoned).await;
            }
            r = pipes.stderr.read(&mut se.buf[..se_limit]), if se_limit > 0 => {
                forward(r, &mut se, link, id, out, &mut abandoned).await;
            }
            ev = exec.events.recv(), if exit.is_none() && !gone => match ev {
                Some((FromInit::ExecExited { code, signal, .. }, _)) => {
                    debug!(us = started.elapsed().as_micros(), "command exited");
                    exit = Some((code, signal));
                    // Its background processes end with it, which closes the pipes.
                    sandbox.kill().await;
                    killed = true;
                }
                Some((other, _)) => warn!(sandbox = %plan.sandbox_id, ?other, "unexpected init message"),
                None => gone = true,
            },
            ev = monitor.events.recv(), if !gone => match ev {
                Some(HelperEvent::Exited { .. }) | None => gone = true,
                Some(other) => warn!(sandbox = %plan.sandbox_id, ?other, "unexpected helper event"),
            },
            // Credit arrived (the limits are recomputed), or the client broke the protocol.
            _ = link.changed(), if !abandoned => {
                if let (Some(why), None) = (link.violation(), &failure) {
                    failure = Some(Failure::new(ErrorCode::ProtocolViolation, why));
                    sandbox.kill().await;
                    killed = true;
                }
            }
            sig = signals.recv(), if !abandoned => match sig {
                Some(Control::Signal(signal)) if signal == libc::SIGKILL => {
                    sandbox.kill().await;
                    killed = true;
                }
                Some(Control::Signal(signal)) => sandbox.signal(exec.exec_id, signal).await,
                // A one-shot run has no terminal.
                Some(Control::Resize(..)) => {}
                None => {
                    // The connection is gone.
                    abandoned = true;
                    sandbox.kill().await;
                    killed = true;
                }
            },
            _ = sleep_until(deadline), if !timed_out && exit.is_none() => {
                timed_out = true;
                sandbox.kill().await;
                killed = true;
            }
            _ = shutdown.changed(), if !killed => {
                if *shutdown.borrow() && failure.is_none() {
                    failure = Some(Failure::new(ErrorCode::ShuttingDown, "the daemon is shutting down; the sandbox was killed"));
                    sandbox.kill().await;
                    killed = true;
                }
            }
        }
    }
    debug!(us = started.elapsed().as_micros(), "output drained");
    if let Some(f) = failure {
        return Err(f);
    }
    // Killed before the command reported its end: it died with init, by SIGKILL.
    Ok((
        exit.unwrap_or((None, Some(libc::SIGKILL))),
        timed_out,
        abandoned,
    ))
}

/// The daemon created the stdio pipes, so they belong to host root: the sandbox could use the
/// fds it inherits but not reopen them (`/dev/stdin`, `/proc/self/fd/0`), which many programs
/// do. Pipes (never a shared file such as /dev/null) are handed to the sandbox's root.
fn give_pipes_to_sandbox(stdio: &[OwnedFd; 3], host_base: u32) -> Result<(), Failure> {
    for fd in stdio {
        let err = |e: nix::Error| {
            Failure::new(
                ErrorCode::Internal,
                format!("handing a pipe to the sandbox: {e}"),
            )
        };
        let st = nix::sys::stat::fstat(fd.as_fd()).map_err(err)?;
        if nix::sys::stat::SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT)
            == nix::sys::stat::SFlag::S_IFIFO
        {
            let id = (
                Some(nix::unistd::Uid::from_raw(host_base)),
                Some(nix::unistd::Gid::from_raw(host_base)),
            );
            nix::unistd::fchown(fd.as_fd(), id.0, id.1).map_err(err)?;
        }
    }
    Ok(())
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Sends what a pipe read returned to the client (or drops it if the client is gone).
async fn forward(
    r: std::io::Result<usize>,
    s: &mut OutStream,
    link: &RunLink,
    id: u64,
    out: &mpsc::Sender<Response>,
    abandoned: &mut bool,
) {
    match r {
        Ok(0) | Err(_) => s.eof = true,
        Ok(n) => {
            if *abandoned {
                return;
            }
            link.spend(s.stream, n as u64);
            let msg = Response::Output {
                id,
                stream: s.stream,
                data: s.buf[..n].to_vec(),
                seq: None,
            };
            if out.send(msg).await.is_err() {
                *abandoned = true;
            }
        }
    }
}

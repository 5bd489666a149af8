//! `Run`: create a sandbox for one command, stream its output under flow control, feed its
//! stdin, enforce the timeout, report the exit, and destroy everything it had.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use sandbox_proto::{ErrorCode, ExitStatus, Response, RunSpec, Stream, MAX_OUTPUT_CHUNK};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::cgroups::SandboxCgroup;
use crate::config::Config;
use crate::isolation::ipc::{self, HelperCommand, HelperEvent};
use crate::isolation::spawn::HELPER_ARG;
use crate::policy::{self, Allocation, Caller, DirPerm, HostDirFacts, Plan, PolicyError, RootPlan};
use crate::sandbox::link::{LinkRx, RunLink, Signal};
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
}

struct Failure {
    code: ErrorCode,
    message: String,
}

impl Failure {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }
}

impl From<PolicyError> for Failure {
    fn from(e: PolicyError) -> Self {
        let code = match e {
            PolicyError::Invalid { .. } => ErrorCode::InvalidArgument,
            PolicyError::Denied { .. } => ErrorCode::PermissionDenied,
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
    let result = match prepare(&ctx, &caller, &spec, &alloc).await {
        Ok((plan, cgroup)) => {
            debug!(us = t0.elapsed().as_micros(), "cgroup ready");
            let r = supervise(&ctx, &plan, &cgroup, id, spec.stdin, &out, link).await;
            debug!(us = t0.elapsed().as_micros(), "command ended");
            destroy(cgroup).await;
            debug!(us = t0.elapsed().as_micros(), "cgroup destroyed");
            r
        }
        Err(f) => Err(f),
    };
    ctx.registry.release(&alloc);
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
            let _ = out
                .send(Response::Error {
                    id: Some(id),
                    code: f.code,
                    message: f.message,
                })
                .await;
        }
    }
    shared.finish();
}

/// Policy, host-path checks and the cgroup.
async fn prepare(
    ctx: &RunContext,
    caller: &Caller,
    spec: &RunSpec,
    alloc: &Allocation,
) -> Result<(Plan, SandboxCgroup), Failure> {
    let mut plan = policy::plan(spec, caller, &ctx.cfg, alloc)?;
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

/// Starts the helper, hands it the plan, and returns its control socket.
async fn start_helper(
    plan: &Plan,
    sandbox_fds: [OwnedFd; 3],
) -> Result<(tokio::process::Child, StdUnixStream), Failure> {
    let internal = |what: &str, e: &dyn std::fmt::Display| {
        Failure::new(ErrorCode::Internal, format!("{what}: {e}"))
    };
    let (daemon_end, helper_end) = StdUnixStream::pair().map_err(|e| internal("socketpair", &e))?;
    let child = tokio::process::Command::new("/proc/self/exe")
        .arg(HELPER_ARG)
        .stdin(Stdio::from(OwnedFd::from(helper_end)))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| internal("starting the sandbox helper", &e))?;
    let plan = plan.clone();
    let ctl = tokio::task::spawn_blocking(move || -> Result<StdUnixStream, ipc::IpcError> {
        let mut ctl = daemon_end;
        let raw: Vec<_> = sandbox_fds.iter().map(|f| f.as_raw_fd()).collect();
        ipc::send_fds(&ctl, &raw)?;
        ipc::send(&mut ctl, &plan)?;
        Ok(ctl)
        // `sandbox_fds` drop here: the helper has its own copies.
    })
    .await
    .map_err(|e| internal("handing the plan to the helper", &e))?
    .map_err(|e| internal("handing the plan to the helper", &ipc::chain(&e)))?;
    Ok((child, ctl))
}

/// Reads the helper's events into a channel (a frame read is not cancel-safe; a channel is).
fn helper_events(mut rd: tokio::net::unix::OwnedReadHalf) -> mpsc::Receiver<HelperEvent> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        while let Ok(Some(body)) =
            sandbox_proto::codec::read_frame_async(&mut rd, ipc::MAX_INTERNAL_FRAME).await
        {
            let Ok(ev) = sandbox_proto::unpack::<HelperEvent>(&body) else {
                break;
            };
            if tx.send(ev).await.is_err() {
                break;
            }
        }
    });
    rx
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

/// Starts the sandbox and runs it to the end. `Ok(None)`: the client went away.
async fn supervise(
    ctx: &RunContext,
    plan: &Plan,
    cgroup: &SandboxCgroup,
    id: u64,
    want_stdin: bool,
    out: &mpsc::Sender<Response>,
    link: LinkRx,
) -> Result<Option<ExitStatus>, Failure> {
    let LinkRx {
        link,
        stdin: stdin_rx,
        mut signals,
    } = link;
    let started = Instant::now();
    let (mut pipes, sandbox_fds) = make_pipes(want_stdin)
        .map_err(|e| Failure::new(ErrorCode::Internal, format!("making pipes: {e}")))?;
    let (mut child, ctl) = start_helper(plan, sandbox_fds).await?;
    debug!(
        us = started.elapsed().as_micros(),
        "helper started, plan sent"
    );
    let _ = ctl.set_nonblocking(true);
    let ctl = tokio::net::UnixStream::from_std(ctl)
        .map_err(|e| Failure::new(ErrorCode::Internal, e.to_string()))?;
    let (rd, mut wr) = ctl.into_split();
    let mut events = helper_events(rd);

    match events.recv().await {
        Some(HelperEvent::Started { init_pid }) => {
            debug!(
                us = started.elapsed().as_micros(),
                init_pid, "sandbox running"
            );
            ctx.registry
                .set_init_pid(&plan.sandbox_id, u32::try_from(init_pid).unwrap_or(0));
        }
        Some(HelperEvent::Failed { error }) => {
            let _ = child.wait().await;
            return Err(Failure::new(ErrorCode::SpawnFailed, error));
        }
        other => {
            let _ = child.wait().await;
            return Err(Failure::new(
                ErrorCode::SpawnFailed,
                format!("the sandbox helper ended unexpectedly ({other:?})"),
            ));
        }
    }
    let mut abandoned = out
        .send(Response::Started {
            id,
            sandbox_id: plan.sandbox_id.clone(),
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
    let mut exit: Option<(Option<i32>, Option<i32>)> = None;
    let mut helper_gone = false;
    let mut shutdown = ctx.shutdown.clone();
    let mut killed = false;

    async fn kill(wr: &mut tokio::net::unix::OwnedWriteHalf, signal: i32) {
        if let Ok(frame) = sandbox_proto::encode(&HelperCommand::Kill { signal }) {
            let _ = wr.write_all(&frame).await;
        }
    }

    while !(exit.is_some() || helper_gone) || !so.eof || !se.eof {
        let (so_limit, se_limit) = (so.limit(&link, abandoned), se.limit(&link, abandoned));
        tokio::select! {
            r = pipes.stdout.read(&mut so.buf[..so_limit]), if so_limit > 0 => {
                forward(r, &mut so, &link, id, out, &mut abandoned).await;
            }
            r = pipes.stderr.read(&mut se.buf[..se_limit]), if se_limit > 0 => {
                forward(r, &mut se, &link, id, out, &mut abandoned).await;
            }
            ev = events.recv(), if exit.is_none() && !helper_gone => match ev {
                Some(HelperEvent::Exited { code, signal }) => {
                    debug!(us = started.elapsed().as_micros(), "helper reported the exit");
                    exit = Some((code, signal));
                }
                Some(other) => warn!(sandbox = %plan.sandbox_id, ?other, "unexpected helper event"),
                None => helper_gone = true,
            },
            // Credit arrived (the limits are recomputed), or the client broke the protocol.
            _ = link.changed(), if !abandoned => {
                if let (Some(why), None) = (link.violation(), &failure) {
                    failure = Some(Failure::new(ErrorCode::ProtocolViolation, why));
                    kill(&mut wr, libc::SIGKILL).await;
                    killed = true;
                }
            }
            sig = signals.recv(), if !abandoned => match sig {
                Some(Signal(signal)) => kill(&mut wr, signal).await,
                None => {
                    // The connection is gone.
                    abandoned = true;
                    if !killed {
                        kill(&mut wr, libc::SIGKILL).await;
                        killed = true;
                    }
                }
            },
            _ = sleep_until(deadline), if !timed_out && exit.is_none() => {
                timed_out = true;
                kill(&mut wr, libc::SIGKILL).await;
                killed = true;
            }
            _ = shutdown.changed(), if !killed => {
                if *shutdown.borrow() && failure.is_none() {
                    failure = Some(Failure::new(ErrorCode::ShuttingDown, "the daemon is shutting down; the sandbox was killed"));
                    kill(&mut wr, libc::SIGKILL).await;
                    killed = true;
                }
            }
        }
    }
    debug!(us = started.elapsed().as_micros(), "output drained");
    let _ = child.wait().await;
    debug!(us = started.elapsed().as_micros(), "helper reaped");
    let oom_kills = {
        let path = cgroup.path().to_string();
        tokio::task::spawn_blocking(move || SandboxCgroup::load(&path).oom_kills())
            .await
            .unwrap_or(0)
    };
    if let Some(f) = failure {
        return Err(f);
    }
    if abandoned {
        return Ok(None);
    }
    let Some((code, signal)) = exit else {
        return Err(Failure::new(
            ErrorCode::Internal,
            "the sandbox helper died; the sandbox was killed",
        ));
    };
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
            };
            if out.send(msg).await.is_err() {
                *abandoned = true;
            }
        }
    }
}

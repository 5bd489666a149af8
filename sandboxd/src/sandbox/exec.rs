//! `exec` and `attach`: a command in a kept sandbox. A pump task owned by the sandbox copies
//! the command's output into its log (size-capped, with sequence numbers) whether or not a
//! client is listening; each client follows the log from a sequence number under its credit,
//! so a client may leave and `attach` again without losing output.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use sandbox_proto::init::{ExecRequest, FromInit, TtySize};
use sandbox_proto::{
    ErrorCode, ExecInfo, ExecSpec, ExitStatus, Response, Stream, MAX_OUTPUT_CHUNK,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::mpsc;
use tracing::{debug, info};

use crate::policy::{self, Caller};
use crate::sandbox::create::not_found;
use crate::sandbox::kept::{now_ms, ExecRecord, Kept};
use crate::sandbox::link::{Control, LinkRx, RunLink};
use crate::sandbox::live::{Failure, InitEvent};
use crate::sandbox::outlog::{OutLog, STDERR, STDOUT};
use crate::sandbox::run::RunContext;

/// How long the pump keeps reading after the command exited, for output its background
/// processes (which hold the pipes) write.
const DRAIN_GRACE: Duration = Duration::from_millis(100);

/// Starts an exec in a kept sandbox and follows it for the client (`Started` with the exec id,
/// `Output`s with sequence numbers, `Exit`), or answers one `Error`.
#[allow(clippy::too_many_arguments)]
pub async fn exec(
    ctx: RunContext,
    caller: Caller,
    id: u64,
    sandbox_id: String,
    spec: ExecSpec,
    out: mpsc::Sender<Response>,
    link: LinkRx,
) {
    let shared = link.link.clone();
    let result = async {
        let kept = ctx.kept.get(&caller, &sandbox_id).ok_or_else(|| not_found(&sandbox_id))?;
        kept.touch();
        let (exec_id, log) = start(&ctx, &kept, &spec, link.stdin.is_some()).await?;
        info!(id, sandbox = %sandbox_id, exec_id, argv0 = spec.argv.first().map(String::as_str).unwrap_or(""), "exec");
        Ok::<_, Failure>((kept, exec_id, log))
    }
    .await;
    match result {
        Ok((kept, exec_id, log)) => follow(&kept, exec_id, log, 0, id, &out, link).await,
        Err(f) => {
            let _ = out.send(f.into_response(id)).await;
        }
    }
    shared.finish();
}

/// Follows an existing exec again from `from_seq`.
#[allow(clippy::too_many_arguments)]
pub async fn attach(
    ctx: RunContext,
    caller: Caller,
    id: u64,
    sandbox_id: String,
    exec_id: u64,
    from_seq: u64,
    out: mpsc::Sender<Response>,
    link: LinkRx,
) {
    let shared = link.link.clone();
    let found = ctx
        .kept
        .get(&caller, &sandbox_id)
        .ok_or_else(|| not_found(&sandbox_id))
        .and_then(|k| {
            let (log, _) = k
                .exec(exec_id)
                .ok_or_else(|| Failure::new(ErrorCode::NotFound, format!("no exec {exec_id}")))?;
            Ok((k, log))
        });
    match found {
        Ok((kept, log)) => {
            kept.touch();
            follow(&kept, exec_id, log, from_seq, id, &out, link).await;
        }
        Err(f) => {
            let _ = out.send(f.into_response(id)).await;
        }
    }
    shared.finish();
}

fn nonblocking(fd: &OwnedFd) -> std::io::Result<()> {
    fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Starts the command and its pump; returns its id and log.
async fn start(
    ctx: &RunContext,
    kept: &Arc<Kept>,
    spec: &ExecSpec,
    want_stdin: bool,
) -> Result<(u64, Arc<OutLog>), Failure> {
    if kept.owner_uid != 0 && ctx.kept.running_execs_of(kept.owner_uid) >= ctx.cfg.max_execs_per_uid
    {
        let msg = format!(
            "uid {} already runs {} execs",
            kept.owner_uid, ctx.cfg.max_execs_per_uid
        );
        return Err(Failure::new(ErrorCode::ResourceExhausted, msg));
    }
    let ids = kept.plan.ids.count;
    let eplan = policy::plan_exec(spec, &kept.plan.env, ids)?;
    let io_err = |e: std::io::Error| {
        Failure::new(ErrorCode::Internal, format!("making the exec's stdio: {e}"))
    };
    let req = ExecRequest {
        exec_id: 0,
        argv: eplan.argv.clone(),
        env: eplan.env,
        cwd: eplan.cwd,
        uid: eplan.uid,
        gid: eplan.gid,
        tty: spec.tty,
    };
    let base = kept.plan.ids.host_base;
    let (handle, sources, stdin_sink) = if spec.tty.is_some() {
        let handle = kept.live.exec(req, None).await?;
        let master = handle
            .master
            .as_ref()
            .ok_or_else(|| Failure::new(ErrorCode::Internal, "no pty master"))?;
        let reader = master.try_clone().map_err(io_err)?;
        let writer = master.try_clone().map_err(io_err)?;
        // One open file description: non-blocking for both the reader and the writer.
        nonblocking(&reader).map_err(io_err)?;
        (handle, Sources::Tty(reader), Some(writer))
    } else {
        let pair = |nb_read: bool| -> std::io::Result<(OwnedFd, OwnedFd)> {
            let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
            nonblocking(if nb_read { &r } else { &w })?;
            Ok((r, w))
        };
        let (out_r, out_w) = pair(true).map_err(io_err)?;
        let (err_r, err_w) = pair(true).map_err(io_err)?;
        let (stdin_sink, stdin_r) = if want_stdin {
            let (r, w) = pair(false).map_err(io_err)?;
            (Some(w), r)
        } else {
            (
                None,
                std::fs::File::open("/dev/null").map_err(io_err)?.into(),
            )
        };
        for fd in [&out_w, &err_w]
            .into_iter()
            .chain(stdin_sink.is_some().then_some(&stdin_r))
        {
            nix::unistd::fchown(
                fd.as_fd(),
                Some(nix::unistd::Uid::from_raw(base)),
                Some(nix::unistd::Gid::from_raw(base)),
            )
            .map_err(|e| io_err(e.into()))?;
        }
        let handle = kept.live.exec(req, Some([stdin_r, out_w, err_w])).await?;
        (handle, Sources::Pipes(out_r, err_r), stdin_sink)
    };
    let exec_id = handle.exec_id;
    let log = OutLog::create_with(
        &kept.logs_dir,
        &exec_id.to_string(),
        ctx.cfg.exec_log_cap,
        false,
    )
    .map_err(|e| Failure::new(ErrorCode::Internal, crate::isolation::ipc::chain(&e)))?;
    let master = handle
        .master
        .as_ref()
        .and_then(|m| m.try_clone().ok())
        .map(Arc::new);
    let info = ExecInfo {
        exec_id,
        argv: eplan.argv,
        pid: handle.pid,
        started_unix_ms: now_ms(),
        exit: None,
        next_seq: 0,
    };
    let stdin = match stdin_sink {
        // A pty master is a character device: tokio's pipe type would refuse it by type.
        Some(fd) if spec.tty.is_some() => {
            Some(pipe::Sender::from_owned_fd_unchecked(fd).map_err(io_err)?)
        }
        Some(fd) => Some(pipe::Sender::from_owned_fd(fd).map_err(io_err)?),
        None => None,
    };
    kept.add_exec(
        exec_id,
        ExecRecord {
            info,
            log: log.clone(),
            master,
            stdin: std::sync::Mutex::new(stdin),
        },
    );
    tokio::spawn(pump(
        kept.clone(),
        ctx.store.clone(),
        exec_id,
        handle.events,
        sources,
        log.clone(),
        eplan.timeout_ms,
    ));
    Ok((exec_id, log))
}

/// Where an exec's output comes from.
enum Sources {
    /// stdout and stderr pipes.
    Pipes(OwnedFd, OwnedFd),
    /// A pty master (both streams on it; reported as stdout).
    Tty(OwnedFd),
}

/// Copies the exec's output into its log until it ended and its output is drained; records
/// its exit. Owned by the sandbox, not by any client.
async fn pump(
    kept: Arc<Kept>,
    store: Arc<crate::store::Store>,
    exec_id: u64,
    mut events: mpsc::UnboundedReceiver<InitEvent>,
    sources: Sources,
    log: Arc<OutLog>,
    timeout_ms: Option<u64>,
) {
    let started = Instant::now();
    let oom_before = oom_kills(&kept).await;
    let (mut a, mut b) = match sources {
        Sources::Pipes(o, e) => (
            pipe::Receiver::from_owned_fd(o).ok(),
            pipe::Receiver::from_owned_fd(e).ok(),
        ),
        Sources::Tty(m) => (tty_receiver(m), None),
    };
    let mut buf_a = vec![0u8; MAX_OUTPUT_CHUNK];
    let mut buf_b = vec![0u8; MAX_OUTPUT_CHUNK];
    let deadline = timeout_ms.map(|ms| tokio::time::Instant::now() + Duration::from_millis(ms));
    let mut timed_out = false;
    let mut exit: Option<(Option<i32>, Option<i32>)> = None;
    let mut drain_until: Option<tokio::time::Instant> = None;
    // Until the command's end is known and its output drained (the pipes can close before
    // init reports the exit).
    while a.is_some() || b.is_some() || exit.is_none() {
        tokio::select! {
            r = read(&mut a, &mut buf_a) => match r {
                Some(n) => { let _ = log.append(STDOUT, &buf_a[..n]); }
                None => a = None,
            },
            r = read(&mut b, &mut buf_b) => match r {
                Some(n) => { let _ = log.append(STDERR, &buf_b[..n]); }
                None => b = None,
            },
            ev = events.recv(), if exit.is_none() => {
                exit = Some(match ev {
                    Some((FromInit::ExecExited { code, signal, .. }, _)) => (code, signal),
                    // The sandbox died under it.
                    _ => (None, Some(libc::SIGKILL)),
                });
                drain_until = Some(tokio::time::Instant::now() + DRAIN_GRACE);
            }
            _ = sleep_until(deadline), if exit.is_none() && !timed_out => {
                timed_out = true;
                kept.live.signal(exec_id, libc::SIGKILL).await;
            }
            _ = sleep_until(drain_until), if drain_until.is_some() => break,
        }
    }
    let (code, signal) = exit.unwrap_or((None, Some(libc::SIGKILL)));
    // The OOM killer struck in the sandbox during this exec, and the exec died of SIGKILL.
    let oom_killed =
        !timed_out && signal == Some(libc::SIGKILL) && oom_kills(&kept).await > oom_before;
    let status = ExitStatus {
        code,
        signal,
        timed_out,
        oom_killed,
        memory_limit: kept.plan.limits.memory,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    debug!(sandbox = %kept.id, exec_id, ?status, "exec ended");
    // Sandboxes do not outlive their daemon yet, so exec logs need no fsync (see
    // `OutLog::create_with`); the file writes still block, off the async workers.
    let (l, v) = (
        log.clone(),
        serde_json::to_value(&status).unwrap_or_default(),
    );
    let _ = tokio::task::spawn_blocking(move || l.finish(&v)).await;
    kept.end_exec(exec_id, status);
    crate::sandbox::kept::save_later(&kept, &store);
}

async fn oom_kills(kept: &Arc<Kept>) -> u64 {
    let k = kept.clone();
    tokio::task::spawn_blocking(move || k.cgroup.oom_kills())
        .await
        .unwrap_or(0)
}

fn tty_receiver(m: OwnedFd) -> Option<pipe::Receiver> {
    // A pty master is a character device, not a FIFO: tokio's pipe type checks the fd type,
    // so it is wrapped through the unchecked constructor.
    pipe::Receiver::from_owned_fd_unchecked(m).ok()
}

async fn read(src: &mut Option<pipe::Receiver>, buf: &mut [u8]) -> Option<usize> {
    match src {
        Some(r) => match r.read(buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(n),
        },
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Sends the exec's log to one client from `from_seq` under its credit, then its exit; passes
/// the client's signals and resizes to the exec. The exec goes on if the client leaves.
async fn follow(
    kept: &Arc<Kept>,
    exec_id: u64,
    log: Arc<OutLog>,
    from_seq: u64,
    id: u64,
    out: &mpsc::Sender<Response>,
    link: LinkRx,
) {
    let LinkRx {
        link,
        stdin,
        mut signals,
    } = link;
    if let Some(rx) = stdin {
        stdin_writer(kept, exec_id, rx, id, out.clone(), link.clone());
    }
    let mut reader = match log.reader(from_seq) {
        Ok(r) => r,
        Err(e) => {
            let _ = out
                .send(Response::Error {
                    id: Some(id),
                    code: ErrorCode::Internal,
                    message: e.to_string(),
                })
                .await;
            return;
        }
    };
    let started = Response::Started {
        id,
        sandbox_id: kept.id.clone(),
        exec_id: Some(exec_id),
    };
    if out.send(started).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            rec = reader.next() => match rec {
                Ok(Some(rec)) => {
                    let stream = match rec.stream {
                        STDOUT => Stream::Stdout,
                        STDERR => Stream::Stderr,
                        // The truncation marker: the client sees the gap in the sequence numbers.
                        _ => continue,
                    };
                    if !wait_credit(&link, stream, rec.data.len() as u64).await {
                        return;
                    }
                    link.spend(stream, rec.data.len() as u64);
                    let msg = Response::Output { id, stream, data: rec.data, seq: Some(rec.seq) };
                    if out.send(msg).await.is_err() {
                        return;
                    }
                }
                Ok(None) => {
                    let status = reader.exit().and_then(|v| serde_json::from_value::<ExitStatus>(v.clone()).ok()).unwrap_or_default();
                    let _ = out.send(Response::Exit { id, status }).await;
                    return;
                }
                Err(e) => {
                    let _ = out.send(Response::Error { id: Some(id), code: ErrorCode::Internal, message: e.to_string() }).await;
                    return;
                }
            },
            // The client broke the protocol (stdin past its window, or where none was asked
            // for): like a run, the exec is killed and the stream ends with the violation.
            _ = link.changed() => {
                if let Some(why) = link.violation() {
                    kept.live.signal(exec_id, libc::SIGKILL).await;
                    let _ = out.send(Response::Error { id: Some(id), code: ErrorCode::ProtocolViolation, message: why }).await;
                    return;
                }
            }
            c = signals.recv() => match c {
                Some(Control::Signal(sig)) => kept.live.signal(exec_id, sig).await,
                Some(Control::Resize(rows, cols)) => resize(kept, exec_id, TtySize { rows, cols }),
                // The client left: the exec goes on, its output into the log.
                None => return,
            },
        }
    }
}

/// Waits until the client's credit on `stream` covers `len` bytes; false if it broke the
/// protocol meanwhile.
async fn wait_credit(link: &RunLink, stream: Stream, len: u64) -> bool {
    loop {
        if link.violation().is_some() {
            return false;
        }
        if link.credit(stream) >= len.min(u64::from(sandbox_proto::DEFAULT_WINDOW)) {
            return true;
        }
        link.changed().await;
    }
}

fn resize(kept: &Kept, exec_id: u64, size: TtySize) {
    if let Some((_, Some(master))) = kept.exec(exec_id) {
        let ws = libc::winsize {
            ws_row: size.rows,
            ws_col: size.cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let _ = crate::sys::set_winsize(master.as_raw_fd(), &ws);
    }
}

/// Writes the client's stdin bytes into the exec's stdin (pipe or pty).
fn stdin_writer(
    kept: &Arc<Kept>,
    exec_id: u64,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    id: u64,
    out: mpsc::Sender<Response>,
    link: Arc<RunLink>,
) {
    let Some(mut sink) = kept.take_stdin(exec_id) else {
        return;
    };
    tokio::spawn(async move {
        while let Some(chunk) = rx.recv().await {
            if sink.write_all(&chunk).await.is_err() {
                break;
            }
            let bytes = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
            link.refill_stdin(u64::from(bytes));
            let _ = out.send(Response::StdinCredit { id, bytes }).await;
        }
    });
}

//! A live sandbox as the daemon holds it: its helper process (which reports the sandbox's
//! end and kills it on request) and the control socket of its sandbox-init (which starts
//! execs). Starting one: spawn the helper, hand it the plan, the sealed sandbox-init memfd and
//! init's end of the control socket; wait until the sandbox is built; configure init.

use std::collections::HashMap;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use sandbox_proto::init::{ExecRequest, FromInit, InitConfig, ToInit};
use sandbox_proto::ErrorCode;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};

use crate::isolation::ipc::{self, HelperCommand, HelperEvent};
use crate::isolation::spawn::HELPER_ARG;
use crate::isolation::zygote::ZYGOTE_ARG;
use crate::policy::Plan;

/// What every sandbox's init gets: the sealed executable; and the zygote that forks the
/// helpers.
#[derive(Debug)]
pub struct InitAssets {
    /// The sealed memfd holding sandbox-init.
    pub memfd: OwnedFd,
    /// Forks per-sandbox helpers (None: each helper is an exec of sandboxd).
    pub zygote: Option<Zygote>,
}

/// The daemon's end of the zygote (`isolation::zygote`): started once, started again if it
/// died.
#[derive(Debug, Default)]
pub struct Zygote {
    inner: Mutex<Option<(std::process::Child, StdUnixStream)>>,
}

impl Zygote {
    /// Starts the zygote.
    pub fn start() -> std::io::Result<Zygote> {
        Ok(Zygote {
            inner: Mutex::new(Some(Self::spawn()?)),
        })
    }

    fn spawn() -> std::io::Result<(std::process::Child, StdUnixStream)> {
        let (daemon_end, zygote_end) = StdUnixStream::pair()?;
        // std's spawn execs at once in the child (no Rust code runs after the fork).
        let child = std::process::Command::new("/proc/self/exe")
            .arg(ZYGOTE_ARG)
            .stdin(Stdio::from(OwnedFd::from(zygote_end)))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        Ok((child, daemon_end))
    }

    /// Has the zygote fork a helper whose control socket is `helper_end`. Blocking (briefly):
    /// call from a blocking thread.
    pub fn fork_helper(&self, helper_end: &OwnedFd) -> std::io::Result<()> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for _ in 0..2 {
            if inner.is_none() {
                *inner = Some(Self::spawn()?);
            }
            if let Some((_, sock)) = inner.as_ref() {
                if ipc::send_fds(sock, &[helper_end.as_raw_fd()]).is_ok() {
                    return Ok(());
                }
            }
            // It died: reap it and start another.
            if let Some((mut child, _)) = inner.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        Err(std::io::Error::other("the zygote does not answer"))
    }
}

impl Drop for Zygote {
    fn drop(&mut self) {
        if let Some((mut child, sock)) = self.inner.lock().unwrap_or_else(|p| p.into_inner()).take()
        {
            drop(sock);
            let _ = child.wait();
        }
    }
}

/// Starting or using a sandbox failed.
#[derive(Debug)]
pub struct Failure {
    /// The wire code.
    pub code: ErrorCode,
    /// What happened.
    pub message: String,
}

impl Failure {
    /// A failure with `code`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }
    /// The error frame for request `id`.
    pub fn into_response(self, id: u64) -> sandbox_proto::Response {
        sandbox_proto::Response::Error {
            id: Some(id),
            code: self.code,
            message: self.message,
        }
    }

    pub(crate) fn internal(what: &str, e: impl std::fmt::Display) -> Self {
        Failure::new(ErrorCode::Internal, format!("{what}: {e}"))
    }
}

/// A message from init about one exec, with the pty master for a tty exec's `ExecStarted`.
pub type InitEvent = (FromInit, Option<OwnedFd>);

/// Where init's messages about each exec go, and whether a pty master follows its start.
#[derive(Debug)]
struct Route {
    tx: mpsc::UnboundedSender<InitEvent>,
    tty: bool,
}

type Routes = Arc<Mutex<HashMap<u64, Route>>>;

/// A running sandbox: what is needed to use it (shareable).
#[derive(Debug)]
pub struct LiveSandbox {
    helper_tx: tokio::sync::Mutex<OwnedWriteHalf>,
    init_tx: tokio::sync::Mutex<OwnedWriteHalf>,
    routes: Routes,
    next_exec: AtomicU64,
    /// Host pid of sandbox-init.
    pub init_pid: i32,
}

/// Watches a sandbox's end: its helper process and the helper's events.
#[derive(Debug)]
pub struct Monitor {
    /// The helper process when the daemon exec'd it (a zygote's helper is reaped by the kernel).
    helper: Option<tokio::process::Child>,
    /// The helper's events after `Started`: `Exited` when the sandbox is gone (or the
    /// channel's end if the helper died).
    pub events: mpsc::Receiver<HelperEvent>,
}

impl Monitor {
    /// Waits until the sandbox is gone (after `LiveSandbox::kill`, or when init ended) and the
    /// helper was reaped.
    pub async fn wait(mut self) {
        while let Some(ev) = self.events.recv().await {
            if matches!(ev, HelperEvent::Exited { .. }) {
                break;
            }
        }
        if let Some(h) = self.helper.as_mut() {
            let _ = h.wait().await;
        }
    }
}

/// One exec's events from init: `ExecExited`, or the channel's end if the sandbox died.
#[derive(Debug)]
pub struct ExecHandle {
    /// The exec's id within the sandbox.
    pub exec_id: u64,
    /// Its pid inside the sandbox.
    pub pid: i32,
    /// The pty master of a tty exec.
    pub master: Option<OwnedFd>,
    /// Later events for this exec.
    pub events: mpsc::UnboundedReceiver<InitEvent>,
}

impl LiveSandbox {
    /// Spawns the helper and waits until sandbox-init is configured and ready.
    pub async fn start(
        plan: &Plan,
        assets: &Arc<InitAssets>,
    ) -> Result<(LiveSandbox, Monitor), Failure> {
        // What every exec gets: the policy's seccomp profile (compiled once per embedded
        // profile; a policy's own file is read here), fd limit and capabilities.
        let profile = crate::isolation::seccomp::program_for(&plan.seccomp)
            .map_err(|e| Failure::new(ErrorCode::InvalidArgument, ipc::chain(&e)))?;
        let config = InitConfig {
            seccomp: profile.to_insns(),
            nofile: plan.nofile,
            capabilities: plan.capabilities.clone(),
            no_new_privileges: plan.no_new_privileges,
        };
        let (daemon_end, helper_end) =
            StdUnixStream::pair().map_err(|e| Failure::internal("socketpair", e))?;
        let (init_daemon_end, init_end) =
            StdUnixStream::pair().map_err(|e| Failure::internal("socketpair", e))?;
        let helper_end = OwnedFd::from(helper_end);
        // A helper forked by the zygote, or (without one) an exec of sandboxd.
        let mut helper = match &assets.zygote {
            Some(_) => None,
            None => Some(
                tokio::process::Command::new("/proc/self/exe")
                    .arg(HELPER_ARG)
                    .stdin(Stdio::from(
                        helper_end
                            .try_clone()
                            .map_err(|e| Failure::internal("dup", e))?,
                    ))
                    .stdout(Stdio::null())
                    .stderr(Stdio::inherit())
                    .kill_on_drop(true)
                    .spawn()
                    .map_err(|e| Failure::internal("starting the sandbox helper", e))?,
            ),
        };
        let memfd = assets
            .memfd
            .try_clone()
            .map_err(|e| Failure::internal("dup of the init memfd", e))?;
        let plan_copy = plan.clone();
        let assets2 = assets.clone();
        let ctl = tokio::task::spawn_blocking(move || -> Result<StdUnixStream, Failure> {
            if let Some(z) = assets2.zygote.as_ref() {
                z.fork_helper(&helper_end)
                    .map_err(|e| Failure::internal("forking the sandbox helper", e))?;
            }
            drop(helper_end);
            let ctl = daemon_end;
            let send = || -> Result<(), ipc::IpcError> {
                ipc::send_fds(&ctl, &[memfd.as_raw_fd(), init_end.as_raw_fd()])?;
                ipc::send(
                    &mut ctl.try_clone().map_err(ipc::IpcError::Send)?,
                    &plan_copy,
                )
            };
            send()
                .map_err(|e| Failure::internal("handing the plan to the helper", ipc::chain(&e)))?;
            Ok(ctl)
            // Our copies of memfd and init_end close here: the helper has its own.
        })
        .await
        .map_err(|e| Failure::internal("handing the plan to the helper", e))??;
        let (rd, wr) = to_tokio(ctl)?.into_split();
        let mut events = helper_events(rd);
        let init_pid = match events.recv().await {
            Some(HelperEvent::Started { init_pid }) => init_pid,
            Some(HelperEvent::Failed { error }) => {
                if let Some(h) = helper.as_mut() {
                    let _ = h.wait().await;
                }
                return Err(Failure::new(ErrorCode::SpawnFailed, error));
            }
            other => {
                if let Some(h) = helper.as_mut() {
                    let _ = h.wait().await;
                }
                return Err(Failure::new(
                    ErrorCode::SpawnFailed,
                    format!("the sandbox helper ended unexpectedly ({other:?})"),
                ));
            }
        };
        let (init_rd, mut init_wr) = to_tokio(init_daemon_end)?.into_split();
        send_frame(&mut init_wr, &config).await?;
        let routes: Routes = Arc::default();
        let (ready_tx, ready_rx) = oneshot::channel();
        tokio::spawn(init_reader(init_rd, routes.clone(), ready_tx));
        let sandbox = LiveSandbox {
            helper_tx: tokio::sync::Mutex::new(wr),
            init_tx: tokio::sync::Mutex::new(init_wr),
            routes,
            next_exec: AtomicU64::new(1),
            init_pid,
        };
        let monitor = Monitor { helper, events };
        if ready_rx.await.is_err() {
            sandbox.kill().await;
            monitor.wait().await;
            return Err(Failure::new(
                ErrorCode::SpawnFailed,
                "sandbox-init did not start (see the daemon's log)",
            ));
        }
        Ok((sandbox, monitor))
    }

    /// Starts `req` (its `exec_id` is replaced by the next free one) with `stdio` as its
    /// stdin, stdout and stderr, or on a new pty when `req.tty` is set (then `stdio` is None).
    pub async fn exec(
        &self,
        mut req: ExecRequest,
        stdio: Option<[OwnedFd; 3]>,
    ) -> Result<ExecHandle, Failure> {
        let exec_id = self.next_exec.fetch_add(1, Ordering::Relaxed);
        req.exec_id = exec_id;
        let tty = req.tty.is_some();
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.routes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(exec_id, Route { tx, tty });
        {
            let mut w = self.init_tx.lock().await;
            send_frame(&mut w, &ToInit::Exec(req)).await?;
            if let Some(stdio) = &stdio {
                let raw: Vec<RawFd> = stdio.iter().map(|f| f.as_raw_fd()).collect();
                send_fds(&w, &raw).await?;
            }
        }
        drop(stdio);
        match rx.recv().await {
            Some((FromInit::ExecStarted { pid, .. }, master)) => Ok(ExecHandle {
                exec_id,
                pid,
                master,
                events: rx,
            }),
            Some((FromInit::ExecFailed { error, .. }, _)) => {
                Err(Failure::new(ErrorCode::SpawnFailed, error))
            }
            _ => Err(Failure::new(
                ErrorCode::SpawnFailed,
                "the sandbox ended before the command started",
            )),
        }
    }

    /// Signals an exec's process group.
    pub async fn signal(&self, exec_id: u64, signal: i32) {
        let mut w = self.init_tx.lock().await;
        let _ = send_frame(&mut w, &ToInit::Signal { exec_id, signal }).await;
    }

    /// Signals every process of the sandbox but its init.
    pub async fn signal_all(&self, signal: i32) {
        let mut w = self.init_tx.lock().await;
        let _ = send_frame(&mut w, &ToInit::SignalAll { signal }).await;
    }

    /// Kills the whole sandbox (its init, and with it the pid namespace).
    pub async fn kill(&self) {
        if let Ok(frame) = sandbox_proto::encode(&HelperCommand::Kill {
            signal: libc::SIGKILL,
        }) {
            let _ = self.helper_tx.lock().await.write_all(&frame).await;
        }
    }
}

fn to_tokio(s: StdUnixStream) -> Result<tokio::net::UnixStream, Failure> {
    s.set_nonblocking(true)
        .map_err(|e| Failure::internal("socket", e))?;
    tokio::net::UnixStream::from_std(s).map_err(|e| Failure::internal("socket", e))
}

async fn send_frame<T: serde::Serialize>(w: &mut OwnedWriteHalf, msg: &T) -> Result<(), Failure> {
    let frame = sandbox_proto::encode(msg).map_err(|e| Failure::internal("encoding", e))?;
    w.write_all(&frame).await.map_err(|e| {
        Failure::new(
            ErrorCode::SpawnFailed,
            format!("talking to sandbox-init: {e}"),
        )
    })
}

async fn send_fds(w: &OwnedWriteHalf, fds: &[RawFd]) -> Result<(), Failure> {
    let sock: &tokio::net::UnixStream = w.as_ref();
    sock.async_io(Interest::WRITABLE, || {
        let iov = [IoSlice::new(b"F")];
        let cmsg = [ControlMessage::ScmRights(fds)];
        sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_DONTWAIT, None)
            .map(drop)
            .map_err(std::io::Error::from)
    })
    .await
    .map_err(|e| {
        Failure::new(
            ErrorCode::SpawnFailed,
            format!("passing stdio to sandbox-init: {e}"),
        )
    })
}

/// Routes sandbox-init's messages to the execs they are about (with the pty master that
/// follows a tty exec's start); `Ready` to the starter. At the end of the stream (the sandbox
/// is gone), every route closes.
async fn init_reader(mut rd: OwnedReadHalf, routes: Routes, ready: oneshot::Sender<()>) {
    let mut ready = Some(ready);
    while let Ok(Some(body)) =
        sandbox_proto::codec::read_frame_async(&mut rd, ipc::MAX_INTERNAL_FRAME).await
    {
        let Ok(msg) = sandbox_proto::unpack::<FromInit>(&body) else {
            break;
        };
        let exec_id = match &msg {
            FromInit::Ready => {
                if let Some(r) = ready.take() {
                    let _ = r.send(());
                }
                continue;
            }
            FromInit::ExecStarted { exec_id, .. }
            | FromInit::ExecFailed { exec_id, .. }
            | FromInit::ExecExited { exec_id, .. } => *exec_id,
        };
        let started = matches!(msg, FromInit::ExecStarted { .. });
        let tty = routes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&exec_id)
            .is_some_and(|r| r.tty);
        let master = if started && tty {
            match recv_fd(&rd).await {
                Ok(fd) => Some(fd),
                Err(_) => break,
            }
        } else {
            None
        };
        let mut r = routes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(route) = r.get(&exec_id) {
            let _ = route.tx.send((msg, master));
        }
        if !started {
            r.remove(&exec_id);
        }
    }
    routes.lock().unwrap_or_else(|p| p.into_inner()).clear();
}

/// Receives the one fd that sandbox-init sends after a tty exec's start.
async fn recv_fd(rd: &OwnedReadHalf) -> std::io::Result<OwnedFd> {
    let sock: &tokio::net::UnixStream = rd.as_ref();
    sock.async_io(Interest::READABLE, || {
        let mut byte = [0u8; 1];
        let mut iov = [std::io::IoSliceMut::new(&mut byte)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let msg = nix::sys::socket::recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT,
        )
        .map_err(std::io::Error::from)?;
        for c in msg.cmsgs().map_err(std::io::Error::from)? {
            if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
                if let Some(&fd) = fds.first() {
                    // SAFETY: SCM_RIGHTS installed this fd in our table just now; nothing
                    // else owns it.
                    #[allow(unsafe_code)]
                    return Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
                }
            }
        }
        Err(std::io::Error::other("no fd with the pty master message"))
    })
    .await
}

/// Reads the helper's events into a channel (a frame read is not cancel-safe; a channel is).
fn helper_events(mut rd: OwnedReadHalf) -> mpsc::Receiver<HelperEvent> {
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

//! One client connection: handshake, then decode frames and dispatch them; a writer task
//! sends responses. Bad input gets a typed error (or, when framing is lost, a closed
//! connection) and never affects other connections.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sandbox_proto::codec::{read_frame_async, write_frame_async};
use sandbox_proto::{
    DaemonStatus, DecodeError, ErrorCode, FrameError, Request, Response, PROTOCOL_VERSION,
};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, Semaphore};
use tracing::{debug, info, info_span, warn, Instrument};

use super::Daemon;
use crate::policy::Caller;
use crate::sandbox::link::{self, LinkTx, Refused};
use crate::sandbox::live::Failure;
use crate::sandbox::run;
use crate::sandbox::{create, exec, ops};

/// How long a new connection may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Single-answer calls (create, files, inspect...) in progress at once per connection.
const SINGLE_CALLS: usize = 16;
/// Responses queued for the writer (each at most one frame).
const OUT_QUEUE: usize = 64;

fn error(id: Option<u64>, code: ErrorCode, message: impl Into<String>) -> Response {
    Response::Error {
        id,
        code,
        message: message.into(),
    }
}

/// Serves one connection until it closes.
pub async fn serve(daemon: Arc<Daemon>, stream: UnixStream) {
    let caller = match stream.peer_cred() {
        Ok(c) => Caller {
            uid: c.uid(),
            gid: c.gid(),
            pid: c.pid().unwrap_or(0),
        },
        Err(e) => {
            warn!(error = %e, "reading the peer's credentials; closing");
            return;
        }
    };
    // Every log line about this client's requests carries its credentials.
    let span = info_span!(
        "client",
        uid = caller.uid,
        gid = caller.gid,
        pid = caller.pid
    );
    serve_as(daemon, stream, caller).instrument(span).await;
}

async fn serve_as(daemon: Arc<Daemon>, stream: UnixStream, caller: Caller) {
    let (mut rd, mut wr) = stream.into_split();
    let (out, mut out_rx) = mpsc::channel::<Response>(OUT_QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(resp) = out_rx.recv().await {
            let Ok(frame) = sandbox_proto::encode(&resp) else {
                continue;
            };
            if write_frame_async(&mut wr, &frame).await.is_err() {
                break;
            }
            if matches!(
                resp,
                Response::Error {
                    id: None,
                    code: ErrorCode::VersionMismatch | ErrorCode::FrameTooLarge,
                    ..
                }
            ) {
                break;
            }
        }
    });
    let max = daemon.cfg.max_frame;
    let mut hello = false;
    // The whole handshake must finish in time, however many frames the client sends first.
    let hello_deadline = tokio::time::Instant::now() + HELLO_TIMEOUT;
    let mut runs: HashMap<u64, LinkTx> = HashMap::new();
    let slots = Arc::new(Semaphore::new(SINGLE_CALLS));
    loop {
        let frame = if hello {
            read_frame_async(&mut rd, max).await
        } else {
            match tokio::time::timeout_at(hello_deadline, read_frame_async(&mut rd, max)).await {
                Ok(r) => r,
                Err(_) => {
                    let _ = out
                        .send(error(
                            None,
                            ErrorCode::ProtocolViolation,
                            "no hello within 10 s",
                        ))
                        .await;
                    break;
                }
            }
        };
        let body = match frame {
            Ok(Some(b)) => b,
            Ok(None) => break,
            Err(FrameError::TooLarge { len, max }) => {
                info!(len, "frame over the limit; closing");
                let _ = out
                    .send(error(
                        None,
                        ErrorCode::FrameTooLarge,
                        format!("frame of {len} bytes exceeds the limit of {max} bytes"),
                    ))
                    .await;
                break;
            }
            Err(e) => {
                debug!(error = %e, "connection ended");
                break;
            }
        };
        let req = match sandbox_proto::decode_request(&body) {
            Ok(r) => r,
            Err(DecodeError::UnknownType(t)) => {
                info!(kind = t, "unknown request type");
                let _ = out
                    .send(error(
                        None,
                        ErrorCode::UnknownRequest,
                        format!("unknown request type {t:?}"),
                    ))
                    .await;
                continue;
            }
            Err(e) => {
                info!(error = %e, "bad frame");
                // Address the error to the request, if its id is readable.
                let id = sandbox_proto::peek_id(&body);
                let _ = out
                    .send(error(id, ErrorCode::BadFrame, e.to_string()))
                    .await;
                continue;
            }
        };
        if !hello {
            match req {
                Request::Hello { protocol, client } if protocol == PROTOCOL_VERSION => {
                    info!(client, "hello");
                    hello = true;
                    let _ = out
                        .send(Response::Welcome {
                            protocol: PROTOCOL_VERSION,
                            daemon: format!("sandboxd {}", env!("CARGO_PKG_VERSION")),
                            max_frame: u32::try_from(max).unwrap_or(u32::MAX),
                            window: sandbox_proto::DEFAULT_WINDOW,
                        })
                        .await;
                }
                Request::Hello { protocol, .. } => {
                    info!(protocol, "protocol version mismatch");
                    let msg = format!(
                        "client speaks protocol {protocol}, this daemon speaks {PROTOCOL_VERSION}"
                    );
                    let _ = out.send(error(None, ErrorCode::VersionMismatch, msg)).await;
                    break;
                }
                _ => {
                    let _ = out
                        .send(error(
                            None,
                            ErrorCode::ProtocolViolation,
                            "the first message must be hello",
                        ))
                        .await;
                    break;
                }
            }
            continue;
        }
        dispatch(&daemon, caller, req, &out, &mut runs, &slots).await;
    }
    // Dropping the run inputs tells every live run that its client is gone.
    drop(runs);
    drop(out);
    let _ = writer.await;
}

async fn dispatch(
    daemon: &Arc<Daemon>,
    caller: Caller,
    req: Request,
    out: &mpsc::Sender<Response>,
    runs: &mut HashMap<u64, LinkTx>,
    slots: &Arc<Semaphore>,
) {
    // A run is forgotten once its final frame is queued, so nothing about it can follow it.
    runs.retain(|_, tx| !tx.is_done());
    let (id, input) = match req {
        Request::Hello { .. } => {
            let _ = out
                .send(error(
                    None,
                    ErrorCode::ProtocolViolation,
                    "hello was already sent",
                ))
                .await;
            return;
        }
        Request::Status { id } => {
            info!(id, "status");
            let info = DaemonStatus {
                daemon: format!("sandboxd {}", env!("CARGO_PKG_VERSION")),
                cgroup_version: crate::cgroups::version().as_str().to_string(),
                // Like every other call, a non-root caller sees only its own sandboxes.
                sandboxes: daemon
                    .registry
                    .summaries()
                    .into_iter()
                    .filter(|s| caller.uid == 0 || s.owner_uid == caller.uid)
                    .collect(),
            };
            let _ = out.send(Response::Status { id, info }).await;
            return;
        }
        Request::Run { id, spec } => {
            if runs.contains_key(&id) {
                let _ = out
                    .send(error(
                        Some(id),
                        ErrorCode::ProtocolViolation,
                        format!("run id {id} is in use"),
                    ))
                    .await;
                return;
            }
            if runs.len() >= daemon.cfg.max_runs_per_connection {
                let msg = format!(
                    "at most {} runs per connection",
                    daemon.cfg.max_runs_per_connection
                );
                let _ = out
                    .send(error(Some(id), ErrorCode::ResourceExhausted, msg))
                    .await;
                return;
            }
            let (tx, rx) = link::link(sandbox_proto::DEFAULT_WINDOW, spec.stdin);
            runs.insert(id, tx);
            tokio::spawn(
                run::run(daemon.ctx.clone(), caller, id, spec, out.clone(), rx).in_current_span(),
            );
            return;
        }
        Request::Exec {
            id,
            sandbox_id,
            spec,
        } => {
            if let Some(rx) =
                open_stream(daemon, id, spec.stdin || spec.tty.is_some(), out, runs).await
            {
                let f = exec::exec(
                    daemon.ctx.clone(),
                    caller,
                    id,
                    sandbox_id,
                    spec,
                    out.clone(),
                    rx,
                );
                tokio::spawn(f.in_current_span());
            }
            return;
        }
        Request::Attach {
            id,
            sandbox_id,
            exec_id,
            from_seq,
        } => {
            if let Some(rx) = open_stream(daemon, id, false, out, runs).await {
                let f = exec::attach(
                    daemon.ctx.clone(),
                    caller,
                    id,
                    sandbox_id,
                    exec_id,
                    from_seq,
                    out.clone(),
                    rx,
                );
                tokio::spawn(f.in_current_span());
            }
            return;
        }
        Request::Resize { id, rows, cols } => {
            if let Some(tx) = runs.get(&id) {
                let _ = tx.resize(rows, cols);
            }
            return;
        }
        Request::Create { id, spec } => {
            info!(id, "create");
            let ctx = daemon.ctx.clone();
            single(slots, out, id, async move {
                create::create(&ctx, caller, spec)
                    .await
                    .map(|sandbox| Response::Created { id, sandbox })
            })
            .await;
            return;
        }
        Request::Destroy { id, sandbox_id } => {
            info!(id, sandbox = %sandbox_id, "destroy");
            let ctx = daemon.ctx.clone();
            single(slots, out, id, async move {
                create::destroy(&ctx, &caller, &sandbox_id)
                    .await
                    .map(|()| Response::Done { id })
            })
            .await;
            return;
        }
        req @ (Request::ExportBundle { .. }
        | Request::Policy { .. }
        | Request::List { .. }
        | Request::Inspect { .. }
        | Request::Stats { .. }
        | Request::Signal { .. }
        | Request::Pause { .. }
        | Request::Resume { .. }
        | Request::FileRead { .. }
        | Request::FileWrite { .. }
        | Request::FileList { .. }
        | Request::FileStat { .. }
        | Request::FileMkdir { .. }
        | Request::FileRemove { .. }) => {
            let id = request_id(&req);
            debug!(id, kind = request_kind(&req), "request");
            let ctx = daemon.ctx.clone();
            single(slots, out, id, async move {
                ops::answer(&ctx, &caller, req).await
            })
            .await;
            return;
        }
        Request::Stdin { id, data } => (id, Input::Stdin(data)),
        Request::CloseStdin { id } => (id, Input::CloseStdin),
        Request::Credit { id, stream, bytes } => {
            // Credit may race with the run's end; for a run that is gone it means nothing.
            if let Some(tx) = runs.get(&id) {
                tx.credit(stream, bytes);
            }
            return;
        }
        Request::Kill { id, signal } => {
            info!(id, signal, "kill");
            (id, Input::Kill(signal))
        }
    };
    let Some(tx) = runs.get_mut(&id) else {
        let msg = format!("no live run with id {id}");
        let _ = out
            .send(error(Some(id), ErrorCode::ProtocolViolation, msg))
            .await;
        return;
    };
    let refused = match input {
        Input::Stdin(data) => tx.stdin(data).err(),
        Input::CloseStdin => {
            tx.close_stdin();
            None
        }
        Input::Kill(signal) => tx.signal(signal).err(),
    };
    match refused {
        // The run reports the violation itself, as its final frame.
        None | Some(Refused::Violation(_)) => {}
        Some(Refused::Busy) => {
            let msg = format!("too many signals pending for run {id}");
            let _ = out
                .send(error(None, ErrorCode::ResourceExhausted, msg))
                .await;
        }
    }
}

/// Registers a streamed request (`exec`, `attach`) under `id`; None (after answering an error)
/// if the id is in use or the connection has too many.
async fn open_stream(
    daemon: &Arc<Daemon>,
    id: u64,
    stdin: bool,
    out: &mpsc::Sender<Response>,
    runs: &mut HashMap<u64, LinkTx>,
) -> Option<link::LinkRx> {
    if runs.contains_key(&id) {
        let _ = out
            .send(error(
                Some(id),
                ErrorCode::ProtocolViolation,
                format!("run id {id} is in use"),
            ))
            .await;
        return None;
    }
    if runs.len() >= daemon.cfg.max_runs_per_connection {
        let msg = format!(
            "at most {} runs per connection",
            daemon.cfg.max_runs_per_connection
        );
        let _ = out
            .send(error(Some(id), ErrorCode::ResourceExhausted, msg))
            .await;
        return None;
    }
    let (tx, rx) = link::link(sandbox_proto::DEFAULT_WINDOW, stdin);
    runs.insert(id, tx);
    Some(rx)
}

/// Answers a single-answer request in its own task, at most `SINGLE_CALLS` at once per
/// connection (the reader waits for a slot, so a flood of calls slows only its sender).
async fn single(
    slots: &Arc<Semaphore>,
    out: &mpsc::Sender<Response>,
    id: u64,
    call: impl std::future::Future<Output = Result<Response, Failure>> + Send + 'static,
) {
    let Ok(permit) = slots.clone().acquire_owned().await else {
        return;
    };
    let out = out.clone();
    tokio::spawn(
        async move {
            let resp = match call.await {
                Ok(r) => r,
                Err(f) => f.into_response(id),
            };
            let _ = out.send(resp).await;
            drop(permit);
        }
        .in_current_span(),
    );
}

fn request_id(req: &Request) -> u64 {
    match req {
        Request::ExportBundle { id, .. }
        | Request::Policy { id, .. }
        | Request::List { id }
        | Request::Inspect { id, .. }
        | Request::Stats { id, .. }
        | Request::Signal { id, .. }
        | Request::Pause { id, .. }
        | Request::Resume { id, .. }
        | Request::FileRead { id, .. }
        | Request::FileWrite { id, .. }
        | Request::FileList { id, .. }
        | Request::FileStat { id, .. }
        | Request::FileMkdir { id, .. }
        | Request::FileRemove { id, .. } => *id,
        _ => 0,
    }
}

fn request_kind(req: &Request) -> &'static str {
    match req {
        Request::ExportBundle { .. } => "export_bundle",
        Request::Policy { .. } => "policy",
        Request::List { .. } => "list",
        Request::Inspect { .. } => "inspect",
        Request::Stats { .. } => "stats",
        Request::Signal { .. } => "signal",
        Request::Pause { .. } => "pause",
        Request::Resume { .. } => "resume",
        Request::FileRead { .. } => "file_read",
        Request::FileWrite { .. } => "file_write",
        Request::FileList { .. } => "file_list",
        Request::FileStat { .. } => "file_stat",
        Request::FileMkdir { .. } => "file_mkdir",
        Request::FileRemove { .. } => "file_remove",
        _ => "other",
    }
}

/// What the connection passes to a run besides credit.
enum Input {
    Stdin(Vec<u8>),
    CloseStdin,
    Kill(i32),
}

//! The single-answer calls: export_bundle and policy (answered by `export`); about a kept
//! sandbox: list, inspect, stats, signal, pause, resume,
//! and the file calls (resolved inside the sandbox's root, never following a symlink out).

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use sandbox_proto::{ErrorCode, FileStat, Request, Response, MAX_FILE_CHUNK};

use crate::files;
use crate::policy::Caller;
use crate::sandbox::create::not_found;
use crate::sandbox::kept::Kept;
use crate::sandbox::live::Failure;
use crate::sandbox::run::RunContext;

/// Answers one single-answer request about kept sandboxes.
pub async fn answer(ctx: &RunContext, caller: &Caller, req: Request) -> Result<Response, Failure> {
    let lookup = |sid: &str| -> Result<Arc<Kept>, Failure> {
        let k = ctx.kept.get(caller, sid).ok_or_else(|| not_found(sid))?;
        k.touch();
        Ok(k)
    };
    match req {
        Request::ExportBundle { id, spec } => {
            let (config, rootfs) = super::export::export_bundle(ctx, caller, spec).await?;
            Ok(Response::Bundle { id, config, rootfs })
        }
        Request::Policy { id, name } => {
            let (name, text) = super::export::show_policy(ctx, name.as_deref())?;
            Ok(Response::Policy { id, name, text })
        }
        Request::List { id } => {
            let sandboxes = ctx.kept.list(caller).iter().map(|k| k.info()).collect();
            Ok(Response::Sandboxes { id, sandboxes })
        }
        Request::Inspect { id, sandbox_id } => Ok(Response::Sandbox {
            id,
            info: lookup(&sandbox_id)?.info(),
        }),
        Request::Stats { id, sandbox_id } => {
            let k = lookup(&sandbox_id)?;
            let stats = blocking(move || k.cgroup.stats())
                .await?
                .map_err(|e| internal(&e))?;
            Ok(Response::Stats { id, stats })
        }
        Request::Signal {
            id,
            sandbox_id,
            exec_id,
            signal,
        } => {
            if !(1..=31).contains(&signal) {
                return Err(Failure::new(
                    ErrorCode::InvalidArgument,
                    format!("signal: {signal} is outside 1..31"),
                ));
            }
            let k = lookup(&sandbox_id)?;
            match exec_id {
                Some(e) if k.exec(e).is_none() => {
                    return Err(Failure::new(ErrorCode::NotFound, format!("no exec {e}")))
                }
                Some(e) => k.live.signal(e, signal).await,
                None => k.live.signal_all(signal).await,
            }
            Ok(Response::Done { id })
        }
        Request::Pause { id, sandbox_id } => pause(lookup(&sandbox_id)?, true)
            .await
            .map(|()| Response::Done { id }),
        Request::Resume { id, sandbox_id } => pause(lookup(&sandbox_id)?, false)
            .await
            .map(|()| Response::Done { id }),
        Request::FileRead {
            id,
            sandbox_id,
            path,
            offset,
            len,
        } => {
            let k = lookup(&sandbox_id)?;
            let want = usize::try_from(len)
                .unwrap_or(MAX_FILE_CHUNK)
                .min(MAX_FILE_CHUNK);
            let data = in_root(k, move |root, _| files::read(root, &path, offset, want)).await?;
            let eof = data.len() < want;
            Ok(Response::FileData { id, data, eof })
        }
        Request::FileWrite {
            id,
            sandbox_id,
            path,
            offset,
            data,
            truncate,
            mode,
        } => {
            let k = lookup(&sandbox_id)?;
            in_root(k, move |root, owner| {
                files::write(root, &path, offset, &data, true, truncate, mode, owner)
            })
            .await?;
            Ok(Response::Done { id })
        }
        Request::FileList {
            id,
            sandbox_id,
            path,
        } => {
            let k = lookup(&sandbox_id)?;
            let base = k.plan.ids.host_base;
            let mut entries = in_root(k, move |root, _| files::list(root, &path)).await?;
            entries.iter_mut().for_each(|e| to_sandbox_ids(e, base));
            Ok(Response::FileList { id, entries })
        }
        Request::FileStat {
            id,
            sandbox_id,
            path,
        } => {
            let k = lookup(&sandbox_id)?;
            let base = k.plan.ids.host_base;
            let mut stat = in_root(k, move |root, _| files::stat(root, &path)).await?;
            to_sandbox_ids(&mut stat, base);
            Ok(Response::FileInfo { id, stat })
        }
        Request::FileMkdir {
            id,
            sandbox_id,
            path,
            parents,
            mode,
        } => {
            let k = lookup(&sandbox_id)?;
            in_root(k, move |root, owner| {
                files::mkdir(root, &path, mode, parents, owner)
            })
            .await?;
            Ok(Response::Done { id })
        }
        Request::FileRemove {
            id,
            sandbox_id,
            path,
            recursive,
        } => {
            let k = lookup(&sandbox_id)?;
            in_root(k, move |root, _| files::remove(root, &path, recursive)).await?;
            Ok(Response::Done { id })
        }
        other => Err(Failure::new(
            ErrorCode::Internal,
            format!("not a single-answer request: {other:?}"),
        )),
    }
}

/// Freezes (`true`) or thaws every process of the sandbox with the cgroup freezer.
async fn pause(k: Arc<Kept>, paused: bool) -> Result<(), Failure> {
    let k2 = k.clone();
    blocking(move || {
        if paused {
            k2.cgroup.freeze()
        } else {
            k2.cgroup.thaw()
        }
    })
    .await?
    .map_err(|e| internal(&e))?;
    k.set_paused(paused);
    Ok(())
}

fn internal(e: &dyn std::error::Error) -> Failure {
    Failure::new(ErrorCode::Internal, crate::isolation::ipc::chain(e))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Failure> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Failure::new(ErrorCode::Internal, e.to_string()))
}

/// Runs a file call against the sandbox's root (`/proc/<init>/root`, which walks the
/// sandbox's own mounts), as its root user for new files.
async fn in_root<T: Send + 'static>(
    k: Arc<Kept>,
    f: impl FnOnce(std::os::fd::BorrowedFd<'_>, (u32, u32)) -> files::Result<T> + Send + 'static,
) -> Result<T, Failure> {
    blocking(move || {
        let root: OwnedFd = nix::fcntl::open(
            format!("/proc/{}/root", k.live.init_pid).as_str(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            Failure::new(
                ErrorCode::NotFound,
                format!("the sandbox's root is gone: {e}"),
            )
        })?;
        let base = k.plan.ids.host_base;
        // As the sandbox's root, without capabilities (changing the fs ids from 0 drops the
        // fs capabilities): the call can do what root inside could, and files it creates
        // belong to it (a filesystem mounted in the sandbox refuses ids it cannot map).
        let _as_sandbox = FsIds::switch(base);
        f(root.as_fd(), (base, base))
            .map_err(|e| Failure::new(ErrorCode::FileError, format!("{}: {e}", e.code())))
    })
    .await?
}

/// This thread's filesystem uid and gid, switched for a file call and restored on drop
/// (they are per thread, and the blocking pool reuses threads).
struct FsIds;

impl FsIds {
    fn switch(id: u32) -> FsIds {
        nix::unistd::setfsgid(nix::unistd::Gid::from_raw(id));
        nix::unistd::setfsuid(nix::unistd::Uid::from_raw(id));
        FsIds
    }
}

impl Drop for FsIds {
    fn drop(&mut self) {
        nix::unistd::setfsuid(nix::unistd::Uid::from_raw(0));
        nix::unistd::setfsgid(nix::unistd::Gid::from_raw(0));
    }
}

/// Host ids → the ids the sandbox sees (65534 for ids outside its range).
fn to_sandbox_ids(s: &mut FileStat, base: u32) {
    let map = |id: u32| {
        if (base..base.saturating_add(65536)).contains(&id) {
            id - base
        } else {
            65534
        }
    };
    s.uid = map(s.uid);
    s.gid = map(s.gid);
}

//! Starting one exec: fork; in the child, stdio (pipes or a new pseudo-terminal), default
//! signals, a new session, rlimits, cwd; then, as the requested unprivileged user: no
//! capabilities, no_new_privs, the seccomp filters, only fds 0-2, exec. Returns only in the
//! parent.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use caps::CapSet;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout, fork, ForkResult, Gid, Pid, Uid};
use sandbox_proto::init::{BpfInsn, ExecRequest, InitConfig, TtySize};

/// Forks the exec. Returns its pid and, for a tty exec, the pty master.
pub fn spawn(
    config: &InitConfig,
    req: &ExecRequest,
    stdio: Option<Vec<OwnedFd>>,
) -> Result<(Pid, Option<OwnedFd>), String> {
    let (master, slave_path) = match req.tty {
        Some(size) => {
            let (m, p) = open_pty(size).map_err(|e| format!("opening a pseudo-terminal: {e}"))?;
            (Some(m), Some(p))
        }
        None => (None, None),
    };
    // SAFETY: init is single-threaded, so the child may run any code; it only sets itself up
    // and execs (or exits).
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            let Err((code, err)) = child(config, req, stdio.as_deref(), slave_path.as_ref());
            let _ = writeln!(std::io::stderr(), "sandbox: {err}");
            std::process::exit(code);
        }
        ForkResult::Parent { child } => Ok((child, master.map(OwnedFd::from))),
    }
}

fn open_pty(size: TtySize) -> nix::Result<(nix::pty::PtyMaster, CString)> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let path = ptsname_r(&master)?;
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ only reads `ws`, which lives across the call.
    Errno::result(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) })?;
    Ok((master, CString::new(path).map_err(|_| Errno::EINVAL)?))
}

type ChildError = (i32, String);

fn fail(what: &str) -> impl Fn(Errno) -> ChildError + '_ {
    move |e| (126, format!("{what}: {e}"))
}

/// The child's whole life; returns only on failure.
fn child(
    config: &InitConfig,
    req: &ExecRequest,
    stdio: Option<&[OwnedFd]>,
    tty: Option<&CString>,
) -> Result<std::convert::Infallible, ChildError> {
    // A new session: the exec's process group is its own (signals reach all of it), and a
    // terminal opened next becomes its controlling terminal.
    nix::unistd::setsid().map_err(fail("setsid"))?;
    match (stdio, tty) {
        (Some(fds), _) if fds.len() == 3 => {
            dup2_stdin(fds[0].as_fd()).map_err(fail("stdin"))?;
            dup2_stdout(fds[1].as_fd()).map_err(fail("stdout"))?;
            dup2_stderr(fds[2].as_fd()).map_err(fail("stderr"))?;
        }
        (_, Some(path)) => {
            let slave = nix::fcntl::open(
                path.as_c_str(),
                OFlag::O_RDWR,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(fail("opening the terminal"))?;
            // SAFETY: TIOCSCTTY takes an integer argument and touches no memory of ours.
            Errno::result(unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) })
                .map_err(fail("TIOCSCTTY"))?;
            dup2_stdin(slave.as_fd()).map_err(fail("stdin"))?;
            dup2_stdout(slave.as_fd()).map_err(fail("stdout"))?;
            dup2_stderr(slave.as_fd()).map_err(fail("stderr"))?;
        }
        _ => return Err((126, "no stdio".into())),
    }
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in Signal::iterator().filter(|s| !matches!(s, Signal::SIGKILL | Signal::SIGSTOP)) {
        // SAFETY: installing SIG_DFL involves no handler code; the process is single-threaded.
        let _ = unsafe { sigaction(sig, &dfl) };
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(fail("signal mask"))?;
    let hard = getrlimit(Resource::RLIMIT_NOFILE)
        .map(|(_, h)| h)
        .map_err(fail("getrlimit"))?;
    let nofile = config.nofile.min(hard);
    setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(fail("RLIMIT_CORE"))?;
    setrlimit(Resource::RLIMIT_NOFILE, nofile, nofile).map_err(fail("RLIMIT_NOFILE"))?;
    nix::unistd::chdir(req.cwd.as_str()).map_err(|e| (126, format!("cwd {}: {e}", req.cwd)))?;
    let path = resolve(&req.argv[0], &req.env)?;
    let cpath = CString::new(path.as_str()).map_err(|_| (126, "NUL in path".to_string()))?;
    let args = cstrings(&req.argv)?;
    let env = cstrings(&req.env)?;

    let keep = kept_caps(&config.capabilities)?;
    // Nothing may be regained by exec: reduce the bounding set to what is kept while we still
    // hold CAP_SETPCAP.
    for cap in caps::all() {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap)
                .map_err(|e| (126, format!("bounding set: {e}")))?;
        }
    }
    if !keep.is_empty() {
        // Keep the permitted set through the change of uid (a non-root exec keeps its
        // capabilities only as ambient ones, which need them inheritable).
        nix::sys::prctl::set_keepcaps(true).map_err(fail("keepcaps"))?;
        caps::set(None, CapSet::Inheritable, &keep)
            .map_err(|e| (126, format!("inheritable set: {e}")))?;
    }
    nix::unistd::setgroups(&[]).map_err(fail("setgroups"))?;
    nix::unistd::setresgid(
        Gid::from_raw(req.gid),
        Gid::from_raw(req.gid),
        Gid::from_raw(req.gid),
    )
    .map_err(fail("setresgid"))?;
    nix::unistd::setresuid(
        Uid::from_raw(req.uid),
        Uid::from_raw(req.uid),
        Uid::from_raw(req.uid),
    )
    .map_err(fail("setresuid"))?;
    if keep.is_empty() {
        for set in [
            CapSet::Ambient,
            CapSet::Inheritable,
            CapSet::Effective,
            CapSet::Permitted,
        ] {
            caps::clear(None, set).map_err(|e| (126, format!("clearing capabilities: {e}")))?;
        }
    } else {
        let cap_err =
            |what: &'static str| move |e: caps::errors::CapsError| (126, format!("{what}: {e}"));
        // Effective first: it must stay a subset of the permitted set at every step.
        caps::set(None, CapSet::Effective, &keep).map_err(cap_err("effective set"))?;
        caps::set(None, CapSet::Permitted, &keep).map_err(cap_err("permitted set"))?;
        caps::clear(None, CapSet::Ambient).map_err(cap_err("ambient set"))?;
        for cap in &keep {
            caps::raise(None, CapSet::Ambient, *cap).map_err(cap_err("ambient set"))?;
        }
    }
    // The seccomp filters came with the fork from init; no_new_privs keeps exec from gaining
    // anything (setuid files, file capabilities).
    if config.no_new_privileges {
        nix::sys::prctl::set_no_new_privs().map_err(fail("no_new_privs"))?;
    }
    // SAFETY: close_range only closes descriptors; every fd above 2 is given up here and no
    // object that owns one of them is used before execve.
    Errno::result(unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) })
        .map_err(fail("closing fds"))?;
    let e = nix::unistd::execve(&cpath, &args, &env).unwrap_err();
    let code = if e == Errno::ENOENT { 127 } else { 126 };
    Err((code, format!("{path}: {e}")))
}

/// The capabilities to keep, by name.
fn kept_caps(names: &[String]) -> Result<caps::CapsHashSet, (i32, String)> {
    names
        .iter()
        .map(|n| {
            n.parse::<caps::Capability>()
                .map_err(|_| (126, format!("unknown capability {n}")))
        })
        .collect()
}

/// Installs every filter of `config` on the calling (single-threaded) process. Init holds
/// CAP_SYS_ADMIN in the sandbox's user namespace, which seccomp accepts instead of
/// no_new_privs.
pub fn install_seccomp_all(config: &InitConfig) -> nix::Result<()> {
    config.seccomp.iter().try_for_each(|f| install_seccomp(f))
}

fn install_seccomp(filter: &[BpfInsn]) -> nix::Result<()> {
    let mut insns: Vec<libc::sock_filter> = filter
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let prog = libc::sock_fprog {
        len: u16::try_from(insns.len()).map_err(|_| Errno::E2BIG)?,
        filter: insns.as_mut_ptr(),
    };
    // SAFETY: `prog` points at `insns`, both alive across the call; the kernel copies the
    // program and keeps no pointer to our memory.
    Errno::result(unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &prog as *const libc::sock_fprog,
        )
    })
    .map(drop)
}

/// `argv0` for execve: itself if it has a `/`, else the first executable file of that name in
/// the exec's `PATH`.
fn resolve(argv0: &str, env: &[String]) -> Result<String, ChildError> {
    if argv0.contains('/') {
        return Ok(argv0.to_string());
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/bin:/bin");
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = format!("{dir}/{argv0}");
        let is_file = std::fs::metadata(&candidate)
            .map(|m| m.is_file())
            .unwrap_or(false);
        if is_file
            && nix::unistd::access(candidate.as_str(), nix::unistd::AccessFlags::X_OK).is_ok()
        {
            return Ok(candidate);
        }
    }
    Err((127, format!("{argv0}: command not found")))
}

fn cstrings(v: &[String]) -> Result<Vec<CString>, ChildError> {
    v.iter()
        .map(|s| {
            CString::new(s.as_str()).map_err(|_| (126, "argument with a NUL byte".to_string()))
        })
        .collect()
}

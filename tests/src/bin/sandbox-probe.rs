//! A probe run *inside* a sandbox by the integration tests: it reports, one `key=value` per
//! line, what isolation the process actually has and what it can and cannot do. Calls that
//! must fail are made with arguments that have no effect if they succeed by mistake.

use std::net::{TcpListener, TcpStream};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};

fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| "missing".into())
}

fn errno_of<T>(r: nix::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => format!("{e:?}"),
    }
}

fn main() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mut out: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| out.push((k.to_string(), v));

    let first_line = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| {
                s.lines()
                    .next()
                    .unwrap_or("")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_else(|e| format!("error {e}"))
    };
    put("uid_map", first_line("/proc/self/uid_map"));
    put("gid_map", first_line("/proc/self/gid_map"));
    put("uid", nix::unistd::getuid().to_string());
    put("pid", std::process::id().to_string());
    let procs = std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                })
                .count()
        })
        .unwrap_or(0);
    put("procs", procs.to_string());
    put(
        "hostname",
        nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    let ifaces: Vec<String> = std::fs::read_to_string("/proc/net/dev")
        .unwrap_or_default()
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next().map(|s| s.trim().to_string()))
        .collect();
    put("net_ifaces", ifaces.join(","));
    let lo = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr().and_then(TcpStream::connect).map(|_| drop(l)))
        .is_ok();
    put("loopback_works", u8::from(lo).to_string());
    for k in [
        "CapEff",
        "CapPrm",
        "CapBnd",
        "CapInh",
        "CapAmb",
        "NoNewPrivs",
        "Seccomp",
    ] {
        put(k, status_field(&status, k));
    }
    put(
        "mount",
        errno_of(mount(
            Some("none"),
            "/tmp",
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )),
    );
    put("unshare_user", errno_of(unshare(CloneFlags::CLONE_NEWUSER)));
    put("unshare_mount", errno_of(unshare(CloneFlags::CLONE_NEWNS)));
    let fds: Vec<String> = (0..4096)
        .filter(|fd| fcntl(unsafe_borrow(*fd), FcntlArg::F_GETFD).is_ok())
        .map(|fd| fd.to_string())
        .collect();
    put("open_fds", fds.join(","));
    put(
        "cgroup",
        std::fs::read_to_string("/proc/self/cgroup")
            .unwrap_or_default()
            .trim()
            .replace('\n', ";"),
    );
    let root_write = std::fs::write("/probe-root-write", b"x")
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)));
    put("root_write", errno_of(root_write));
    let core = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_CORE)
        .map(|(s, h)| format!("{s},{h}"));
    put("rlimit_core", core.unwrap_or_default());
    let nofile = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(s, h)| format!("{s},{h}"));
    put("rlimit_nofile", nofile.unwrap_or_default());
    for p in ["/tmp", "/workspace", "/dev/shm"] {
        let size = nix::sys::statvfs::statvfs(p)
            .map(|v| (v.blocks() * v.fragment_size()).to_string())
            .unwrap_or_else(|e| format!("error {e}"));
        put(&format!("size:{p}"), size);
    }
    // Every mount point with its type and ro/rw, sorted: "/proc:proc:rw;/tmp:tmpfs:rw;...".
    let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let f: Vec<&str> = pre.split(' ').collect();
            let fstype = post.split(' ').next()?;
            let ro = f.get(5)?.split(',').next()?;
            Some(format!("{}:{fstype}:{ro}", f.get(4)?))
        })
        .collect();
    mounts.sort();
    mounts.dedup();
    put("mounts", mounts.join(";"));
    // Masked: a file has /dev/null over it, a directory an empty tmpfs (or the kernel lacks it).
    for p in [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/acpi",
        "/proc/scsi",
    ] {
        use std::os::unix::fs::FileTypeExt;
        let masked = match std::fs::metadata(p) {
            Err(_) => "absent".to_string(),
            Ok(m) if m.file_type().is_char_device() => "devnull".to_string(),
            Ok(m) if m.is_dir() => format!(
                "dir-entries-{}",
                std::fs::read_dir(p).map(|d| d.count()).unwrap_or(999)
            ),
            Ok(_) => "VISIBLE".to_string(),
        };
        put(&format!("masked:{p}"), masked);
    }
    put(
        "proc_sys_write",
        errno_of(
            std::fs::write("/proc/sys/kernel/hostname", b"x")
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0))),
        ),
    );
    for p in std::env::args().skip(1) {
        put(
            &format!("exists:{p}"),
            u8::from(Path::new(&p).exists()).to_string(),
        );
    }
    for (k, v) in out {
        println!("{k}={v}");
    }
}

/// A borrowed fd for a number that may not be open (fcntl then fails with EBADF).
fn unsafe_borrow(fd: i32) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: the fd is only passed to fcntl(F_GETFD), which reads no memory and fails
    // harmlessly with EBADF when the number is not open; it is never closed through this.
    #[allow(unsafe_code)]
    unsafe {
        std::os::fd::BorrowedFd::borrow_raw(fd)
    }
}

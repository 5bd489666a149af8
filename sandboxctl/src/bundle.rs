//! `run --bundle DIR`: an OCI bundle (`DIR/config.json` and its rootfs) as a sandboxd run
//! request — the reverse of the daemon's `oci` renderer.
//!
//! [`convert`] (pure) maps every field of the runtime spec that a sandboxd sandbox can honour
//! onto a [`RunSpec`], and refuses every other field that is present, all of them at once; a
//! field that is absent (or empty) is never refused. What is accepted but behaves differently in
//! sandboxd (no `/sys`, the daemon's own id range and cgroup, the namespaces it always creates)
//! comes back as notes for the caller to print. [`load`] reads and parses `config.json` first.
//!
//! Presence is decided on the spec as oci-spec serializes it, key by key, so a field that this
//! module does not know (a newer oci-spec's) is refused, never silently dropped.

use std::collections::BTreeSet;
use std::fmt;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{
    Capabilities, Linux, LinuxCapabilities, LinuxDeviceCgroup, LinuxDeviceType, LinuxNamespaceType,
    LinuxResources, Mount as OciMount, PosixRlimitType, Process, Spec,
};
use sandbox_proto::{FsMode, Limits, Mount, Rootfs, RunSpec};
use serde_json::Value;

#[cfg(test)]
mod tests;

/// The largest `config.json` read.
pub const MAX_CONFIG_LEN: u64 = 4 << 20;
/// The runtime-spec versions read (prefixes of `ociVersion`).
const OCI_VERSIONS: &[&str] = &["1.0.", "1.1.", "1.2."];
/// The one umask a run gets (`0o022`).
const UMASK: u32 = 0o022;
/// The default CFS period, in microseconds.
const CPU_PERIOD_US: u64 = 100_000;
/// The namespaces sandboxd always creates, in the order notes name them.
const NAMESPACES: &[(LinuxNamespaceType, &str)] = &[
    (LinuxNamespaceType::User, "user"),
    (LinuxNamespaceType::Mount, "mount"),
    (LinuxNamespaceType::Pid, "pid"),
    (LinuxNamespaceType::Network, "network"),
    (LinuxNamespaceType::Ipc, "ipc"),
    (LinuxNamespaceType::Uts, "uts"),
    (LinuxNamespaceType::Cgroup, "cgroup"),
];
/// The `/proc` paths a sandbox masks (runc's list, as `isolation::mounts::MASKED`).
const MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
];
/// The `/proc` paths a sandbox makes read-only (as `isolation::mounts::READ_ONLY`).
const READ_ONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];
/// The options a bind mount may have: how to bind, read-only or not, and flags sandboxd's binds
/// have anyway or that only restrict (propagation: a sandbox's mounts are private).
const BIND_OPTIONS: &[&str] = &[
    "bind", "rbind", "ro", "rw", "nosuid", "nodev", "noexec", "private", "rprivate", "rslave",
    "slave",
];
/// The device nodes every sandbox has (bound from the host), by path: type `c`, major, minor.
const DEVICES: &[(&str, i64, i64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];
/// Character devices a device-cgroup allow rule may name, as `(major, minor)` (`None`: any
/// minor): the nodes above, `/dev/console`, `/dev/ptmx`, the pts and `/dev/net/tun` (runc's
/// default allow list). The sandbox's `/dev` has no other nodes to open.
const CGROUP_DEVICES: &[(i64, Option<i64>)] = &[
    (1, Some(3)),
    (1, Some(5)),
    (1, Some(7)),
    (1, Some(8)),
    (1, Some(9)),
    (5, Some(0)),
    (5, Some(1)),
    (5, Some(2)),
    (136, None),
    (10, Some(200)),
];
/// The note for every mount under `/sys`.
const NO_SYS: &str = "not mounted: sandboxd sandboxes have no /sys";

/// An OCI bundle as a run request.
#[derive(Debug, Clone, PartialEq)]
pub struct BundleRun {
    /// What to send to the daemon.
    pub spec: RunSpec,
    /// `process.terminal`: the command wants a terminal.
    pub terminal: bool,
    /// `linux.seccomp` as in `config.json` (the caller compares it with the policy's).
    pub seccomp: Option<Value>,
    /// Fields accepted but handled differently, one sentence each (`field: what happens`), for
    /// the caller to print to stderr.
    pub notes: Vec<String>,
    /// The bundle directory, absolute.
    pub bundle: PathBuf,
}

/// One field of `config.json` that sandboxd cannot honour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Its JSON path, e.g. `linux.resources.blockIO` or `mounts[3] (/sys/kernel)`.
    pub field: String,
    /// Why, in a few words.
    pub reason: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// Loading a bundle failed.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Reading `config.json`, or the bundle or root directory.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// What was read.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// `config.json` is not a runtime spec oci-spec reads.
    #[error("parsing {}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Fields sandboxd cannot honour, every one.
    #[error("{}", refused_text(.0))]
    Refused(Vec<Refusal>),
}

/// The text of [`BundleError::Refused`]: a heading, then each refusal on its own line.
fn refused_text(list: &[Refusal]) -> String {
    let mut out = String::from("the bundle asks for what sandboxd does not support:");
    for r in list {
        out.push_str("\n  ");
        out.push_str(&r.to_string());
    }
    out
}

/// Reads `dir/config.json` (at most [`MAX_CONFIG_LEN`] bytes), parses it, checks that its root
/// is a directory and [`convert`]s it. `dir` may be relative; [`BundleRun::bundle`] is absolute.
pub fn load(dir: &Path) -> Result<BundleRun, BundleError> {
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BundleError::Read { path, source }
    };
    let dir = std::fs::canonicalize(dir).map_err(read_err(dir))?;
    let path = dir.join("config.json");
    let file = std::fs::File::open(&path).map_err(read_err(&path))?;
    let mut text = Vec::new();
    file.take(MAX_CONFIG_LEN + 1)
        .read_to_end(&mut text)
        .map_err(read_err(&path))?;
    if text.len() as u64 > MAX_CONFIG_LEN {
        return Err(BundleError::Parse {
            path,
            message: format!("larger than {} MiB", MAX_CONFIG_LEN >> 20),
        });
    }
    let spec: Spec = serde_json::from_slice(&text).map_err(|e| BundleError::Parse {
        path: path.clone(),
        message: e.to_string(),
    })?;
    if let Some(root) = spec.root() {
        let rootfs = under(&dir, root.path());
        let meta = std::fs::metadata(&rootfs).map_err(read_err(&rootfs))?;
        if !meta.is_dir() {
            return Err(BundleError::Read {
                path: rootfs,
                source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
            });
        }
    }
    convert(&dir, &spec).map_err(BundleError::Refused)
}

/// Maps `spec`, the `config.json` of the bundle at `dir` (absolute: relative paths in the spec
/// are taken against it), to a run request, or lists every field sandboxd cannot honour. Pure.
pub fn convert(dir: &Path, spec: &Spec) -> Result<BundleRun, Vec<Refusal>> {
    let mut c = Conv::default();
    let top = serde_json::to_value(spec).unwrap_or(Value::Null);
    c.keys(
        "",
        &top,
        &[
            "ociVersion",
            "root",
            "process",
            "hostname",
            "mounts",
            "linux",
            "annotations",
        ],
        &[
            ("domainname", "sandboxd sets only the hostname"),
            ("hooks", "sandboxd runs no hooks"),
            ("solaris", "not a Linux setting"),
            ("windows", "not a Linux setting"),
            ("vm", "sandboxd runs no virtual machines"),
            ("zos", "not a Linux setting"),
        ],
    );
    let version = spec.version();
    if !OCI_VERSIONS.iter().any(|v| version.starts_with(v)) {
        c.refuse(
            "ociVersion",
            format!("version {version:?}: sandboxd reads runtime-spec 1.0, 1.1 and 1.2"),
        );
    }
    c.root(dir, spec);
    match spec.process() {
        Some(p) => c.process(p),
        None => c.refuse("process", "missing: nothing to run"),
    }
    c.run.hostname = spec.hostname().clone().filter(|h| !h.is_empty());
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        c.mount(dir, i, m);
    }
    c.linux(spec.linux().as_ref());
    if let Some(a) = spec.annotations().as_ref().filter(|a| !a.is_empty()) {
        let mut keys: Vec<&str> = a.keys().map(String::as_str).collect();
        keys.sort_unstable();
        c.note(format!("annotations: ignored ({})", keys.join(", ")));
    }
    if !c.refusals.is_empty() {
        return Err(c.refusals);
    }
    Ok(BundleRun {
        spec: c.run,
        terminal: c.terminal,
        seccomp: c.seccomp,
        notes: c.notes,
        bundle: dir.to_path_buf(),
    })
}

/// The conversion so far.
#[derive(Debug, Default)]
struct Conv {
    run: RunSpec,
    terminal: bool,
    seccomp: Option<Value>,
    notes: Vec<String>,
    refusals: Vec<Refusal>,
}

impl Conv {
    fn refuse(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.refusals.push(Refusal {
            field: field.into(),
            reason: reason.into(),
        });
    }

    fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    fn limits(&mut self) -> &mut Limits {
        &mut self.run.limits
    }

    /// Refuses every key of the object `value` (at `path`) that holds something and is not in
    /// `handled`, in name order: with its reason from `refused`, or as unsupported.
    fn keys(&mut self, path: &str, value: &Value, handled: &[&str], refused: &[(&str, &str)]) {
        let Some(obj) = value.as_object() else {
            return;
        };
        // In name order, whatever the map's order.
        let mut present: Vec<&String> = obj
            .iter()
            .filter(|(k, v)| !handled.contains(&k.as_str()) && !is_empty(v))
            .map(|(k, _)| k)
            .collect();
        present.sort_unstable();
        for key in present {
            let reason = refused
                .iter()
                .find(|(k, _)| k == key)
                .map_or("not supported by sandboxd", |(_, r)| r);
            let field = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            self.refuse(field, reason);
        }
    }

    /// `root`: the rootfs directory, and whether it is written.
    fn root(&mut self, dir: &Path, spec: &Spec) {
        let Some(root) = spec.root() else {
            self.refuse(
                "root",
                "missing: sandboxd needs the bundle's root filesystem",
            );
            return;
        };
        if root.path().as_os_str().is_empty() {
            self.refuse("root.path", "empty");
        } else if let Some(path) = utf8("root.path", &under(dir, root.path()), self) {
            self.run.rootfs = Rootfs::Path { path };
        }
        if root.readonly() == Some(true) {
            self.run.filesystem = Some(FsMode::WorkspaceOnly);
        } else {
            self.run.filesystem = Some(FsMode::Full);
            self.note(
                "root.readonly: false: the root is a writable overlay; writes land in a tmpfs \
                 layer and are discarded with the sandbox, not written to the bundle's rootfs",
            );
        }
    }

    /// `process`: the command, its user, capabilities and rlimits.
    fn process(&mut self, p: &Process) {
        let value = serde_json::to_value(p).unwrap_or(Value::Null);
        self.keys(
            "process",
            &value,
            &[
                "terminal",
                "consoleSize",
                "user",
                "args",
                "env",
                "cwd",
                "capabilities",
                "rlimits",
                "noNewPrivileges",
            ],
            &[
                ("apparmorProfile", "sandboxd applies no AppArmor profile"),
                ("selinuxLabel", "sandboxd applies no SELinux label"),
                ("oomScoreAdj", "the daemon sets the OOM score"),
                ("ioPriority", "sandboxd sets no I/O priority"),
                ("scheduler", "sandboxd sets no scheduling policy"),
                ("execCPUAffinity", "sandboxd sets no CPU affinity"),
                ("commandLine", "Windows only"),
            ],
        );
        self.terminal = p.terminal().unwrap_or(false);
        match p.args().as_ref().filter(|a| !a.is_empty()) {
            Some(args) => self.run.argv = args.clone(),
            None => self.refuse("process.args", "missing: nothing to run"),
        }
        self.run.env = p.env().clone().unwrap_or_default();
        if p.cwd().is_absolute() {
            self.run.cwd = utf8("process.cwd", p.cwd(), self);
        } else {
            self.refuse(
                "process.cwd",
                format!("{:?} is not an absolute path", p.cwd()),
            );
        }
        let user = p.user();
        if user.uid() != 0 || user.gid() != 0 {
            self.refuse(
                "process.user",
                format!(
                    "uid {} gid {}: one-shot runs execute as root (0:0) of the sandbox",
                    user.uid(),
                    user.gid()
                ),
            );
        }
        if user
            .additional_gids()
            .as_ref()
            .is_some_and(|g| !g.is_empty())
        {
            self.refuse(
                "process.user.additionalGids",
                "sandboxd runs commands with no supplementary groups",
            );
        }
        if let Some(umask) = user.umask().filter(|m| *m != UMASK) {
            self.refuse(
                "process.user.umask",
                format!("{umask:#o}: sandboxd runs commands with umask 0o22"),
            );
        }
        if user.username().as_ref().is_some_and(|u| !u.is_empty()) {
            self.refuse("process.user.username", "Windows only");
        }
        if p.no_new_privileges() == Some(false) {
            self.refuse(
                "process.noNewPrivileges",
                "false: sandboxd always sets no_new_privs",
            );
        }
        match p.capabilities() {
            Some(caps) => self.capabilities(caps),
            None => self.note(
                "process.capabilities: absent; the policy's capabilities apply (not every \
                 capability, as an OCI runtime would leave root)",
            ),
        }
        for (i, r) in p.rlimits().iter().flatten().enumerate() {
            let field = format!("process.rlimits[{i}] ({})", r.typ());
            match r.typ() {
                PosixRlimitType::RlimitNofile if r.soft() == r.hard() => {
                    self.limits().open_files = Some(r.soft());
                }
                PosixRlimitType::RlimitNofile => self.refuse(
                    field,
                    format!(
                        "soft {} and hard {} differ: sandboxd sets both to one value",
                        r.soft(),
                        r.hard()
                    ),
                ),
                PosixRlimitType::RlimitCore if r.soft() == 0 && r.hard() == 0 => {}
                PosixRlimitType::RlimitCore => {
                    self.refuse(field, "sandboxd always sets it to 0 (no core dumps)")
                }
                _ => self.refuse(
                    field,
                    "sandboxd sets only RLIMIT_NOFILE (and RLIMIT_CORE 0)",
                ),
            }
        }
    }

    /// `process.capabilities`: sandboxd keeps one set (bounding = permitted = effective, and
    /// inheritable and ambient either empty or the same).
    fn capabilities(&mut self, caps: &LinuxCapabilities) {
        let empty = Capabilities::new();
        let bounding = caps.bounding().as_ref().unwrap_or(&empty);
        for (name, set) in [
            ("effective", caps.effective()),
            ("permitted", caps.permitted()),
        ] {
            if set.as_ref().unwrap_or(&empty) != bounding {
                self.refuse(
                    format!("process.capabilities.{name}"),
                    "differs from the bounding set: sandboxd gives a command one set of \
                     capabilities (bounding = permitted = effective)",
                );
            }
        }
        for (name, set) in [
            ("inheritable", caps.inheritable()),
            ("ambient", caps.ambient()),
        ] {
            let set = set.as_ref().unwrap_or(&empty);
            if !set.is_empty() && set != bounding {
                self.refuse(
                    format!("process.capabilities.{name}"),
                    "neither empty nor the bounding set",
                );
            }
        }
        let mut names: Vec<String> = bounding
            .iter()
            .map(|c| match serde_json::to_value(c) {
                Ok(Value::String(s)) => s,
                _ => format!("CAP_{c}"),
            })
            .collect();
        names.sort_unstable();
        self.run.capabilities = Some(names);
    }

    /// `mounts[i]`: sandboxd's own mounts are accepted (a size mapped to its limit), host
    /// folder binds mapped, anything else refused.
    fn mount(&mut self, dir: &Path, i: usize, m: &OciMount) {
        let dest = clean(m.destination());
        let field = format!("mounts[{i}] ({})", dest.display());
        let value = serde_json::to_value(m).unwrap_or(Value::Null);
        self.keys(
            &field,
            &value,
            &["destination", "type", "source", "options"],
            &[
                (
                    "uidMappings",
                    "idmapped mounts: the daemon maps host folders itself",
                ),
                (
                    "gidMappings",
                    "idmapped mounts: the daemon maps host folders itself",
                ),
            ],
        );
        let options: &[String] = m.options().as_deref().unwrap_or(&[]);
        let typ = m.typ().as_deref().unwrap_or("");
        let is_bind = typ == "bind" || options.iter().any(|o| o == "bind" || o == "rbind");
        if is_bind {
            self.bind(dir, &field, &dest, m.source().as_deref(), options);
            return;
        }
        let Some(dest_str) = dest.to_str() else {
            self.refuse(field, "destination is not UTF-8");
            return;
        };
        match (dest_str, typ) {
            ("/proc", "proc")
            | ("/dev", "tmpfs")
            | ("/dev/pts", "devpts")
            | ("/dev/mqueue", "mqueue") => {}
            ("/sys", "sysfs") | ("/sys/fs/cgroup", "cgroup" | "cgroup2") => {
                self.note(format!("{field}: {NO_SYS}"));
            }
            ("/dev/shm", "tmpfs") => {
                if let Some(size) = self.tmpfs_size(&field, options) {
                    self.limits().shm_size = Some(size);
                }
            }
            ("/tmp", "tmpfs") => {
                if let Some(size) = self.tmpfs_size(&field, options) {
                    self.limits().tmp_size = Some(size);
                }
            }
            ("/workspace", "tmpfs") => {
                if let Some(size) = self.tmpfs_size(&field, options) {
                    self.limits().workspace_size = Some(size);
                }
            }
            (_, "") => self.refuse(field, "no type: sandboxd mounts only host folders (bind)"),
            (_, typ) => self.refuse(
                field,
                format!("type {typ}: sandboxd mounts only host folders (bind)"),
            ),
        }
    }

    /// A bind mount: a host folder.
    fn bind(
        &mut self,
        dir: &Path,
        field: &str,
        dest: &Path,
        source: Option<&Path>,
        options: &[String],
    ) {
        let bad: Vec<&str> = options
            .iter()
            .map(String::as_str)
            .filter(|o| !BIND_OPTIONS.contains(o))
            .collect();
        if !bad.is_empty() {
            self.refuse(
                field,
                format!(
                    "bind option {} not supported (allowed: {})",
                    bad.join(", "),
                    BIND_OPTIONS.join(", ")
                ),
            );
        }
        if !dest.is_absolute() {
            self.refuse(field, "destination is not an absolute path");
        }
        let source = match source.filter(|s| !s.as_os_str().is_empty()) {
            Some(s) => under(dir, s),
            None => {
                self.refuse(field, "bind mount with no source");
                return;
            }
        };
        // The last of ro and rw wins, as for mount(8).
        let read_only = options
            .iter()
            .rev()
            .find(|o| *o == "ro" || *o == "rw")
            .is_some_and(|o| o == "ro");
        if options.iter().any(|o| o == "noexec") {
            self.note(format!("{field}: noexec is not applied"));
        }
        let (Some(host), Some(sandbox)) = (utf8(field, &source, self), utf8(field, dest, self))
        else {
            return;
        };
        self.run.mounts.push(Mount {
            host,
            sandbox,
            read_only,
        });
    }

    /// The `size=` of a tmpfs mount (the last one), in bytes; none without one.
    fn tmpfs_size(&mut self, field: &str, options: &[String]) -> Option<u64> {
        let text = options.iter().rev().find_map(|o| o.strip_prefix("size="))?;
        match parse_tmpfs_size(text) {
            Ok(n) => Some(n),
            Err(why) => {
                self.refuse(field, format!("size={text}: {why}"));
                None
            }
        }
    }

    /// `linux`.
    fn linux(&mut self, linux: Option<&Linux>) {
        let Some(linux) = linux else {
            self.namespaces(&BTreeSet::new());
            return;
        };
        let value = serde_json::to_value(linux).unwrap_or(Value::Null);
        self.keys(
            "linux",
            &value,
            &[
                "uidMappings",
                "gidMappings",
                "sysctl",
                "resources",
                "cgroupsPath",
                "namespaces",
                "devices",
                "seccomp",
                "rootfsPropagation",
                "maskedPaths",
                "readonlyPaths",
            ],
            &[
                ("mountLabel", "sandboxd applies no SELinux mount label"),
                ("personality", "sandboxd sets no execution domain"),
                ("intelRdt", "sandboxd sets no Intel RDT limits"),
                ("timeOffsets", "sandboxd creates no time namespace"),
                (
                    "netDevices",
                    "sandboxd moves no network devices into a sandbox",
                ),
                ("memoryPolicy", "sandboxd sets no NUMA memory policy"),
            ],
        );
        let mut listed = BTreeSet::new();
        for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
            let name = NAMESPACES
                .iter()
                .find(|(t, _)| *t == ns.typ())
                .map(|(_, n)| *n);
            let Some(name) = name else {
                self.refuse(
                    format!("linux.namespaces[{i}] ({})", ns.typ()),
                    "sandboxd creates no such namespace",
                );
                continue;
            };
            if let Some(path) = ns.path() {
                self.refuse(
                    format!("linux.namespaces[{i}] ({name})"),
                    format!(
                        "joins {}: sandboxd always creates new namespaces",
                        path.display()
                    ),
                );
            }
            listed.insert(name);
        }
        self.namespaces(&listed);
        let maps: Vec<&str> = [
            ("linux.uidMappings", linux.uid_mappings()),
            ("linux.gidMappings", linux.gid_mappings()),
        ]
        .into_iter()
        .filter(|(_, m)| m.as_ref().is_some_and(|m| !m.is_empty()))
        .map(|(n, _)| n)
        .collect();
        if !maps.is_empty() {
            self.note(format!(
                "{}: ignored; the daemon gives each sandbox its own range of 65536 ids",
                maps.join(", ")
            ));
        }
        if linux.cgroups_path().is_some() {
            self.note("linux.cgroupsPath: ignored; the daemon places the sandbox's cgroup");
        }
        if let Some(res) = linux.resources() {
            self.resources(res);
        }
        if let Some(sysctl) = linux.sysctl().as_ref().filter(|s| !s.is_empty()) {
            let mut keys: Vec<&str> = sysctl.keys().map(String::as_str).collect();
            keys.sort_unstable();
            self.refuse(
                "linux.sysctl",
                format!("sandboxd sets no sysctls ({})", keys.join(", ")),
            );
        }
        if let Some(p) = linux.rootfs_propagation().as_deref() {
            if !matches!(p, "" | "private" | "rprivate" | "slave" | "rslave") {
                self.refuse(
                    "linux.rootfsPropagation",
                    format!("{p}: a sandbox's mounts are private"),
                );
            }
        }
        for (i, path) in linux.masked_paths().iter().flatten().enumerate() {
            if !(MASKED.contains(&path.as_str()) || under_sys(path)) {
                self.refuse(
                    format!("linux.maskedPaths[{i}] ({path})"),
                    "sandboxd masks only its own list of /proc paths",
                );
            }
        }
        for (i, path) in linux.readonly_paths().iter().flatten().enumerate() {
            let p = path.as_str();
            if !(READ_ONLY.contains(&p) || MASKED.contains(&p) || under_sys(p)) {
                self.refuse(
                    format!("linux.readonlyPaths[{i}] ({path})"),
                    "sandboxd makes only its own list of /proc paths read-only",
                );
            }
        }
        for (i, d) in linux.devices().iter().flatten().enumerate() {
            let standard = DEVICES.iter().any(|(path, major, minor)| {
                d.path() == Path::new(path)
                    && d.typ() == LinuxDeviceType::C
                    && d.major() == *major
                    && d.minor() == *minor
            });
            if !standard {
                self.refuse(
                    format!("linux.devices[{i}] ({})", d.path().display()),
                    "devices come from the policy: only null, zero, full, random, urandom \
                     and tty",
                );
            }
        }
        self.seccomp = linux
            .seccomp()
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok());
    }

    /// The note for the namespaces sandboxd creates though the spec does not list them.
    fn namespaces(&mut self, listed: &BTreeSet<&str>) {
        let missing: Vec<&str> = NAMESPACES
            .iter()
            .map(|(_, n)| *n)
            .filter(|n| !listed.contains(n))
            .collect();
        if !missing.is_empty() {
            self.note(format!(
                "linux.namespaces: {} not listed; sandboxd always creates user, mount, pid, \
                 network, ipc, uts and cgroup namespaces",
                missing.join(", ")
            ));
        }
    }

    /// `linux.resources`: memory, swap, pids and cpus; the device cgroup when it allows no
    /// more than a sandbox has.
    fn resources(&mut self, res: &LinuxResources) {
        const P: &str = "linux.resources";
        let value = serde_json::to_value(res).unwrap_or(Value::Null);
        self.keys(
            P,
            &value,
            &["devices", "memory", "cpu", "pids"],
            &[
                ("blockIO", "sandboxd sets no block I/O limits"),
                ("hugepageLimits", "sandboxd sets no hugepage limits"),
                ("network", "sandboxd sets no network classes or priorities"),
                ("rdma", "sandboxd sets no RDMA limits"),
                (
                    "unified",
                    "sandboxd sets only memory, swap, pids and cpu limits",
                ),
            ],
        );
        if let Some(mem) = res.memory() {
            let v = serde_json::to_value(mem).unwrap_or(Value::Null);
            self.keys(&format!("{P}.memory"), &v, &["limit", "swap"], &[]);
            match mem.limit() {
                Some(n) if n > 0 => self.limits().memory = Some(n as u64),
                Some(n) => self.refuse(
                    format!("{P}.memory.limit"),
                    format!("{n}: sandboxd needs a positive memory limit"),
                ),
                None => {}
            }
            match (mem.swap(), mem.limit()) {
                (None, _) => {}
                (Some(-1), _) => self.refuse(
                    format!("{P}.memory.swap"),
                    "-1 (unlimited): sandboxd needs a swap bound",
                ),
                (Some(_), None) => self.refuse(
                    format!("{P}.memory.swap"),
                    "memory+swap without memory.limit",
                ),
                // The limit was refused.
                (Some(_), Some(limit)) if limit <= 0 => {}
                (Some(swap), Some(limit)) if swap >= limit => {
                    self.limits().swap = Some((swap - limit) as u64);
                }
                (Some(swap), Some(limit)) => self.refuse(
                    format!("{P}.memory.swap"),
                    format!("{swap} is below memory.limit {limit} (OCI's swap is memory+swap)"),
                ),
            }
        }
        if let Some(pids) = res.pids() {
            match pids.limit() {
                n if n > 0 => self.limits().pids = Some(n as u64),
                n => self.refuse(
                    format!("{P}.pids.limit"),
                    format!("{n}: sandboxd needs a positive pids limit"),
                ),
            }
        }
        if let Some(cpu) = res.cpu() {
            let v = serde_json::to_value(cpu).unwrap_or(Value::Null);
            self.keys(&format!("{P}.cpu"), &v, &["quota", "period"], &[]);
            let period = match cpu.period() {
                None => Some(CPU_PERIOD_US),
                Some(0) => {
                    self.refuse(format!("{P}.cpu.period"), "0: must be positive");
                    None
                }
                Some(p) => Some(p),
            };
            match (cpu.quota(), period) {
                (Some(q), Some(period)) if q > 0 => {
                    self.limits().cpus = Some(q as f64 / period as f64);
                }
                (Some(q), _) if q <= 0 => self.refuse(
                    format!("{P}.cpu.quota"),
                    format!("{q}: sandboxd needs a positive CPU quota"),
                ),
                _ => {}
            }
        }
        if let Some(devices) = res.devices().as_ref().filter(|d| !d.is_empty()) {
            self.device_cgroup(devices);
        }
    }

    /// `linux.resources.devices`: deny-all first, then allow rules for nodes a sandbox has.
    fn device_cgroup(&mut self, rules: &[LinuxDeviceCgroup]) {
        let mut ok = true;
        for (i, rule) in rules.iter().enumerate() {
            let refused = if i == 0 {
                (!is_deny_all(rule)).then_some(
                    "the device list must start with deny-all (allow: false, access: rwm)",
                )
            } else if rule.allow() {
                (!allowed_device(rule)).then_some(
                    "devices come from the policy: sandboxd allows only null, zero, full, \
                     random, urandom, tty, console, ptmx, pts and tun",
                )
            } else {
                (!is_deny_all(rule)).then_some("sandboxd cannot deny single devices")
            };
            if let Some(reason) = refused {
                ok = false;
                self.refuse(
                    format!("linux.resources.devices[{i}] ({})", device_rule(rule)),
                    reason,
                );
            }
        }
        if ok {
            self.note(
                "linux.resources.devices: ignored; the sandbox's /dev has only null, zero, \
                 full, random, urandom, tty, ptmx and pts",
            );
        }
    }
}

/// `{allow: false, access: rwm}` on every device.
fn is_deny_all(rule: &LinuxDeviceCgroup) -> bool {
    !rule.allow()
        && matches!(rule.typ(), None | Some(LinuxDeviceType::A))
        && rule.major().is_none_or(|m| m == -1)
        && rule.minor().is_none_or(|m| m == -1)
        && rule
            .access()
            .as_deref()
            .is_none_or(|a| a.contains('r') && a.contains('w') && a.contains('m'))
}

/// An allow rule for one of [`CGROUP_DEVICES`], or mknod (`m`) alone on any char or block
/// device (which a user namespace cannot do anyway).
fn allowed_device(rule: &LinuxDeviceCgroup) -> bool {
    let access = rule.access().as_deref().unwrap_or("rwm");
    if !access.chars().all(|c| "rwm".contains(c)) {
        return false;
    }
    let any = |n: Option<i64>| n.is_none_or(|n| n == -1);
    match rule.typ() {
        Some(LinuxDeviceType::C) => {
            let Some(major) = rule.major().filter(|m| *m >= 0) else {
                return access == "m" && any(rule.minor());
            };
            CGROUP_DEVICES.iter().any(|(ma, mi)| {
                *ma == major
                    && match mi {
                        Some(mi) => rule.minor() == Some(*mi),
                        None => any(rule.minor()),
                    }
            })
        }
        Some(LinuxDeviceType::B) => access == "m" && any(rule.major()) && any(rule.minor()),
        _ => false,
    }
}

/// A device cgroup rule as `runc` prints them: `allow c 1:3 rwm`.
fn device_rule(rule: &LinuxDeviceCgroup) -> String {
    let verb = if rule.allow() { "allow" } else { "deny" };
    format!("{verb} {rule}").trim_end().to_owned()
}

/// Null, `""`, `false`, `[]` and `{}` ask for nothing.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// `/sys` or a path under it (the sandbox has no `/sys`).
fn under_sys(path: &str) -> bool {
    path == "/sys" || path.starts_with("/sys/")
}

/// `path` taken against `dir` when relative, without `.` components or repeated slashes.
fn under(dir: &Path, path: &Path) -> PathBuf {
    clean(&dir.join(path))
}

/// `path` without `.` components, repeated or trailing slashes (`..` is kept).
fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        if c != Component::CurDir {
            out.push(c);
        }
    }
    out
}

/// `path` as a string, or a refusal of `field` when it is not UTF-8.
fn utf8(field: &str, path: &Path, c: &mut Conv) -> Option<String> {
    match path.to_str() {
        Some(s) => Some(s.to_owned()),
        None => {
            c.refuse(field, format!("{} is not UTF-8", path.display()));
            None
        }
    }
}

/// A tmpfs `size=` value as the kernel reads it (memparse): bytes, or a whole number with a
/// `k`, `m`, `g`, `t`, `p` or `e` suffix (either case, powers of 1024). A percentage of RAM
/// and 0 (unlimited) have no sandboxd form.
pub(crate) fn parse_tmpfs_size(text: &str) -> Result<u64, String> {
    if text.ends_with('%') {
        return Err("a share of RAM; sandboxd needs bytes".into());
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, suffix) = text.split_at(split);
    let n: u64 = digits.parse().map_err(|_| "not a size".to_owned())?;
    let shift = match suffix {
        "" => 0,
        "k" | "K" => 10,
        "m" | "M" => 20,
        "g" | "G" => 30,
        "t" | "T" => 40,
        "p" | "P" => 50,
        "e" | "E" => 60,
        _ => return Err("not a size".into()),
    };
    if n == 0 {
        return Err("0 is unlimited; sandboxd needs a bound".into());
    }
    n.checked_mul(1 << shift)
        .ok_or_else(|| "too large".to_owned())
}

//! The sandbox settings that [`RunBuilder`](crate::RunBuilder) and
//! [`CreateBuilder`](crate::CreateBuilder) share: limits, root filesystem, mounts, environment and
//! hostname, set through one trait so neither builder repeats them.

use std::time::Duration;

use sandbox_proto::{CreateSpec, FsMode, Limits, Mount, NetMode, PolicyRef, Rootfs, RunSpec};

/// Setters common to every builder that describes a sandbox (a one-shot run or a long-lived
/// sandbox). Bring it into scope with `use agent_sdk::SandboxBuilder;`. Unset settings take the
/// policy's values. Sealed: only this crate implements it.
pub trait SandboxBuilder: Sized + sealed::Sealed {
    /// Memory limit in bytes.
    fn memory(mut self, bytes: u64) -> Self {
        self.fields().limits.memory = Some(bytes);
        self
    }

    /// Most processes and threads at once.
    fn pids(mut self, max: u64) -> Self {
        self.fields().limits.pids = Some(max);
        self
    }

    /// CPU quota as a number of CPUs (0.5 = half of one).
    fn cpus(mut self, cpus: f64) -> Self {
        self.fields().limits.cpus = Some(cpus);
        self
    }

    /// Size of the `/workspace` tmpfs in bytes.
    fn workspace_size(mut self, bytes: u64) -> Self {
        self.fields().limits.workspace_size = Some(bytes);
        self
    }

    /// Swap on top of the memory limit, in bytes.
    fn swap(mut self, bytes: u64) -> Self {
        self.fields().limits.swap = Some(bytes);
        self
    }

    /// Size of the `/tmp` tmpfs in bytes.
    fn tmp_size(mut self, bytes: u64) -> Self {
        self.fields().limits.tmp_size = Some(bytes);
        self
    }

    /// Size of the `/dev/shm` tmpfs in bytes.
    fn shm_size(mut self, bytes: u64) -> Self {
        self.fields().limits.shm_size = Some(bytes);
        self
    }

    /// Most open files per process (RLIMIT_NOFILE).
    fn open_files(mut self, n: u64) -> Self {
        self.fields().limits.open_files = Some(n);
        self
    }

    /// Makes the sandbox under the daemon's policy `name` (e.g. `strict`, `ci`).
    fn policy(mut self, name: impl Into<String>) -> Self {
        *self.fields().policy = Some(PolicyRef::Name { name: name.into() });
        self
    }

    /// Makes the sandbox under a policy given as TOML text (`source` names it in errors);
    /// only root may do this.
    fn policy_text(mut self, source: impl Into<String>, text: impl Into<String>) -> Self {
        *self.fields().policy = Some(PolicyRef::Inline {
            source: source.into(),
            text: text.into(),
        });
        self
    }

    /// Filesystem mode (at most the policy's).
    fn filesystem(mut self, mode: FsMode) -> Self {
        *self.fields().filesystem = Some(mode);
        self
    }

    /// Network mode (at most the policy's).
    fn network(mut self, mode: NetMode) -> Self {
        *self.fields().network = Some(mode);
        self
    }

    /// Capabilities to keep (`CAP_*` names), each allowed by the policy.
    fn capabilities<I, S>(mut self, caps: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        *self.fields().capabilities = Some(caps.into_iter().map(Into::into).collect());
        self
    }

    /// Use the host's `/usr`, `/bin`, `/lib*` and a curated `/etc`, read-only.
    fn rootfs_host(mut self) -> Self {
        *self.fields().rootfs = Rootfs::Host;
        self
    }

    /// Use the host directory `path` (absolute) as `/`.
    fn rootfs_path(mut self, path: impl Into<String>) -> Self {
        *self.fields().rootfs = Rootfs::Path { path: path.into() };
        self
    }

    /// Binds the host directory `host` at `sandbox` (both absolute).
    fn mount(
        mut self,
        host: impl Into<String>,
        sandbox: impl Into<String>,
        read_only: bool,
    ) -> Self {
        self.fields().mounts.push(Mount {
            host: host.into(),
            sandbox: sandbox.into(),
            read_only,
        });
        self
    }

    /// Sets an environment variable (for a long-lived sandbox: for every exec in it).
    fn env(mut self, key: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        self.fields()
            .env
            .push(format!("{}={}", key.as_ref(), value.as_ref()));
        self
    }

    /// Hostname inside the sandbox (default: the sandbox id).
    fn hostname(mut self, name: impl Into<String>) -> Self {
        *self.fields().hostname = Some(name.into());
        self
    }
}

impl<T: sealed::Sealed> SandboxBuilder for T {}

pub(crate) mod sealed {
    use super::*;

    /// The parts of a spec the shared setters write.
    #[derive(Debug)]
    pub struct Fields<'a> {
        pub(crate) env: &'a mut Vec<String>,
        pub(crate) hostname: &'a mut Option<String>,
        pub(crate) rootfs: &'a mut Rootfs,
        pub(crate) mounts: &'a mut Vec<Mount>,
        pub(crate) limits: &'a mut Limits,
        pub(crate) policy: &'a mut Option<PolicyRef>,
        pub(crate) filesystem: &'a mut Option<FsMode>,
        pub(crate) network: &'a mut Option<NetMode>,
        pub(crate) capabilities: &'a mut Option<Vec<String>>,
    }

    /// Keeps [`SandboxBuilder`] implemented by this crate's builders only.
    pub trait Sealed {
        /// The spec being built.
        fn fields(&mut self) -> Fields<'_>;
    }

    impl<'a> Fields<'a> {
        pub(crate) fn of_run(spec: &'a mut RunSpec) -> Self {
            Fields {
                env: &mut spec.env,
                hostname: &mut spec.hostname,
                rootfs: &mut spec.rootfs,
                mounts: &mut spec.mounts,
                limits: &mut spec.limits,
                policy: &mut spec.policy,
                filesystem: &mut spec.filesystem,
                network: &mut spec.network,
                capabilities: &mut spec.capabilities,
            }
        }

        pub(crate) fn of_create(spec: &'a mut CreateSpec) -> Self {
            Fields {
                env: &mut spec.env,
                hostname: &mut spec.hostname,
                rootfs: &mut spec.rootfs,
                mounts: &mut spec.mounts,
                limits: &mut spec.limits,
                policy: &mut spec.policy,
                filesystem: &mut spec.filesystem,
                network: &mut spec.network,
                capabilities: &mut spec.capabilities,
            }
        }
    }
}

/// `d` in whole milliseconds, rounded up (so a nonzero duration never becomes 0).
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

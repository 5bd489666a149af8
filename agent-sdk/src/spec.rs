//! The sandbox settings that [`RunBuilder`](crate::RunBuilder) and
//! [`CreateBuilder`](crate::CreateBuilder) share: limits, root filesystem, mounts, environment and
//! hostname, set through one trait so neither builder repeats them.

use std::time::Duration;

use sandbox_proto::{CreateSpec, Limits, Mount, Rootfs, RunSpec};

/// Setters common to every builder that describes a sandbox (a one-shot run or a long-lived
/// sandbox). Bring it into scope with `use agent_sdk::SandboxBuilder;`. Unset limits take the
/// daemon's defaults. Sealed: only this crate implements it.
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

    /// Use the host's `/usr`, `/bin`, `/lib*` and a curated `/etc`, read-only (the default).
    fn rootfs_host(mut self) -> Self {
        *self.fields().rootfs = Rootfs::Host;
        self
    }

    /// Use the host directory `path` (absolute), read-only, as `/`.
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
            }
        }

        pub(crate) fn of_create(spec: &'a mut CreateSpec) -> Self {
            Fields {
                env: &mut spec.env,
                hostname: &mut spec.hostname,
                rootfs: &mut spec.rootfs,
                mounts: &mut spec.mounts,
                limits: &mut spec.limits,
            }
        }
    }
}

/// `d` in whole milliseconds, rounded up (so a nonzero duration never becomes 0).
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

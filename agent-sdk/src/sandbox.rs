//! Long-lived sandboxes: creating one ([`CreateBuilder`]), the handle to one ([`Sandbox`]) and its
//! lifecycle calls, and the guard that destroys it when dropped ([`SandboxGuard`]).

use std::fmt;
use std::ops::Deref;
use std::time::Duration;

use sandbox_proto::{CreateSpec, Request, Response, SandboxInfo, SandboxStats};

use crate::client::unexpected;
use crate::run::Opening;
use crate::spec::{millis, sealed};
use crate::{Client, Error, ExecBuilder, Run};

/// Describes a long-lived sandbox; mirrors the flags of `sandboxctl create`. The sandbox
/// settings (limits, rootfs, mounts, env, hostname) come from
/// [`SandboxBuilder`](crate::SandboxBuilder).
#[derive(Debug)]
pub struct CreateBuilder {
    client: Client,
    spec: CreateSpec,
}

impl CreateBuilder {
    pub(crate) fn new(client: Client) -> Self {
        CreateBuilder {
            client,
            spec: CreateSpec::default(),
        }
    }

    /// Destroy the sandbox this long after its creation. Rounded up to whole milliseconds.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.spec.ttl_ms = Some(millis(ttl));
        self
    }

    /// Destroy the sandbox after this long without any request about it while no exec runs.
    /// Rounded up to whole milliseconds.
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.spec.idle_timeout_ms = Some(millis(idle));
        self
    }

    /// The spec that [`CreateBuilder::create`] will send.
    pub fn spec(&self) -> &CreateSpec {
        &self.spec
    }

    /// Creates the sandbox and returns its handle once it is running.
    pub async fn create(self) -> Result<Sandbox, Error> {
        let CreateBuilder { client, spec } = self;
        match client.call(|id| Request::Create { id, spec }).await? {
            Response::Created { sandbox, .. } => Ok(Sandbox::new(client, sandbox.sandbox_id)),
            other => Err(unexpected("created", &other)),
        }
    }
}

impl sealed::Sealed for CreateBuilder {
    fn fields(&mut self) -> sealed::Fields<'_> {
        sealed::Fields::of_create(&mut self.spec)
    }
}

/// A handle to a long-lived sandbox: its client and its id. Cheap to clone. Dropping it leaves
/// the sandbox as it is; see [`Sandbox::guard`] for one destroyed on drop.
#[derive(Clone)]
pub struct Sandbox {
    pub(crate) client: Client,
    pub(crate) id: String,
}

impl Sandbox {
    pub(crate) fn new(client: Client, id: String) -> Self {
        Sandbox { client, id }
    }

    /// The sandbox id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The connection this handle uses.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Starts describing a command to run in the sandbox; see [`ExecBuilder`].
    pub fn exec<I, S>(&self, argv: I) -> ExecBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ExecBuilder::new(self.clone(), argv.into_iter().map(Into::into).collect())
    }

    /// Follows exec `exec_id` again: its output from sequence number `from_seq` on (0 for all
    /// that is kept), then live, then its exit. The stream is output only (no stdin); dropping
    /// it stops following and leaves the exec alone. [`Run::kill`] on it signals the exec.
    pub async fn attach(&self, exec_id: u64, from_seq: u64) -> Result<Run, Error> {
        let opening = Opening {
            kill_on_drop: false,
            stdin: false,
            from_seq,
        };
        let sandbox_id = self.id.clone();
        Run::open(self.client.clone(), opening, |id| Request::Attach {
            id,
            sandbox_id,
            exec_id,
            from_seq,
        })
        .await
    }

    /// The sandbox in detail: state, limits, execs.
    pub async fn inspect(&self) -> Result<SandboxInfo, Error> {
        let sandbox_id = self.id.clone();
        match self
            .client
            .call(|id| Request::Inspect { id, sandbox_id })
            .await?
        {
            Response::Sandbox { info, .. } => Ok(info),
            other => Err(unexpected("sandbox", &other)),
        }
    }

    /// The sandbox's resource usage.
    pub async fn stats(&self) -> Result<SandboxStats, Error> {
        let sandbox_id = self.id.clone();
        match self
            .client
            .call(|id| Request::Stats { id, sandbox_id })
            .await?
        {
            Response::Stats { stats, .. } => Ok(stats),
            other => Err(unexpected("stats", &other)),
        }
    }

    /// Sends `signal` to exec `exec_id` (its process group), or with `None` to every process
    /// of the sandbox.
    pub async fn signal(&self, exec_id: Option<u64>, signal: i32) -> Result<(), Error> {
        let sandbox_id = self.id.clone();
        self.done(|id| Request::Signal {
            id,
            sandbox_id,
            exec_id,
            signal,
        })
        .await
    }

    /// Freezes every process of the sandbox.
    pub async fn pause(&self) -> Result<(), Error> {
        let sandbox_id = self.id.clone();
        self.done(|id| Request::Pause { id, sandbox_id }).await
    }

    /// Thaws a paused sandbox.
    pub async fn resume(&self) -> Result<(), Error> {
        let sandbox_id = self.id.clone();
        self.done(|id| Request::Resume { id, sandbox_id }).await
    }

    /// Destroys the sandbox: kills everything in it and releases all it had. Returns once it
    /// is gone.
    pub async fn destroy(&self) -> Result<(), Error> {
        let sandbox_id = self.id.clone();
        self.done(|id| Request::Destroy { id, sandbox_id }).await
    }

    /// A guard that destroys the sandbox when dropped, unless [`SandboxGuard::keep`] is called.
    pub fn guard(self) -> SandboxGuard {
        SandboxGuard {
            sandbox: Some(self),
        }
    }

    /// Sends a request answered by `done`.
    pub(crate) async fn done(&self, request: impl FnOnce(u64) -> Request) -> Result<(), Error> {
        match self.client.call(request).await? {
            Response::Done { .. } => Ok(()),
            other => Err(unexpected("done", &other)),
        }
    }
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sandbox").field("id", &self.id).finish()
    }
}

/// A [`Sandbox`] that is destroyed when the guard is dropped (derefs to the sandbox).
///
/// The drop is best effort: it queues the `destroy` request on the connection without waiting
/// for the answer, so the connection's writer must still get to run (the tokio runtime alive)
/// for it to reach the daemon, and a failure goes unreported. Call
/// [`SandboxGuard::destroy`] to destroy and see the result.
pub struct SandboxGuard {
    sandbox: Option<Sandbox>,
}

impl SandboxGuard {
    /// Disarms the guard and returns the sandbox, which then lives on.
    pub fn keep(mut self) -> Sandbox {
        self.sandbox
            .take()
            .expect("the guard holds its sandbox until dropped")
    }

    /// Destroys the sandbox now and waits for the answer.
    pub async fn destroy(mut self) -> Result<(), Error> {
        let sandbox = self
            .sandbox
            .take()
            .expect("the guard holds its sandbox until dropped");
        sandbox.destroy().await
    }
}

impl Deref for SandboxGuard {
    type Target = Sandbox;

    fn deref(&self) -> &Sandbox {
        self.sandbox
            .as_ref()
            .expect("the guard holds its sandbox until dropped")
    }
}

impl Drop for SandboxGuard {
    fn drop(&mut self) {
        if let Some(sandbox) = self.sandbox.take() {
            // Queued synchronously, so this works outside an async context too; the answer
            // names an id nobody waits for and is dropped by the router.
            let id = sandbox.client.next_id();
            let _ = sandbox.client.router().send(&Request::Destroy {
                id,
                sandbox_id: sandbox.id,
            });
        }
    }
}

impl fmt::Debug for SandboxGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxGuard")
            .field("sandbox", &self.sandbox)
            .finish()
    }
}

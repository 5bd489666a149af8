//! Describing and starting a command in a long-lived sandbox ([`ExecBuilder`]).

use std::time::Duration;

use sandbox_proto::init::TtySize;
use sandbox_proto::{ExecSpec, Request};

use crate::run::Opening;
use crate::spec::millis;
use crate::{Error, Output, Run, Sandbox};

/// Describes an exec; mirrors the flags of `sandboxctl exec`. Made by [`Sandbox::exec`].
#[derive(Debug)]
pub struct ExecBuilder {
    sandbox: Sandbox,
    spec: ExecSpec,
}

impl ExecBuilder {
    pub(crate) fn new(sandbox: Sandbox, argv: Vec<String>) -> Self {
        ExecBuilder {
            sandbox,
            spec: ExecSpec {
                argv,
                ..ExecSpec::default()
            },
        }
    }

    /// Sets an environment variable, over the sandbox's.
    pub fn env(mut self, key: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        self.spec
            .env
            .push(format!("{}={}", key.as_ref(), value.as_ref()));
        self
    }

    /// Working directory inside the sandbox (absolute; default `/workspace`).
    pub fn cwd(mut self, dir: impl Into<String>) -> Self {
        self.spec.cwd = Some(dir.into());
        self
    }

    /// The user and group inside the sandbox (0..65536; default 0, the sandbox's root).
    pub fn user(mut self, uid: u32, gid: u32) -> Self {
        self.spec.uid = uid;
        self.spec.gid = gid;
        self
    }

    /// Whether the caller will feed stdin through [`Run::write_stdin`]; if not, the command
    /// reads EOF at once. Implied by [`ExecBuilder::tty`].
    pub fn stdin(mut self, stdin: bool) -> Self {
        self.spec.stdin = stdin;
        self
    }

    /// Runs the command on a pseudo-terminal of `rows` × `cols`: its output comes as stdout
    /// only, and stdin is always open. Change the size with [`Run::resize`].
    pub fn tty(mut self, rows: u16, cols: u16) -> Self {
        self.spec.tty = Some(TtySize { rows, cols });
        self
    }

    /// Kill the exec (its process group) after this long. Rounded up to whole milliseconds.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.spec.timeout_ms = Some(millis(timeout));
        self
    }

    /// The spec that [`ExecBuilder::start`] will send.
    pub fn spec(&self) -> &ExecSpec {
        &self.spec
    }

    /// Sends the exec and waits until it has started (or the daemon refused it). Cancelling
    /// this future, like dropping the [`Run`], leaves the exec running; an exec into a paused
    /// sandbox is not answered until the sandbox is resumed.
    pub async fn start(self) -> Result<Run, Error> {
        let ExecBuilder { sandbox, spec } = self;
        let opening = Opening {
            kill_on_drop: false,
            stdin: spec.stdin || spec.tty.is_some(),
            from_seq: 0,
        };
        Run::open(sandbox.client, opening, |id| Request::Exec {
            id,
            sandbox_id: sandbox.id,
            spec,
        })
        .await
    }

    /// Starts the exec and collects all of its output. Stdin, if enabled, is closed at once.
    pub async fn output(self) -> Result<Output, Error> {
        let run = self.start().await?;
        run.close_stdin().await?;
        run.output().await
    }
}

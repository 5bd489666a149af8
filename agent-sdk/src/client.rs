//! The connection to the daemon: connecting, the hello/welcome handshake, request ids, calls
//! answered by one frame, and the calls about the daemon as a whole (`status`, `create`, `list`).

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sandbox_proto::codec::{read_frame_async, write_frame_async};
use sandbox_proto::{
    decode_response, encode, DaemonStatus, ErrorCode, Request, Response, RunSpec, SandboxInfo,
    MAX_FRAME_LEN, MAX_OUTPUT_CHUNK, PROTOCOL_VERSION,
};
use tokio::net::unix::OwnedReadHalf;
use tokio::net::UnixStream;
use tokio::task::AbortHandle;

use crate::router::{read_loop, Router};
use crate::{CreateBuilder, Error, RunBuilder, Sandbox};

/// Room left in a frame for the fields around a stdin chunk.
const FRAME_OVERHEAD: usize = 64;

/// A connection to sandboxd. Cheap to clone: clones share the connection, which closes when the
/// last clone and the last [`crate::Run`] are dropped.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) router: Arc<Router>,
    next_id: AtomicU64,
    daemon: String,
    window: u32,
    max_frame: usize,
    stdin_chunk: usize,
    reader: AbortHandle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The reader holds the router, whose frame queue keeps the writer alive: stopping the
        // reader lets both go and closes the socket.
        self.reader.abort();
    }
}

/// What the daemon's welcome told us.
struct Welcome {
    daemon: String,
    max_frame: u32,
    window: u32,
}

impl Client {
    /// Connects to the daemon's socket at `path` and does the handshake.
    pub async fn connect(path: impl AsRef<Path>) -> Result<Client, Error> {
        Client::connect_as(path, concat!("agent-sdk ", env!("CARGO_PKG_VERSION"))).await
    }

    /// Like [`Client::connect`], naming the client as `client` in the daemon's log.
    pub async fn connect_as(path: impl AsRef<Path>, client: &str) -> Result<Client, Error> {
        let path = path.as_ref();
        let stream = UnixStream::connect(path)
            .await
            .map_err(|source| Error::Connect {
                path: path.to_path_buf(),
                source,
            })?;
        let (mut r, mut w) = stream.into_split();
        let hello = Request::Hello {
            protocol: PROTOCOL_VERSION,
            client: client.to_owned(),
        };
        let frame = encode(&hello).map_err(|e| Error::Protocol(format!("encoding hello: {e}")))?;
        write_frame_async(&mut w, &frame).await.map_err(Error::Io)?;
        let welcome = read_welcome(&mut r).await?;

        let router = Router::start(w, welcome.window);
        let reader = tokio::spawn(read_loop(r, Arc::clone(&router))).abort_handle();
        let frame_room = (welcome.max_frame as usize).saturating_sub(FRAME_OVERHEAD);
        let stdin_chunk = MAX_OUTPUT_CHUNK
            .min(welcome.window as usize)
            .min(frame_room)
            .max(1);
        Ok(Client {
            inner: Arc::new(Inner {
                router,
                next_id: AtomicU64::new(1),
                daemon: welcome.daemon,
                window: welcome.window,
                max_frame: welcome.max_frame as usize,
                stdin_chunk,
                reader,
            }),
        })
    }

    /// Starts describing a run of `argv`; see [`RunBuilder`].
    pub fn run<I, S>(&self, argv: I) -> RunBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RunBuilder::new(self.clone(), argv.into_iter().map(Into::into).collect())
    }

    /// Starts building a run of a complete spec (e.g. one made from an OCI bundle); the
    /// builder's setters change it further.
    pub fn run_spec(&self, spec: RunSpec) -> RunBuilder {
        RunBuilder::from_spec(self.clone(), spec)
    }

    /// Asks for the daemon's state.
    pub async fn status(&self) -> Result<DaemonStatus, Error> {
        match self.call(|id| Request::Status { id }).await? {
            Response::Status { info, .. } => Ok(info),
            other => Err(unexpected("status", &other)),
        }
    }

    /// Starts describing a long-lived sandbox; see [`CreateBuilder`].
    pub fn create(&self) -> CreateBuilder {
        CreateBuilder::new(self.clone())
    }

    /// A handle to the existing sandbox `id` (e.g. one created before a reconnect). Nothing is
    /// checked until it is used: a sandbox that does not exist, or belongs to another user,
    /// answers [`ErrorCode::NotFound`].
    pub fn sandbox(&self, id: impl Into<String>) -> Sandbox {
        Sandbox::new(self.clone(), id.into())
    }

    /// The caller's long-lived sandboxes (root: everyone's).
    pub async fn list(&self) -> Result<Vec<SandboxInfo>, Error> {
        match self.call(|id| Request::List { id }).await? {
            Response::Sandboxes { sandboxes, .. } => Ok(sandboxes),
            other => Err(unexpected("sandboxes", &other)),
        }
    }

    /// The OCI bundle of the sandbox `spec` describes, as the daemon renders it:
    /// `config.json`'s text and what its `rootfs` directory must hold (see
    /// [`Request::ExportBundle`]). Creates nothing.
    pub async fn export_bundle(
        &self,
        spec: RunSpec,
    ) -> Result<(String, Vec<sandbox_proto::BundleEntry>), Error> {
        match self.call(|id| Request::ExportBundle { id, spec }).await? {
            Response::Bundle { config, rootfs, .. } => Ok((config, rootfs)),
            other => Err(unexpected("bundle", &other)),
        }
    }

    /// The daemon's policy `name` (`None`: its default) with every default filled in:
    /// `(name, TOML text)`.
    pub async fn policy(&self, name: Option<&str>) -> Result<(String, String), Error> {
        let name = name.map(str::to_owned);
        match self.call(|id| Request::Policy { id, name }).await? {
            Response::Policy { name, text, .. } => Ok((name, text)),
            other => Err(unexpected("policy", &other)),
        }
    }

    /// Sends the request `request(id)` makes and waits for its one answer; the daemon's error
    /// answer becomes [`Error::Daemon`].
    pub(crate) async fn call(
        &self,
        request: impl FnOnce(u64) -> Request,
    ) -> Result<Response, Error> {
        let id = self.next_id();
        let reply = self.inner.router.register_call(id)?;
        self.inner.router.send(&request(id))?;
        reply.await.map_err(|_| Error::Closed)?
    }

    /// The daemon's name and version from its welcome, e.g. `sandboxd 0.1.0`.
    pub fn daemon(&self) -> &str {
        &self.inner.daemon
    }

    /// The output window (per stream) and stdin window of every run, in bytes.
    pub fn window(&self) -> u32 {
        self.inner.window
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn stdin_chunk(&self) -> usize {
        self.inner.stdin_chunk
    }

    /// The largest frame body the daemon accepts.
    pub(crate) fn max_frame(&self) -> usize {
        self.inner.max_frame
    }

    pub(crate) fn router(&self) -> &Router {
        &self.inner.router
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("daemon", &self.inner.daemon)
            .field("window", &self.inner.window)
            .finish_non_exhaustive()
    }
}

/// The error for an answer of the wrong kind (`want` names the expected one).
pub(crate) fn unexpected(want: &str, got: &Response) -> Error {
    let got = match got {
        Response::Welcome { .. } => "welcome",
        Response::Started { .. } => "started",
        Response::Output { .. } => "output",
        Response::StdinCredit { .. } => "stdin_credit",
        Response::Exit { .. } => "exit",
        Response::Status { .. } => "status",
        Response::Created { .. } => "created",
        Response::Done { .. } => "done",
        Response::Sandboxes { .. } => "sandboxes",
        Response::Bundle { .. } => "bundle",
        Response::Policy { .. } => "policy",
        Response::Sandbox { .. } => "sandbox",
        Response::Stats { .. } => "stats",
        Response::FileData { .. } => "file_data",
        Response::FileList { .. } => "file_list",
        Response::FileInfo { .. } => "file_info",
        Response::Error { .. } => "error",
    };
    Error::Protocol(format!("expected a {want} answer, got {got}"))
}

/// Reads the daemon's answer to hello.
async fn read_welcome(r: &mut OwnedReadHalf) -> Result<Welcome, Error> {
    let body = read_frame_async(r, MAX_FRAME_LEN)
        .await
        .map_err(Error::Frame)?
        .ok_or(Error::Closed)?;
    match decode_response(&body).map_err(Error::Decode)? {
        Response::Welcome {
            protocol, daemon, ..
        } if protocol != PROTOCOL_VERSION => Err(Error::VersionMismatch {
            message: format!(
                "{daemon} speaks protocol {protocol}, this client speaks {PROTOCOL_VERSION}"
            ),
        }),
        Response::Welcome { window: 0, .. } => Err(Error::Protocol(
            "the daemon announced an output window of 0 bytes".into(),
        )),
        Response::Welcome {
            daemon,
            max_frame,
            window,
            ..
        } => Ok(Welcome {
            daemon,
            max_frame,
            window,
        }),
        Response::Error {
            code: ErrorCode::VersionMismatch,
            message,
            ..
        } => Err(Error::VersionMismatch { message }),
        Response::Error { code, message, .. } => Err(Error::Daemon { code, message }),
        other => Err(Error::Protocol(format!(
            "expected a welcome, got {other:?}"
        ))),
    }
}

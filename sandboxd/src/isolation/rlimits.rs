//! Resource limits set with setrlimit for the sandboxed command.

use nix::errno::Errno;
use nix::sys::resource::{setrlimit, Resource};

/// Setting a limit failed.
#[derive(Debug, thiserror::Error)]
#[error("setting {resource:?}")]
pub struct RlimitError {
    /// Which limit.
    resource: Resource,
    /// Why.
    #[source]
    source: Errno,
}

/// No core dumps (they could fill the workspace and leak memory contents); `nofile` open files.
pub fn apply(nofile: u64) -> Result<(), RlimitError> {
    for (resource, value) in [
        (Resource::RLIMIT_CORE, 0),
        (Resource::RLIMIT_NOFILE, nofile),
    ] {
        setrlimit(resource, value, value).map_err(|source| RlimitError { resource, source })?;
    }
    Ok(())
}

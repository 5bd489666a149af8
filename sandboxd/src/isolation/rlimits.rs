//! Resource limits set with setrlimit for the sandboxed command.

use nix::errno::Errno;
use nix::sys::resource::{getrlimit, setrlimit, Resource};

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

/// No core dumps (they could fill the workspace and leak memory contents), and `nofile` open
/// files, or the inherited hard limit if that is lower: raising a hard limit needs a
/// capability over the host's user namespace, which the sandbox does not have.
pub fn apply(nofile: u64) -> Result<(), RlimitError> {
    let hard = getrlimit(Resource::RLIMIT_NOFILE)
        .map(|(_, h)| h)
        .map_err(|source| RlimitError {
            resource: Resource::RLIMIT_NOFILE,
            source,
        })?;
    let nofile = nofile.min(hard);
    for (resource, value) in [
        (Resource::RLIMIT_CORE, 0),
        (Resource::RLIMIT_NOFILE, nofile),
    ] {
        setrlimit(resource, value, value).map_err(|source| RlimitError { resource, source })?;
    }
    Ok(())
}

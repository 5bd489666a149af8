//! Capabilities: the sandboxed command starts with none in any set.

use caps::errors::CapsError;
use caps::CapSet;

/// Dropping a capability set failed.
#[derive(Debug, thiserror::Error)]
#[error("clearing the {set} capability set")]
pub struct CapsDropError {
    /// Which set.
    set: &'static str,
    /// Why.
    #[source]
    source: CapsError,
}

/// Clears every capability set. The bounding set goes first (that needs CAP_SETPCAP, still
/// effective), so that nothing can be regained by exec; permitted (and with it effective) last.
pub fn drop_all() -> Result<(), CapsDropError> {
    for (set, name) in [
        (CapSet::Bounding, "bounding"),
        (CapSet::Ambient, "ambient"),
        (CapSet::Inheritable, "inheritable"),
        (CapSet::Effective, "effective"),
        (CapSet::Permitted, "permitted"),
    ] {
        caps::clear(None, set).map_err(|source| CapsDropError { set: name, source })?;
    }
    Ok(())
}

//! Finding a policy by name or path.

use std::io;
use std::path::{Path, PathBuf};

use crate::{Policy, PolicyFileError, SHIPPED};

/// A policy that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The name is not a policy name (`[a-z0-9][a-z0-9_-]{0,63}`).
    #[error("{name:?} is not a policy name (a-z, 0-9, _ and -, starting with a letter or digit, at most 64 characters)")]
    BadName {
        /// The name given.
        name: String,
    },
    /// No policy has that name.
    #[error("no policy {name:?} {} (available: {})", where_text(.dir), available_text(.available))]
    NotFound {
        /// The name given.
        name: String,
        /// The directory searched; `None`: the shipped policies.
        dir: Option<PathBuf>,
        /// The policies there, sorted.
        available: Vec<String>,
    },
    /// A file or directory could not be read.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// The file is not a valid policy.
    #[error(transparent)]
    Policy(#[from] PolicyFileError),
}

fn where_text(dir: &Option<PathBuf>) -> String {
    match dir {
        Some(dir) => format!("in {}", dir.display()),
        None => "among the shipped policies".to_owned(),
    }
}

fn available_text(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// Whether `name` is a policy name: `[a-z0-9][a-z0-9_-]{0,63}`.
pub fn is_policy_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= 64
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The policy directory to use: `dir` if it is given and exists, `None` for the shipped
/// policies.
fn policy_dir(dir: Option<&Path>) -> Result<Option<&Path>, LoadError> {
    let Some(dir) = dir else {
        return Ok(None);
    };
    match std::fs::metadata(dir) {
        Ok(_) => Ok(Some(dir)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LoadError::Io {
            path: dir.to_owned(),
            source,
        }),
    }
}

/// Loads a policy. `name_or_path` with a `/` is a file path (the policy is named after the
/// file's stem). Otherwise it is a policy name: when `dir` is given and exists, only
/// `dir/NAME.toml` is looked at; else the [`SHIPPED`] policy of that name.
pub fn load(dir: Option<&Path>, name_or_path: &str) -> Result<Policy, LoadError> {
    if name_or_path.contains('/') {
        let path = Path::new(name_or_path);
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
            path: path.to_owned(),
            source,
        })?;
        let name = path
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        return Ok(Policy::parse(&name, name_or_path, &text)?);
    }
    let name = name_or_path;
    if !is_policy_name(name) {
        return Err(LoadError::BadName {
            name: name.to_owned(),
        });
    }
    match policy_dir(dir)? {
        Some(dir) => {
            let path = dir.join(format!("{name}.toml"));
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(LoadError::NotFound {
                        name: name.to_owned(),
                        dir: Some(dir.to_owned()),
                        available: available(Some(dir)),
                    })
                }
                Err(source) => return Err(LoadError::Io { path, source }),
            };
            Ok(Policy::parse(name, &path.display().to_string(), &text)?)
        }
        None => match SHIPPED.iter().find(|(n, _)| *n == name) {
            Some((_, text)) => Ok(Policy::parse(
                name,
                &format!("(shipped) {name}.toml"),
                text,
            )?),
            None => Err(LoadError::NotFound {
                name: name.to_owned(),
                dir: None,
                available: available(None),
            }),
        },
    }
}

/// The names of the policies [`load`] finds by name with this `dir`, sorted: the `NAME.toml`
/// files of `dir` if it exists (none if it cannot be read), else the shipped ones.
pub fn available(dir: Option<&Path>) -> Vec<String> {
    let mut names: Vec<String> = match policy_dir(dir) {
        Ok(None) => SHIPPED.iter().map(|(n, _)| (*n).to_owned()).collect(),
        Ok(Some(dir)) => std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let file = entry.file_name().into_string().ok()?;
                let name = file.strip_suffix(".toml")?;
                is_policy_name(name).then(|| name.to_owned())
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

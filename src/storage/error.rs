//! Why storage could not answer, in two classes the routes map to statuses, each with what
//! failed and, where there is one, the error that caused it (kept as its `source`, not
//! flattened into the message).

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// Why storage could not answer. Never the client's fault.
///
/// Cloneable (a group's failure answers every write of the group), so the cause is shared.
#[derive(Debug, Clone)]
pub enum StorageError {
    /// Temporarily unreachable or overloaded: the client should retry (503 + Retry-After).
    Unavailable(Cause),
    /// Anything else: a bug or corruption (500, logged, details not sent to the client).
    Internal(Cause),
    /// This backend does not offer the operation yet (501; the message says what).
    Unsupported(Cause),
    /// The answer waits for work in progress that finishes by itself, such as a rollup build:
    /// retrying later helps (503 + Retry-After). Unlike `Unavailable`, the message is the
    /// client's business (it says what is in progress) and is sent.
    Pending(Cause),
}

impl StorageError {
    /// What failed, without its sources.
    pub fn cause(&self) -> &Cause {
        match self {
            Self::Unavailable(cause)
            | Self::Internal(cause)
            | Self::Unsupported(cause)
            | Self::Pending(cause) => cause,
        }
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable(cause) => write!(f, "storage unavailable: {cause}"),
            Self::Internal(cause) => write!(f, "storage failure: {cause}"),
            Self::Unsupported(cause) => write!(f, "not supported by this storage backend: {cause}"),
            Self::Pending(cause) => write!(f, "not answerable yet: {cause}"),
        }
    }
}

impl Error for StorageError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.cause().source()
    }
}

/// What failed (`context`) and the error behind it, if any. `Display` shows the context only;
/// the error is the `source`.
#[derive(Debug, Clone)]
pub struct Cause {
    context: String,
    source: Option<Arc<dyn Error + Send + Sync>>,
}

impl Cause {
    /// `context` caused by `source`.
    pub fn new(context: impl Into<String>, source: impl Error + Send + Sync + 'static) -> Self {
        Self {
            context: context.into(),
            source: Some(Arc::new(source)),
        }
    }

    pub fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn Error + 'static))
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.context)
    }
}

/// A cause with no error behind it (a corrupt value, a broken invariant).
impl From<String> for Cause {
    fn from(context: String) -> Self {
        Self {
            context,
            source: None,
        }
    }
}

impl From<&str> for Cause {
    fn from(context: &str) -> Self {
        context.to_owned().into()
    }
}

/// An error and every source below it, joined by `": "`: for logs and the start-up message.
/// A source whose text the message already ends with (a wrapper that shows what it wraps) is
/// not repeated.
pub fn chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(source) = next {
        let more = source.to_string();
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        next = source.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_is_kept_and_shown_once_in_the_chain() {
        let io = std::io::Error::other("disk on fire");
        let error = StorageError::Unavailable(Cause::new("write-ahead log", io));
        assert_eq!(error.to_string(), "storage unavailable: write-ahead log");
        assert_eq!(error.source().unwrap().to_string(), "disk on fire");
        assert_eq!(
            chain(&error),
            "storage unavailable: write-ahead log: disk on fire"
        );
        let wrapped = crate::app::StartupError::Storage {
            backend: "embedded",
            source: error,
        };
        assert_eq!(
            chain(&wrapped),
            "STORAGE=embedded: cannot open the store: storage unavailable: write-ahead log: disk on fire"
        );
        let plain = StorageError::Internal("corrupt item 7".into());
        assert!(plain.source().is_none());
        assert_eq!(chain(&plain), "storage failure: corrupt item 7");
    }
}

//! The embedded store's directory (`DATA_DIR`): created when missing, and locked to one
//! process for as long as the service runs, so a second instance on the same directory stops
//! at start-up with a message that says so (and which process holds it) instead of a database
//! error. The lock is an advisory `flock` on `DATA_DIR/telemetry.lock`, which holds the pid of
//! its owner; the operating system releases it when the process exits, even after `kill -9`.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock file's name inside `DATA_DIR`.
pub const LOCK_FILE_NAME: &str = "telemetry.lock";

/// Why `DATA_DIR` cannot be used. Each message is one line naming the variable.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("DATA_DIR={}: cannot create directory: {source}", dir.display())]
    Create {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("DATA_DIR={}: cannot open {LOCK_FILE_NAME}: {source}", dir.display())]
    LockFile {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("DATA_DIR={} is locked by another telemetry process ({})", dir.display(),
        pid.map_or_else(|| "pid unknown".to_owned(), |pid| format!("pid {pid}")))]
    Locked { dir: PathBuf, pid: Option<u32> },
}

/// Holds `DATA_DIR`'s lock until dropped.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Creates `dir` if needed and takes its lock.
pub fn lock(dir: &Path) -> Result<DataDirLock, DataDirError> {
    std::fs::create_dir_all(dir).map_err(|source| DataDirError::Create {
        dir: dir.to_owned(),
        source,
    })?;
    let lock_file_error = |source| DataDirError::LockFile {
        dir: dir.to_owned(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(LOCK_FILE_NAME))
        .map_err(lock_file_error)?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0).map_err(lock_file_error)?;
            file.seek(SeekFrom::Start(0)).map_err(lock_file_error)?;
            writeln!(file, "{}", std::process::id()).map_err(lock_file_error)?;
            Ok(DataDirLock { _file: file })
        }
        Err(TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let pid = file
                .read_to_string(&mut pid)
                .ok()
                .and_then(|_| pid.trim().parse().ok());
            Err(DataDirError::Locked {
                dir: dir.to_owned(),
                pid,
            })
        }
        Err(TryLockError::Error(source)) => Err(lock_file_error(source)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_owner_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(dir.path()).unwrap();
        let error = lock(dir.path()).unwrap_err().to_string();
        let expected = format!(
            "DATA_DIR={} is locked by another telemetry process (pid {})",
            dir.path().display(),
            std::process::id()
        );
        assert_eq!(error, expected);
        drop(first);
        lock(dir.path()).expect("free again once the owner is gone");
    }

    #[test]
    fn a_missing_directory_is_created_and_an_impossible_one_named() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        lock(&nested).unwrap();
        assert!(nested.join(LOCK_FILE_NAME).is_file());
        let file = dir.path().join("plain-file");
        std::fs::write(&file, "x").unwrap();
        let error = lock(&file.join("sub")).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!(
                "DATA_DIR={}: cannot create directory: ",
                file.join("sub").display()
            )),
            "{error}"
        );
    }
}

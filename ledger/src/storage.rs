//! Where segment files live: a small trait so that crash-consistency tests
//! can put a fault-injecting backend (`faulty::FaultyStorage`, built only
//! with the `faulty-storage` feature) where the real file system
//! ([`FsStorage`]) normally is.
//!
//! The writer only ever needs: list the segments, read one, create one (and
//! make its name durable), append to the last one, fsync it, and cut it;
//! and, in recovery, put a file in place under its name (a compressed last
//! segment restored to its plain form) and remove leftovers.

#[cfg(feature = "faulty-storage")]
pub mod faulty;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The directory of segment files, seen by the writer.
pub trait Storage: Send + Sync + 'static {
    /// Names of the files in the directory (not only segments).
    fn list(&self) -> io::Result<Vec<String>>;
    /// The whole content of a file.
    fn read(&self, name: &str) -> io::Result<Vec<u8>>;
    /// Creates an empty file and makes its directory entry durable.
    fn create(&self, name: &str) -> io::Result<Box<dyn SegmentFile>>;
    /// Opens an existing file for appending.
    fn open_append(&self, name: &str) -> io::Result<Box<dyn SegmentFile>>;
    /// Cuts a file to `len` bytes, durably.
    fn truncate(&self, name: &str, len: u64) -> io::Result<()>;
    /// Writes a whole side file (e.g. the bytes cut by recovery), durably.
    fn write_side_file(&self, name: &str, bytes: &[u8]) -> io::Result<()>;
    /// Removes a file, durably.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Renames `from` to `to`, replacing `to` if it exists, durably.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
}

/// One segment open for appending.
pub trait SegmentFile: Send {
    /// Appends all of `buf` (or fails; a failure may leave part of it written).
    fn append(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Makes everything appended so far durable (fdatasync).
    fn sync(&mut self) -> io::Result<()>;
}

/// Segment files in a directory of the real file system.
#[derive(Debug, Clone)]
pub struct FsStorage {
    dir: PathBuf,
}

impl FsStorage {
    /// Uses `dir`, creating it (mode 0700) if needed.
    pub fn new(dir: &Path) -> io::Result<FsStorage> {
        create_private_dir(dir)?;
        Ok(FsStorage { dir: dir.to_path_buf() })
    }

    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }
}

/// Creates a directory and its parents; the last one gets mode 0700.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let parent = match dir.parent() {
        Some(p) if p.as_os_str().is_empty() => Some(Path::new(".")),
        other => other,
    };
    if let Some(parent) = parent {
        // The new directory's name is durable only once its parent is synced.
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}

struct FsSegmentFile {
    file: File,
}

impl SegmentFile for FsSegmentFile {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}

impl Storage for FsStorage {
    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        fs::read(self.dir.join(name))
    }

    fn create(&self, name: &str) -> io::Result<Box<dyn SegmentFile>> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = OpenOptions::new().append(true).create_new(true).mode(0o600).open(self.dir.join(name))?;
        self.sync_dir()?;
        Ok(Box::new(FsSegmentFile { file }))
    }

    fn open_append(&self, name: &str) -> io::Result<Box<dyn SegmentFile>> {
        let file = OpenOptions::new().append(true).open(self.dir.join(name))?;
        Ok(Box::new(FsSegmentFile { file }))
    }

    fn truncate(&self, name: &str, len: u64) -> io::Result<()> {
        let file = OpenOptions::new().write(true).open(self.dir.join(name))?;
        file.set_len(len)?;
        file.sync_all()
    }

    fn write_side_file(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut file =
            OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(self.dir.join(name))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        self.sync_dir()
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        fs::remove_file(self.dir.join(name))?;
        self.sync_dir()
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        fs::rename(self.dir.join(from), self.dir.join(to))?;
        self.sync_dir()
    }
}

/// Writes a small whole file durably, with `mode` set explicitly (not left
/// to the umask): into a temporary file beside it, fsynced, moved into
/// place, the directory fsynced. Parent directories are created. With
/// `replace` false an existing file is never overwritten (`AlreadyExists`),
/// which is what keys need.
pub fn write_file_durably(path: &Path, bytes: &[u8], mode: u32, replace: bool) -> io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        if replace {
            fs::rename(&tmp, path)
        } else {
            // A hard link fails if the name exists: no clobbering, atomically.
            fs::hard_link(&tmp, path).and_then(|()| fs::remove_file(&tmp))
        }
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durable_writes_set_the_mode_and_respect_replace() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("key");
        write_file_durably(&path, b"one", 0o600, false).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let again = write_file_durably(&path, b"two", 0o600, false).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"one");
        write_file_durably(&path, b"three", 0o644, true).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"three");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644);
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "no temporary file left");
    }
}

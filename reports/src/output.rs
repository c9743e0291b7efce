//! Output files written whole or not at all: the bytes go to a temporary file in the
//! target's directory, which is flushed to disk and renamed over the target. A command
//! that fails (or is killed) before the rename leaves an earlier file of the same name
//! as it was, and a reader never sees half a document.
//!
//! The temporary file is named `.NAME.PID-N.tmp.EXT` (hidden, and keeping the
//! extension, which some writers such as the PNG encoder read the format from). It is
//! removed when the write fails or a [`Staged`] file is dropped uncommitted.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Temporary files made by this process so far (keeps their names unique).
static STAGED: AtomicU64 = AtomicU64::new(0);

/// A file being written under a temporary name next to its target, renamed into place
/// by [`Staged::commit`]; dropped uncommitted, the temporary file is removed.
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl Staged {
    /// Chooses the temporary name for `target` and creates the file empty (so the
    /// directory is known to be writable). A symbolic link as the target is followed:
    /// the file it points to is replaced, not the link.
    pub fn new(target: &Path) -> io::Result<Staged> {
        let target = match fs::symlink_metadata(target) {
            Ok(m) if m.file_type().is_symlink() => fs::canonicalize(target)?,
            _ => target.to_path_buf(),
        };
        match fs::metadata(&target) {
            Ok(m) if m.is_dir() => {
                return Err(io::Error::new(
                    io::ErrorKind::IsADirectory,
                    "it is a directory",
                ))
            }
            Ok(m) if m.permissions().readonly() => {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "the file is read-only",
                ))
            }
            _ => {}
        }
        let name = target
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?
            .to_string_lossy()
            .into_owned();
        let ext = target
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        let n = STAGED.fetch_add(1, Ordering::Relaxed);
        let tmp = target.with_file_name(format!(".{name}.{}-{n}.tmp{ext}", std::process::id()));
        OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        Ok(Staged {
            tmp,
            target,
            committed: false,
        })
    }

    /// Stages `bytes` for `target`: written and flushed to disk, not yet in place.
    pub fn write(target: &Path, bytes: &[u8]) -> io::Result<Staged> {
        let staged = Staged::new(target)?;
        let mut f = OpenOptions::new().write(true).open(&staged.tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        Ok(staged)
    }

    /// The temporary file, for a writer that opens the path itself (it must write the
    /// whole file there; [`Staged::commit`] flushes it to disk).
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }

    /// The file it will replace.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Flushes the temporary file, gives it the target's permissions when the target
    /// exists, renames it over the target and flushes the directory.
    pub fn commit(mut self) -> io::Result<()> {
        File::open(&self.tmp)?.sync_all()?;
        if let Ok(m) = fs::metadata(&self.target) {
            fs::set_permissions(&self.tmp, m.permissions())?;
        }
        fs::rename(&self.tmp, &self.target)?;
        self.committed = true;
        let dir = match self.target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        // The rename is done; a directory that cannot be flushed (some file systems
        // refuse) does not undo it.
        let _ = File::open(dir).and_then(|d| d.sync_all());
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `bytes` to `path` whole or not at all (see the module's comment).
pub fn write_whole(path: &Path, bytes: &[u8]) -> io::Result<()> {
    Staged::write(path, bytes)?.commit()
}

/// Fails as [`write_whole`] would on a path it cannot write (missing or read-only
/// directory, a directory or a read-only file at the path), without touching the
/// path: for commands that check their output paths before long work.
pub fn check_writable(path: &Path) -> io::Result<()> {
    Staged::new(path).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("reports-output-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn entries(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_write_replaces_the_file_and_leaves_no_temporary_file() {
        let d = dir("replace");
        let p = d.join("out.json");
        fs::write(&p, b"old").unwrap();
        write_whole(&p, b"new").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert_eq!(entries(&d), ["out.json"]);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_uncommitted_file_leaves_the_target_as_it_was() {
        let d = dir("uncommitted");
        let p = d.join("out.png");
        fs::write(&p, b"old").unwrap();
        let staged = Staged::write(&p, b"half").unwrap();
        assert!(staged.tmp_path().to_string_lossy().ends_with(".tmp.png"));
        assert_eq!(entries(&d).len(), 2);
        drop(staged);
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(entries(&d), ["out.png"]);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn paths_that_cannot_be_written_fail_up_front_and_touch_nothing() {
        let d = dir("unwritable");
        assert!(check_writable(&d.join("missing").join("out.json")).is_err());
        assert!(check_writable(&d).is_err(), "a directory is not a file");
        check_writable(&d.join("fine.json")).unwrap();
        assert!(entries(&d).is_empty(), "{:?}", entries(&d));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_symbolic_link_is_followed_and_kept() {
        let d = dir("symlink");
        let real = d.join("real.json");
        fs::write(&real, b"old").unwrap();
        let link = d.join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_whole(&link, b"new").unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&real).unwrap(), b"new");
        fs::remove_dir_all(&d).unwrap();
    }
}

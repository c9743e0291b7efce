//! The one export layer: every document (JSON) and console table is rendered here
//! into bytes or text without I/O, and [`OutputFile`] is the one place that writes
//! output files. Library modules compute and hand documents and tables here; the
//! exceptions are progress on stderr (`load`'s progress line and its one line when the
//! client runs out of descriptors, `serve`'s address line) and the HDR interval log,
//! which `load` writes as the run goes.

pub mod bench;
pub mod cost;
pub mod counters;
pub mod gate;
pub mod junit;
pub mod results;
pub mod run;
pub mod scenarios;
pub mod suite;
pub mod sweep;
pub mod tables;

use std::path::{Path, PathBuf};

use reports::output;
use serde::Serialize;

/// A JSON document as it is written: pretty-printed, with a final newline.
pub fn json<T: Serialize + ?Sized>(doc: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = serde_json::to_vec_pretty(doc)?;
    out.push(b'\n');
    Ok(out)
}

/// An output file named by a flag, checked before the work that fills it (a bad
/// path fails at once, not after minutes of measuring) and written once at the end,
/// whole or not at all (`reports::output`): until then an earlier file of the same
/// name stays as it was, also when the work fails or is interrupted.
#[derive(Debug)]
pub struct OutputFile {
    flag: &'static str,
    path: PathBuf,
}

impl OutputFile {
    /// Checks that `path` can be written; the error is `FLAG PATH: cannot create: ...`.
    pub fn create(flag: &'static str, path: &Path) -> Result<OutputFile, String> {
        Self::create_or(flag, path, |e| {
            format!("{flag} {}: cannot create: {e}", path.display())
        })
    }

    /// Checks `path` if one is given (see [`OutputFile::create`]).
    pub fn create_opt(
        flag: &'static str,
        path: &Option<PathBuf>,
    ) -> Result<Option<OutputFile>, String> {
        path.as_deref()
            .map(|p| OutputFile::create(flag, p))
            .transpose()
    }

    /// Checks `path` if one is given; the error adds `give a writable path`.
    pub fn create_writable_opt(
        flag: &'static str,
        path: &Option<PathBuf>,
    ) -> Result<Option<OutputFile>, String> {
        let create = |p: &Path| {
            OutputFile::create_or(flag, p, |e| {
                format!(
                    "{flag} {}: cannot create the file: {e}: give a writable path",
                    p.display()
                )
            })
        };
        path.as_deref().map(create).transpose()
    }

    /// Checks that `path` can be written, with `message` for the error.
    pub fn create_or(
        flag: &'static str,
        path: &Path,
        message: impl FnOnce(std::io::Error) -> String,
    ) -> Result<OutputFile, String> {
        output::check_writable(path).map_err(message)?;
        Ok(OutputFile {
            flag,
            path: path.to_path_buf(),
        })
    }

    /// The path as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `bytes` as the whole file; the error is `FLAG PATH: cannot write: ...`.
    pub fn write(self, bytes: &[u8]) -> Result<(), String> {
        output::write_whole(&self.path, bytes)
            .map_err(|e| format!("{} {}: cannot write: {e}", self.flag, self.path.display()))
    }

    /// Writes `doc` as JSON (see [`json`]).
    pub fn write_json<T: Serialize + ?Sized>(self, doc: &T) -> Result<(), String> {
        let bytes = json(doc)
            .map_err(|e| format!("{} {}: cannot write: {e}", self.flag, self.path.display()))?;
        self.write(&bytes)
    }
}

//! `loadgen scenario` run for real with an output file (`--json`, `--junit`): the
//! file's text, read back and removed.

use std::path::PathBuf;
use std::time::Duration;

use crate::common::loadgen;

/// Runs `loadgen scenario <args> <flag> FILE` (FILE named by `name`, ending `.<ext>`);
/// returns the exit code, FILE's text and FILE (for messages). Panics when FILE was
/// not written.
pub fn scenario_file(name: &str, flag: &str, ext: &str, args: &[&str]) -> (i32, String, String) {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("scenarios-{name}-{}.{ext}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let file = path.to_str().unwrap().to_string();
    let mut all = vec!["scenario"];
    all.extend_from_slice(args);
    all.extend_from_slice(&[flag, &file]);
    let out = loadgen(&all, Duration::from_secs(120));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{flag} {file} was not written ({e}): {out:?}"));
    let _ = std::fs::remove_file(&path);
    (out.code(), text, file)
}

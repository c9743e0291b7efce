//! README.md's scenarios table is generated from the registry
//! (`loadgen scenario list --markdown`), never written by hand: this test fails when
//! the two differ. `UPDATE_README=1` rewrites the table in place.

mod common;

use std::time::Duration;

use common::loadgen;

const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
const BEGIN: &str = "<!-- scenarios:begin -->\n";
const END: &str = "<!-- scenarios:end -->";
const REGENERATE: &str = "UPDATE_README=1 cargo test -p loadgen --test readme_table";

#[test]
fn readme_scenarios_table_is_generated() {
    let out = loadgen(&["scenario", "list", "--markdown"], Duration::from_secs(30));
    assert_eq!(out.code(), 0, "{out:?}");
    let table = out.stdout;
    assert!(
        table.starts_with("| ID | Level | Aliases | Clause |\n"),
        "{table}"
    );

    let readme = std::fs::read_to_string(README).unwrap();
    let start = readme
        .find(BEGIN)
        .unwrap_or_else(|| panic!("README.md has no {BEGIN:?} marker under ## Scenarios"))
        + BEGIN.len();
    let end = start
        + readme[start..]
            .find(END)
            .unwrap_or_else(|| panic!("README.md has no {END:?} marker"));
    let current = readme[start..end].trim();
    if current == table.trim() {
        return;
    }
    if std::env::var_os("UPDATE_README").is_some() {
        let updated = format!(
            "{}\n{}\n\n{}",
            &readme[..start],
            table.trim(),
            &readme[end..]
        );
        std::fs::write(README, updated).unwrap();
        return;
    }
    panic!(
        "README.md's scenarios table differs from `loadgen scenario list --markdown`; \
         regenerate it with `{REGENERATE}` (it rewrites the table between the markers)"
    );
}

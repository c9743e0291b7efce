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
        table.starts_with("| ID | Level | Aliases | Needs | Clause |\n"),
        "{table}"
    );

    check_section(BEGIN, END, &table, "`loadgen scenario list --markdown`");
}

const NGINX_BEGIN: &str = "<!-- nginx:begin -->\n";
const NGINX_END: &str = "<!-- nginx:end -->";
const NGINX_EXPECT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../ci/expectations-nginx.tsv");

/// The README's nginx table is generated from `ci/expectations-nginx.tsv` (which CI
/// checks against real runs with `--target nginx --expect`): one row per HTTP clause.
fn nginx_table(scenarios_md: &str, expectations: &str) -> String {
    let listed: Vec<(&str, &str, &str)> = expectations
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let mut c = l.splitn(3, '\t');
            Some((c.next()?, c.next()?, c.next()?))
        })
        .collect();
    let mut out = String::from("| Clause | nginx | Why |\n|---|---|---|\n");
    for line in scenarios_md.lines() {
        let Some(id) = line
            .strip_prefix("| `")
            .and_then(|r| r.split('`').next())
            .filter(|id| id.starts_with("http.") || id.starts_with("hostile."))
        else {
            continue;
        };
        let (verdict, why) = listed
            .iter()
            .find(|(i, _, _)| *i == id)
            .map_or(("pass", ""), |(_, v, w)| (*v, *w));
        out.push_str(&format!("| `{id}` | {verdict} | {why} |\n"));
    }
    out
}

#[test]
fn readme_nginx_table_is_generated() {
    let out = loadgen(&["scenario", "list", "--markdown"], Duration::from_secs(30));
    assert_eq!(out.code(), 0, "{out:?}");
    let expectations = std::fs::read_to_string(NGINX_EXPECT).unwrap();
    let table = nginx_table(&out.stdout, &expectations);
    assert!(table.lines().count() >= 2 + 11, "{table}");
    check_section(NGINX_BEGIN, NGINX_END, &table, "ci/expectations-nginx.tsv");
}

/// Compares README.md between `begin` and `end` with `table` (generated from
/// `source`); with `UPDATE_README=1`, rewrites that part instead of failing.
fn check_section(begin: &str, end: &str, table: &str, source: &str) {
    let readme = std::fs::read_to_string(README).unwrap();
    let start = readme
        .find(begin)
        .unwrap_or_else(|| panic!("README.md has no {begin:?} marker"))
        + begin.len();
    let stop = start
        + readme[start..]
            .find(end)
            .unwrap_or_else(|| panic!("README.md has no {end:?} marker"));
    if readme[start..stop].trim() == table.trim() {
        return;
    }
    if std::env::var_os("UPDATE_README").is_some() {
        let updated = format!(
            "{}\n{}\n\n{}",
            &readme[..start],
            table.trim(),
            &readme[stop..]
        );
        std::fs::write(README, updated).unwrap();
        return;
    }
    panic!(
        "README.md's table between {begin:?} and {end:?} differs from {source}; \
         regenerate it with `{REGENERATE}` (it rewrites the table between the markers)"
    );
}

//! Architecture invariant: the crate's top-level modules import each other without a
//! cycle (an edge is a `crate::X` path in a module's files, `X` another top-level
//! module; a root re-export such as `crate::Ctx` counts as the module it comes from).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// Code without `//` comments (doc examples name the crate as `scenarios::`).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names `crate::` paths in `text` start with (a `crate::{a, b::c}` group: each).
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let name = ident_at(item.trim());
                if !name.is_empty() {
                    out.insert(name.to_string());
                }
            }
        } else {
            out.insert(ident_at(rest).to_string());
        }
    }
    out
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(SRC);
    let lib = code(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    // `pub use module::{A, B};` in lib.rs: where the root's names come from.
    let mut reexported = BTreeMap::new();
    for line in lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub use "))
    {
        let (module, names) = line.split_once("::").unwrap();
        for name in names.trim_matches(|c| "{};".contains(c)).split(',') {
            reexported.insert(name.trim().to_string(), module.to_string());
        }
    }
    let mut all = Vec::new();
    files(src, &mut all);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in all {
        let rel = path.strip_prefix(src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" {
            continue;
        }
        let text = code(&std::fs::read_to_string(&path).unwrap());
        let to = edges.entry(module.clone()).or_default();
        for name in crate_paths(&text) {
            let target = reexported.get(&name).cloned().unwrap_or(name);
            if target != module {
                to.insert(target);
            }
        }
    }
    edges
}

/// A cycle through `node`, if there is one (depth-first, `path` the current branch).
fn cycle(
    edges: &BTreeMap<String, BTreeSet<String>>,
    node: &str,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(at) = path.iter().position(|n| n == node) {
        let mut c = path[at..].to_vec();
        c.push(node.to_string());
        return Some(c);
    }
    if done.contains(node) {
        return None;
    }
    path.push(node.to_string());
    for next in edges.get(node).into_iter().flatten() {
        if let Some(c) = cycle(edges, next, path, done) {
            return Some(c);
        }
    }
    path.pop();
    done.insert(node.to_string());
    None
}

#[test]
fn the_module_import_graph_has_no_cycle() {
    let edges = graph();
    assert!(
        edges.get("checks").is_some_and(|e| e.contains("outcome")),
        "the graph reader found no edges: {edges:?}"
    );
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(c) = cycle(&edges, node, &mut Vec::new(), &mut done) {
            panic!("module cycle: {}\ngraph: {edges:#?}", c.join(" -> "));
        }
    }
}

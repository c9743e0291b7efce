//! The architecture invariants of `ARCHITECTURE.md`, checked on the workspace's
//! source text (the compiler's lints keep the rest: `forbid(unsafe_code)` in
//! `scenarios`, `loadgen` and `reports`, `deny(unsafe_code)` in `engine`).
//!
//! An import edge is a path in code (not in comments or strings) that names another
//! module: `crate::x::..`, `super::..`, `self::..`, or a child declared with `mod x;`,
//! with `use` trees expanded and re-exports (`pub use a::B`) followed to where the
//! item is defined. Method calls are not paths.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The workspace members.
const CRATES: [&str; 4] = ["engine", "scenarios", "loadgen", "reports"];

type ModPath = Vec<String>;

struct SourceFile {
    /// Relative to `src/`, with `/` separators.
    rel: String,
    module: ModPath,
    /// Code with comments and string and char literals blanked out.
    code: String,
}

/// The workspace root (loadgen sits in it).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("loadgen sits in the workspace root")
        .to_path_buf()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Every `.rs` file below `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    collect(dir, &mut out);
    out
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn module_of(rel: &str) -> ModPath {
    let mut parts: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(String::from)
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// Blanks comments (line, nested block) and string / char literals, keeping line breaks.
fn strip(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, c: u8| out.push(if c == b'\n' { b'\n' } else { b' ' });
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
        } else if b[i] == b'"' {
            out.push(b' ');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    out.push(b' ');
                    i += 1;
                }
                if i < b.len() {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
            out.push(b' ');
            i += 1;
        } else if b[i] == b'\'' && b.get(i + 1) == Some(&b'\\') {
            // An escaped char literal: up to the closing quote.
            let end = b
                .get(i + 3..)
                .and_then(|t| t.iter().position(|&c| c == b'\''))
                .map_or(b.len(), |p| i + 4 + p);
            out.resize(out.len() + (end - i), b' ');
            i = end;
        } else if b[i] == b'\'' && b.get(i + 2) == Some(&b'\'') {
            out.extend_from_slice(b"   ");
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("ASCII blanks keep the text UTF-8")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Expands a `use` tree (whitespace removed) into full paths.
fn expand(tree: &str, prefix: &str, out: &mut Vec<String>) {
    let join = |p: &str, s: &str| {
        if p.is_empty() {
            s.to_string()
        } else {
            format!("{p}::{s}")
        }
    };
    if let Some(open) = tree.find('{') {
        let head = tree[..open].trim_end_matches("::");
        let inner = &tree[open + 1..tree.rfind('}').expect("a closing brace")];
        let prefix = join(prefix, head);
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&inner[start..i], &prefix, out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(&inner[start..], &prefix, out);
    } else if !tree.is_empty() {
        let tree = tree.split(" as ").next().unwrap_or(tree);
        out.push(join(prefix, tree));
    }
}

/// The `use` statements of `code`: (offset, is `pub use`, expanded paths).
fn uses(code: &str) -> Vec<(usize, bool, Vec<String>)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("use ").map(|p| from + p) {
        let before = &code[..at];
        from = at + 4;
        if before.bytes().last().is_some_and(|c| is_ident(c as char)) {
            continue;
        }
        let is_pub = before.trim_end().ends_with("pub") || before.trim_end().ends_with(')');
        let end = code[from..].find(';').map_or(code.len(), |p| from + p);
        let tree: String = code[from..end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace(" ::", "::")
            .replace(":: ", "::")
            .replace("{ ", "{")
            .replace(" }", "}")
            .replace(", ", ",")
            .replace(" ,", ",");
        let mut paths = Vec::new();
        expand(&tree, "", &mut paths);
        found.push((at, is_pub, paths));
        from = end;
    }
    found
}

/// Every `a::b::c` path in `code` that starts with one of `roots`: (offset, path).
fn paths_from(code: &str, roots: &BTreeSet<String>) -> Vec<(usize, String)> {
    let b = code.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !ident(b[i]) || (i > 0 && (ident(b[i - 1]) || b[i - 1] == b':')) {
            i += 1;
            continue;
        }
        let mut j = i;
        loop {
            while j < b.len() && ident(b[j]) {
                j += 1;
            }
            if b[j..].starts_with(b"::") && b.get(j + 2).is_some_and(|&c| ident(c)) {
                j += 2;
            } else {
                break;
            }
        }
        let path = &code[i..j];
        let first = path.split("::").next().unwrap_or("");
        if path.contains("::") && roots.contains(first) {
            found.push((i, path.to_string()));
        }
        i = j;
    }
    found
}

/// Inline modules (`mod tests { .. }`): (start, end, name), so that `super::` inside
/// one means the file's own module.
fn inline_modules(code: &str) -> Vec<(usize, usize, String)> {
    let b = code.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("mod ").map(|p| from + p) {
        from = at + 4;
        if at > 0 && is_ident(b[at - 1] as char) {
            continue;
        }
        let rest = &code[from..];
        let name: String = rest.chars().take_while(|&c| is_ident(c)).collect();
        let after = rest[name.len()..].trim_start();
        if name.is_empty() || !after.starts_with('{') {
            continue;
        }
        let open = from + name.len() + (rest.len() - name.len() - after.len());
        let mut depth = 0;
        let mut end = code.len();
        for (k, &c) in b.iter().enumerate().skip(open) {
            match c {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = k;
                        break;
                    }
                }
                _ => {}
            }
        }
        found.push((open, end, name));
    }
    found
}

/// Child modules declared in `code` (`mod x;`, `pub mod x;`, `pub(crate) mod x;`).
fn declared_children(code: &str) -> BTreeSet<String> {
    let mut kids = BTreeSet::new();
    for line in code.lines() {
        let t = line.trim();
        if let Some(pos) = t.find("mod ") {
            let name = &t[pos + 4..];
            if let Some(name) = name.strip_suffix(';') {
                if name.chars().all(is_ident) {
                    kids.insert(name.to_string());
                }
            }
        }
    }
    kids
}

struct Crate {
    files: Vec<SourceFile>,
    modules: BTreeSet<ModPath>,
    /// `module path + item name` → the path it re-exports.
    reexports: BTreeMap<ModPath, ModPath>,
}

impl Crate {
    /// The library source of workspace member `name` (`engine`, `scenarios`, ...).
    fn load(name: &str) -> Crate {
        let root = root().join(name).join("src");
        let paths: Vec<PathBuf> = rust_files(&root)
            .into_iter()
            // A binary root is a crate of its own, not a module of the library.
            .filter(|p| !p.ends_with("main.rs"))
            .collect();
        let files: Vec<SourceFile> = paths
            .iter()
            .map(|p| {
                let rel = p
                    .strip_prefix(&root)
                    .expect("under src")
                    .to_string_lossy()
                    .replace('\\', "/");
                let text = read(p);
                SourceFile {
                    module: module_of(&rel),
                    code: strip(&text),
                    rel,
                }
            })
            .collect();
        let modules = files.iter().map(|f| f.module.clone()).collect();
        let mut krate = Crate {
            files,
            modules,
            reexports: BTreeMap::new(),
        };
        let mut reexports = BTreeMap::new();
        for f in &krate.files {
            for (_, is_pub, paths) in uses(&f.code) {
                if !is_pub {
                    continue;
                }
                for p in paths {
                    let abs = Crate::absolute(&f.module, &p);
                    if let Some(name) = abs.last() {
                        let mut key = f.module.clone();
                        key.push(name.clone());
                        reexports.insert(key, abs);
                    }
                }
            }
        }
        krate.reexports = reexports;
        krate
    }

    /// `path` as written in module `here`, made absolute (crate-relative segments).
    fn absolute(here: &ModPath, path: &str) -> ModPath {
        let segs: Vec<String> = path.split("::").map(String::from).collect();
        let (base, rest) = match segs[0].as_str() {
            "crate" | "$crate" => (Vec::new(), &segs[1..]),
            "self" => (here.clone(), &segs[1..]),
            "super" => {
                let mut m = here.clone();
                let mut k = 0;
                while segs.get(k).map(String::as_str) == Some("super") {
                    m.pop();
                    k += 1;
                }
                (m, &segs[k..])
            }
            _ => (here.clone(), &segs[..]),
        };
        base.into_iter().chain(rest.iter().cloned()).collect()
    }

    /// The module an absolute path lands in, re-exports followed.
    fn resolve(&self, mut abs: ModPath) -> ModPath {
        for _ in 0..16 {
            let mut hit = None;
            for n in (1..=abs.len()).rev() {
                if let Some(target) = self.reexports.get(&abs[..n]) {
                    let mut t = target.clone();
                    t.extend_from_slice(&abs[n..]);
                    hit = Some(t);
                    break;
                }
            }
            match hit {
                Some(t) if t != abs => abs = t,
                _ => break,
            }
        }
        (0..=abs.len())
            .rev()
            .map(|n| abs[..n].to_vec())
            .find(|m| self.modules.contains(m))
            .unwrap_or_default()
    }

    /// (file, from module, to module) for every path in code.
    fn references(&self) -> Vec<(String, ModPath, ModPath)> {
        let mut refs = Vec::new();
        for f in &self.files {
            let code = f.code.replace("$crate", " crate");
            let mut roots: BTreeSet<String> = ["crate", "super", "self"].map(String::from).into();
            roots.extend(declared_children(&code));
            // A `pub use` re-exports: it is followed where the item is used, and is no
            // import of its own (a folder module may gather its children's items).
            let reexports: Vec<(usize, usize)> = uses(&code)
                .iter()
                .filter(|(_, is_pub, _)| *is_pub)
                .map(|&(at, _, _)| (at, code[at..].find(';').map_or(code.len(), |e| at + e)))
                .collect();
            let mut paths: Vec<(usize, String)> = paths_from(&code, &roots)
                .into_iter()
                .filter(|(at, _)| !reexports.iter().any(|(s, e)| (*s..*e).contains(at)))
                .collect();
            for (at, _, ps) in uses(&code).into_iter().filter(|(_, is_pub, _)| !is_pub) {
                let first = |p: &String| roots.contains(p.split("::").next().unwrap_or(""));
                paths.extend(ps.into_iter().filter(first).map(|p| (at, p)));
            }
            let inline = inline_modules(&code);
            for (at, p) in paths {
                let mut here = f.module.clone();
                here.extend(
                    inline
                        .iter()
                        .filter(|(s, e, _)| (*s..*e).contains(&at))
                        .map(|(_, _, n)| n.clone()),
                );
                let to = self.resolve(Crate::absolute(&here, &p));
                refs.push((f.rel.clone(), f.module.clone(), to));
            }
        }
        refs
    }
}

/// A cycle in `edges`, if there is one.
fn find_cycle(edges: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Option<Vec<ModPath>> {
    fn visit(
        n: &ModPath,
        edges: &BTreeMap<ModPath, BTreeSet<ModPath>>,
        state: &mut BTreeMap<ModPath, u8>,
        stack: &mut Vec<ModPath>,
    ) -> Option<Vec<ModPath>> {
        state.insert(n.clone(), 1);
        stack.push(n.clone());
        for m in edges.get(n).into_iter().flatten() {
            match state.get(m).copied().unwrap_or(0) {
                1 => {
                    let at = stack.iter().position(|x| x == m).expect("on the stack");
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(m, edges, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in edges.keys() {
        if state.get(n).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(n, edges, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

fn show(m: &ModPath) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

/// The import graph at one level: among the children of `parent` (and `parent`
/// itself when it is not the crate root), each node a module one level below it.
fn graph_under(krate: &Crate, parent: &[String]) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let depth = parent.len() + 1;
    let node = |m: &ModPath| -> Option<ModPath> {
        if !m.starts_with(parent) {
            return None;
        }
        if m.len() >= depth {
            Some(m[..depth].to_vec())
        } else if !parent.is_empty() {
            Some(parent.to_vec())
        } else {
            None // The crate root: its `pub use`s re-export, they import nothing.
        }
    };
    let mut edges: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    for (_, from, to) in krate.references() {
        if let (Some(a), Some(b)) = (node(&from), node(&to)) {
            if a != b {
                edges.entry(a).or_default().insert(b);
            }
        }
    }
    edges
}

/// Architecture invariant: no crate has an import cycle between its modules, at the
/// top level or among the children of any folder module.
#[test]
fn no_crate_has_an_import_cycle() {
    for name in CRATES {
        let krate = Crate::load(name);
        let folders: BTreeSet<ModPath> = krate
            .files
            .iter()
            .filter(|f| f.rel.ends_with("mod.rs") || f.rel == "lib.rs")
            .map(|f| f.module.clone())
            .collect();
        for parent in &folders {
            let edges = graph_under(&krate, parent);
            println!("{name}, under {}:", show(parent));
            for (a, bs) in &edges {
                let bs: Vec<String> = bs.iter().map(show).collect();
                println!("  {} -> {}", show(a), bs.join(", "));
            }
            if let Some(cycle) = find_cycle(&edges) {
                let shown: Vec<String> = cycle.iter().map(show).collect();
                panic!(
                    "{name}: import cycle under {}: {}",
                    show(parent),
                    shown.join(" -> ")
                );
            }
        }
    }
}

/// The engine's code map (`engine/src/lib.rs`), top down: a module may import its own
/// line and below.
const LAYERS: &[&[&str]] = &[
    &["engine"],
    &["worker"],
    &["worker_loop"],
    &["shared"],
    &["driver"],
    &["token"],
    &["http"],
    &["config", "error", "metrics", "faults"],
    &["sys"],
    &["sync"],
];

/// Architecture invariant: the engine's modules import downward, as its code map says.
#[test]
fn engine_modules_import_downward_as_the_code_map_says() {
    let krate = Crate::load("engine");
    let layer = |m: &ModPath| {
        LAYERS
            .iter()
            .position(|l| l.contains(&m[0].as_str()))
            .unwrap_or_else(|| panic!("{} is not in the code map (lib.rs, LAYERS)", show(m)))
    };
    for (a, bs) in graph_under(&krate, &[]) {
        for b in bs {
            assert!(
                layer(&a) <= layer(&b),
                "{} imports {}, which the code map puts above it",
                show(&a),
                show(&b)
            );
        }
    }
    for m in krate.modules.iter().filter(|m| m.len() == 1) {
        layer(m);
    }
}

#[test]
fn the_graph_reader_sees_edges_and_cycles() {
    // The checker itself: a use tree expands, comments and strings are no edges.
    let code = strip("use crate::{a::B, c::{D, e::F}};\n// crate::g::H\nlet s = \"crate::i::J\";\nlet c = '\"'; crate::k::L");
    let mut paths = Vec::new();
    for (_, _, ps) in uses(&code) {
        paths.extend(ps);
    }
    assert_eq!(paths, ["crate::a::B", "crate::c::D", "crate::c::e::F"]);
    let roots = BTreeSet::from(["crate".to_string()]);
    let found: Vec<String> = paths_from(&code, &roots)
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(found, ["crate::k::L"]);
    let tests = strip("fn f() {}\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n");
    let (start, end, name) = &inline_modules(&tests)[0];
    assert_eq!(
        (name.as_str(), &tests[*start..=*end]),
        ("tests", "{\n    use super::*;\n}")
    );
    let m = |s: &str| vec![s.to_string()];
    let mut edges: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    edges.entry(m("a")).or_default().insert(m("b"));
    edges.entry(m("b")).or_default().insert(m("c"));
    assert_eq!(find_cycle(&edges), None);
    edges.entry(m("c")).or_default().insert(m("a"));
    assert!(find_cycle(&edges).is_some());
}

fn has_token(code: &str, word: &str) -> bool {
    code.match_indices(word).any(|(i, _)| {
        let before = code[..i].chars().last();
        let after = code[i + word.len()..].chars().next();
        before.is_none_or(|c| !is_ident(c)) && after.is_none_or(|c| !is_ident(c))
    })
}

/// Architecture invariant: only `engine::sys` is unsafe. `unsafe` and `syscall!`
/// appear nowhere else in the workspace (sources, tests, benches); the one
/// `allow(unsafe_code)` is on `mod sys`; the crates keep their lint attributes.
#[test]
fn unsafe_code_lives_in_engine_sys_only() {
    let root = root();
    for name in ["scenarios", "loadgen", "reports"] {
        assert!(
            strip(&read(&root.join(name).join("src/lib.rs"))).contains("#![forbid(unsafe_code)]"),
            "{name}/src/lib.rs must keep #![forbid(unsafe_code)]"
        );
    }
    let sys = root.join("engine/src/sys");
    let engine_lib = root.join("engine/src/lib.rs");
    for name in CRATES {
        for file in rust_files(&root.join(name)) {
            let code = strip(&read(&file));
            let shown = file
                .strip_prefix(&root)
                .unwrap_or(&file)
                .display()
                .to_string();
            if !file.starts_with(&sys) {
                assert!(
                    !has_token(&code, "unsafe"),
                    "{shown}: `unsafe` outside engine/src/sys"
                );
                assert!(
                    !code.contains("syscall!"),
                    "{shown}: `syscall!` outside engine/src/sys"
                );
            }
            let allows = code.matches("allow(unsafe_code)").count();
            if file == engine_lib {
                let at = code
                    .find("allow(unsafe_code)")
                    .expect("engine/src/lib.rs allows unsafe_code on mod sys");
                let next_item = code[at..].split(';').next().unwrap_or("");
                assert!(
                    next_item.trim_end().ends_with("mod sys"),
                    "engine/src/lib.rs: allow(unsafe_code) is not on `mod sys`"
                );
                assert_eq!(allows, 1, "engine/src/lib.rs: one allow(unsafe_code)");
                assert!(
                    code.contains("#![deny(unsafe_code)]"),
                    "engine/src/lib.rs denies unsafe_code"
                );
            } else {
                assert_eq!(
                    allows, 0,
                    "{shown}: allow(unsafe_code) outside engine/src/lib.rs"
                );
            }
        }
    }
}

/// The `[dependencies]`-like sections of a manifest: every dependency name in them.
fn dependency_names(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_deps = false;
    for line in manifest.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_deps = t.ends_with("dependencies]");
        } else if in_deps && !t.is_empty() && !t.starts_with('#') {
            let name = t.split(['=', '.', ' ']).next().unwrap_or("");
            names.push(name.to_string());
        }
    }
    names
}

/// Architecture invariant: `reports` never depends on `engine` nor on `scenarios`
/// (results are read and drawn without the engine under test), and no library crate
/// but `loadgen` depends on clap.
#[test]
fn crate_dependencies_point_one_way() {
    let root = root();
    let reports = dependency_names(&read(&root.join("reports/Cargo.toml")));
    for banned in ["engine", "scenarios", "loadgen", "clap"] {
        assert!(
            !reports.iter().any(|n| n == banned),
            "reports depends on {banned}"
        );
    }
    for file in rust_files(&root.join("reports")) {
        let code = strip(&read(&file));
        let roots = BTreeSet::from(["engine".to_string(), "scenarios".to_string()]);
        assert!(
            paths_from(&code, &roots).is_empty(),
            "{} names engine or scenarios",
            file.display()
        );
    }
    for name in ["engine", "scenarios"] {
        let deps = dependency_names(&read(&root.join(name).join("Cargo.toml")));
        for banned in ["loadgen", "clap"] {
            assert!(
                !deps.iter().any(|n| n == banned),
                "{name} depends on {banned}"
            );
        }
    }
    let engine = dependency_names(&read(&root.join("engine/Cargo.toml")));
    for banned in ["scenarios", "reports"] {
        assert!(
            !engine.iter().any(|n| n == banned),
            "engine depends on {banned}"
        );
    }
}

/// Architecture invariant: nothing below `loadgen/src/cli/` sees clap, and a command
/// file stays short (arguments → one library call → export).
#[test]
fn clap_stays_in_cli_and_command_files_stay_short() {
    let src = root().join("loadgen/src");
    let cli = src.join("cli");
    for file in rust_files(&src) {
        if file.starts_with(&cli) || file.ends_with("main.rs") {
            continue;
        }
        assert!(
            !has_token(&strip(&read(&file)), "clap"),
            "{} uses clap outside loadgen/src/cli",
            file.display()
        );
    }
    for file in rust_files(&cli) {
        let lines = read(&file).lines().count();
        assert!(
            lines <= 200,
            "{}: {lines} lines (at most 200)",
            file.display()
        );
    }
}

/// Architecture invariant: `scenarios` names the reference engine (`engine::Engine`)
/// only in its reference target (in process, and the control protocol's server end
/// that serves it out of process); checks see an engine through the target traits.
#[test]
fn scenarios_name_the_reference_engine_only_in_its_target() {
    let src = root().join("scenarios/src");
    // In process, and out of process: the control protocol's server end serves it.
    let allowed = [
        src.join("targets/reference.rs"),
        src.join("targets/remote/server.rs"),
    ];
    for a in &allowed {
        assert!(a.exists(), "{} is missing", a.display());
    }
    let roots = BTreeSet::from(["engine".to_string()]);
    for file in rust_files(&src) {
        if allowed.contains(&file) {
            continue;
        }
        let code = strip(&read(&file));
        let mut named: Vec<String> = paths_from(&code, &roots)
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        for (_, _, ps) in uses(&code) {
            named.extend(ps.into_iter().filter(|p| p.starts_with("engine::")));
        }
        let engine = named
            .iter()
            .find(|p| p.split("::").nth(1) == Some("Engine"));
        assert!(
            engine.is_none(),
            "{}: names {} outside the reference target",
            file.display(),
            engine.unwrap()
        );
    }
}

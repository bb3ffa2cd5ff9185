//! The layout's rules (docs/ARCHITECTURE.md, "Layout"), checked on the
//! source itself so that they stay true:
//! - no two modules of the library import each other (an arrow between two
//!   modules points one way only);
//! - every T-SQL statement ctferry sends is built in `src/mssql/sql/`
//!   (the demo, which fills its own simulator, aside).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// A library's modules (`crate_dir` is ctferry's or mssql-sim's folder):
/// module path (`publisher::route`, "" for the crate root) → the file's
/// text without its `#[cfg(test)]` part.
fn library_in(crate_dir: &str) -> BTreeMap<String, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(crate_dir)
        .join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut out = BTreeMap::new();
    for f in files {
        let rel = f
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        // The binary (main.rs, cli/) is not the library.
        if rel == "main.rs" || rel.starts_with("cli/") {
            continue;
        }
        let module = rel
            .trim_end_matches(".rs")
            .trim_end_matches("/mod")
            .trim_end_matches("lib")
            .replace('/', "::");
        let text = std::fs::read_to_string(&f).unwrap();
        let code = match text.find("#[cfg(test)]") {
            Some(i) => text[..i].to_string(),
            None => text,
        };
        out.insert(module, code);
    }
    out
}

fn parent(module: &str) -> String {
    module
        .rsplit_once("::")
        .map(|(p, _)| p.to_string())
        .unwrap_or_default()
}

/// The lowercase `a::b::` segments at the start of `text` (module names;
/// an item such as `Config` or `{` ends them).
fn segments(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        if name.is_empty() {
            break;
        }
        rest = &rest[name.len()..];
        out.push(name);
        match rest.strip_prefix("::") {
            Some(r) => rest = r,
            None => break,
        }
    }
    out
}

/// The longest known module that `base::segs...` names.
fn resolve(base: &str, segs: &[String], known: &BTreeSet<String>) -> Option<String> {
    let mut path = base.to_string();
    // `super::item` names the parent module itself.
    let mut best = known.contains(base).then(|| base.to_string());
    for s in segs {
        path = if path.is_empty() {
            s.clone()
        } else {
            format!("{path}::{s}")
        };
        if known.contains(&path) {
            best = Some(path.clone());
        }
    }
    best
}

/// The modules a file's code names: `crate::a::b::Item`, `super::x::Item`,
/// and `use child::Item` (a re-export from a child module).
fn imports(module: &str, code: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut add = |m: Option<String>| {
        if let Some(m) = m.filter(|m| m != module) {
            out.insert(m);
        }
    };
    for (prefix, base) in [("crate::", String::new()), ("super::", parent(module))] {
        let mut rest = code;
        while let Some(i) = rest.find(prefix) {
            let glued = rest[..i]
                .chars()
                .last()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
            rest = &rest[i + prefix.len()..];
            if glued {
                continue;
            }
            match rest.strip_prefix('{') {
                // `use super::{a, b::C}`: each name in the group.
                Some(group) => {
                    let group = &group[..group.find('}').unwrap_or(group.len())];
                    for item in group.split(',') {
                        add(resolve(&base, &segments(item.trim()), known));
                    }
                }
                None => add(resolve(&base, &segments(rest), known)),
            }
        }
    }
    for line in code.lines() {
        let line = line.trim_start();
        let Some(path) = line
            .strip_prefix("pub use ")
            .or_else(|| line.strip_prefix("use "))
        else {
            continue;
        };
        let segs = segments(path);
        if segs
            .first()
            .is_some_and(|s| s != "crate" && s != "super" && s != "std")
        {
            // Only a child module: `use serde::...` names no module of ours.
            let child =
                |s: &String| format!("{module}{}{s}", if module.is_empty() { "" } else { "::" });
            if segs.first().is_some_and(|s| known.contains(&child(s))) {
                add(resolve(module, &segs, known));
            }
        }
    }
    out
}

/// Which modules each module of `lib` imports.
fn graph(lib: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let known: BTreeSet<String> = lib.keys().cloned().collect();
    lib.iter()
        .map(|(m, code)| (m.clone(), imports(m, code, &known)))
        .collect()
}

/// Pairs of modules that import each other.
fn both_ways(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut out = Vec::new();
    for (a, targets) in graph {
        for b in targets {
            if graph.get(b).is_some_and(|t| t.contains(a)) && a < b {
                out.push(format!("{a} <-> {b}"));
            }
        }
    }
    out
}

/// Checks one crate: the named modules exist, the named arrows are seen
/// (so the parser reads real imports), and no arrow goes both ways.
fn check_crate(crate_dir: &str, modules: &[&str], arrows: &[(&str, &str)]) {
    let g = graph(&library_in(crate_dir));
    for m in modules {
        assert!(
            g.contains_key(*m),
            "{crate_dir}: module {m} not found in {:?}",
            g.keys()
        );
    }
    for (a, b) in arrows {
        assert!(
            g[*a].contains(*b),
            "{crate_dir}: {a} should import {b}: {:?}",
            g[*a]
        );
    }
    let pairs = both_ways(&g);
    assert!(
        pairs.is_empty(),
        "{crate_dir}: modules that import each other: {pairs:?}"
    );
}

#[test]
fn no_two_modules_import_each_other() {
    check_crate(
        ".",
        &[
            "config",
            "format::package",
            "mssql::sql::source",
            "publisher::route",
            "caregiver::chain",
        ],
        &[
            ("publisher::cycle", "publisher::route"),
            ("caregiver::chain", "caregiver::log"),
        ],
    );
}

#[test]
fn the_simulator_has_no_import_cycle_either() {
    check_crate(
        "mssql-sim",
        &[
            "engine::session",
            "engine::ct::changetable",
            "tds::wire::string",
        ],
        &[
            ("engine::ddl", "engine::session"),
            ("tds::wire::string", "tds::wire::varlen"),
        ],
    );
}

#[test]
fn every_statement_is_built_in_mssql_sql() {
    let keywords = [
        "SELECT ",
        "INSERT ",
        "UPDATE ",
        "DELETE ",
        "CREATE ",
        "DROP ",
        "ALTER ",
        "TRUNCATE ",
        "BEGIN ",
        "COMMIT",
        "ROLLBACK",
        "SET ",
        "IF @@",
        "EXEC",
        "MERGE ",
        "WITH ",
    ];
    let mut found = Vec::new();
    for (module, code) in library_in(".") {
        if module.starts_with("mssql::sql") || module.starts_with("demo") {
            continue;
        }
        for k in keywords {
            for quote in ["\"", "r#\""] {
                if code.contains(&format!("{quote}{k}")) {
                    found.push(format!("{module}: a string starting with {k:?}"));
                }
            }
        }
    }
    assert!(found.is_empty(), "T-SQL outside src/mssql/sql/: {found:?}");
}

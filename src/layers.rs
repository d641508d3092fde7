//! The layering rule, checked: imports point down, never in a cycle. Reads the source tree
//! (tests excluded) and builds the graph of `crate::` references between modules: the
//! top-level modules, and each module of `core` on its own, since the protocol modules must
//! not lean on each other in circles either.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The module a source file belongs to: `store/users.rs` is `store`, `core/grants/mod.rs`
/// is `core::grants`.
fn module_of(rel: &str) -> String {
    let rel = rel.trim_end_matches(".rs");
    let parts: Vec<&str> = rel.split('/').collect();
    match parts.as_slice() {
        ["core", "mod"] => "core".into(),
        ["core", sub, ..] => format!("core::{sub}"),
        [top, ..] => (*top).to_owned(),
        [] => String::new(),
    }
}

/// The module a `crate::a::b::c` path names, at the same granularity as `module_of`.
fn module_of_path(path: &str) -> Option<String> {
    let mut it = path.split("::").filter(|s| !s.is_empty());
    let top = it.next()?;
    if top == "core" {
        return Some(match it.next() {
            Some(sub) if sub.chars().next().is_some_and(|c| c.is_ascii_lowercase()) => {
                format!("core::{sub}")
            }
            _ => "core".into(),
        });
    }
    Some(top.to_owned())
}

/// Source without its test modules: a test may reach anywhere.
fn without_tests(src: &str) -> &str {
    src.find("#[cfg(test)]").map_or(src, |i| &src[..i])
}

/// Every `crate::…` path in the text, including those inside `use crate::{a::x, b::y}`.
fn crate_paths(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                out.push(item.trim().to_owned());
            }
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            out.push(rest[..end].to_owned());
        }
    }
    out
}

fn rs_files(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rs_files(&p, root, out);
        } else if p.extension().is_some_and(|x| x == "rs")
            && let (Ok(rel), Ok(text)) = (p.strip_prefix(root), std::fs::read_to_string(&p))
        {
            out.push((rel.display().to_string(), text));
        }
    }
}

/// module -> the modules it imports.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rs_files(&root, &root, &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in &files {
        // Binaries, test support and this check are not part of the layering.
        if matches!(
            rel.as_str(),
            "main.rs" | "lib.rs" | "testing.rs" | "layers.rs"
        ) {
            continue;
        }
        let from = module_of(rel);
        let deps = g.entry(from.clone()).or_default();
        for path in crate_paths(without_tests(text)) {
            if let Some(to) = module_of_path(&path)
                && to != from
                && !to.is_empty()
            {
                deps.insert(to);
            }
        }
    }
    g
}

/// Strongly connected components with more than one module: the import cycles.
fn cycles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Reachability is small enough to compute directly: two modules are in one cycle when
    // each reaches the other.
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_owned()];
        while let Some(m) = todo.pop() {
            for d in g.get(&m).into_iter().flatten() {
                if seen.insert(d.clone()) {
                    todo.push(d.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> = g.keys().map(|m| (m, reach(m))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for m in g.keys() {
        if done.contains(m) {
            continue;
        }
        let comp: Vec<String> = g
            .keys()
            .filter(|o| *o == m || (reaches[m].contains(*o) && reaches[*o].contains(m.as_str())))
            .cloned()
            .collect();
        if comp.len() > 1 {
            out.push(comp.clone());
        }
        done.extend(comp);
    }
    out
}

#[test]
fn no_import_cycles() {
    let g = graph();
    assert!(g.contains_key("core::grants") && g.contains_key("store"));
    let found = cycles(&g);
    let described: Vec<String> = found
        .iter()
        .map(|c| {
            c.iter()
                .map(|m| {
                    format!(
                        "{m} -> {:?}",
                        g[m].intersection(&c.iter().cloned().collect())
                            .collect::<Vec<_>>()
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .collect();
    assert!(found.is_empty(), "import cycles: {described:#?}");
}

#[test]
fn lower_layers_do_not_import_higher_ones() {
    let g = graph();
    // What each layer must never import: the protocol knows no HTTP state or start-up, the
    // store knows no protocol or config, the vocabulary knows nothing above it.
    let rules: &[(&str, &[&str])] = &[
        ("core", &["http", "state", "app", "cli", "server"]),
        // The admin service is shared by the CLI and a future HTTP admin API: it knows
        // neither, nor the server's state.
        ("admin", &["cli", "http", "state"]),
        ("store", &["core", "http", "state", "app", "cli", "config"]),
        (
            "model",
            &["core", "store", "http", "state", "app", "config"],
        ),
        (
            "oauth",
            &["core", "store", "http", "state", "app", "model", "config"],
        ),
        (
            "crypto",
            &["core", "store", "http", "state", "app", "model", "config"],
        ),
    ];
    let mut broken = Vec::new();
    for (from, deps) in &g {
        let layer = from.split("::").next().unwrap_or(from);
        for (l, forbidden) in rules {
            if layer != *l {
                continue;
            }
            for d in deps {
                let top = d.split("::").next().unwrap_or(d);
                if forbidden.contains(&top) {
                    broken.push(format!("{from} imports {d}"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "layering broken: {broken:#?}");
}

#[test]
fn paths_are_read_at_module_granularity() {
    assert_eq!(module_of("core/grants/password.rs"), "core::grants");
    assert_eq!(module_of("core/mod.rs"), "core");
    assert_eq!(module_of("store/users.rs"), "store");
    assert_eq!(module_of_path("core::Core").as_deref(), Some("core"));
    assert_eq!(
        module_of_path("core::tokens::TokenIssuer").as_deref(),
        Some("core::tokens")
    );
    assert_eq!(
        crate_paths("use crate::{a::X, b::y::Z};\nlet q = crate::c::f();"),
        vec!["a::X", "b::y::Z", "c::f"]
    );
}

//! The module structure holds its rules: no two files import each other,
//! directly or in a loop; the store does not know routing; the contract's
//! bindings stay inside `plugins/`; `customer` and `message` stand on
//! nothing above them. Read from the sources' `crate::` and `super::` paths.

use crate::support::repo_root;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `root`, by module path (`["store", "sqlite", "queue"]`).
fn modules(root: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(root).unwrap();
            let mut module: Vec<String> = relative
                .with_extension("")
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            if relative == Path::new("main.rs") {
                continue;
            }
            found.insert(module, path);
        }
    }
    found
}

/// The code of a file without comments and string contents, so a path
/// named in prose is not an import.
fn code(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::a::b` and `super::a` path in `text`, `{...}` groups expanded.
fn paths(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    for anchor in ["crate", "super"] {
        let needle = format!("{anchor}::");
        let mut from = 0;
        while let Some(at) = text[from..].find(&needle) {
            let start = from + at;
            from = start + needle.len();
            let joined =
                start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
            if !joined {
                for path in expand(&text[from..]) {
                    out.push((anchor.to_owned(), path));
                }
            }
        }
    }
    out
}

/// The paths a use-tree starting at `rest` names: `a::b::C`, or
/// `a::{b, c::{D, E}}` as `a::b`, `a::c::D`, `a::c::E`.
fn expand(rest: &str) -> Vec<Vec<String>> {
    let mut segments = Vec::new();
    let mut rest = rest;
    loop {
        let ident: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() {
            break;
        }
        rest = &rest[ident.len()..];
        segments.push(ident);
        match rest.strip_prefix("::") {
            Some(next) => rest = next,
            None => return vec![segments],
        }
    }
    let Some(group) = rest.strip_prefix('{') else {
        return if segments.is_empty() {
            Vec::new()
        } else {
            vec![segments]
        };
    };
    let mut items = Vec::new();
    let (mut depth, mut item_start) = (0usize, 0usize);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[item_start..i]);
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[item_start..i]);
                item_start = i + 1;
            }
            _ => {}
        }
    }
    items
        .into_iter()
        .flat_map(|item| expand(item.trim()))
        .map(|tail| segments.iter().cloned().chain(tail).collect())
        .collect()
}

/// The file a path lands in: the longest module prefix that is a file.
fn resolve(
    files: &BTreeMap<Vec<String>, PathBuf>,
    from: &[String],
    (anchor, segments): &(String, Vec<String>),
) -> Option<Vec<String>> {
    // `super` of module `a::b` (file `a/b.rs` or `a/b/mod.rs`) is `a`.
    let mut full: Vec<String> = match anchor.as_str() {
        "crate" => Vec::new(),
        _ => from[..from.len().saturating_sub(1)].to_vec(),
    };
    full.extend(segments.iter().cloned());
    (0..=full.len())
        .rev()
        .map(|n| full[..n].to_vec())
        .find(|prefix| files.contains_key(prefix))
}

/// Imports between files; a file's use of its own ancestors' `mod.rs`
/// (the module's front door and re-exports) is not an edge.
fn graph(root: &Path) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let files = modules(root);
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, path) in &files {
        let text = code(&std::fs::read_to_string(path).unwrap());
        for found in paths(&text) {
            let Some(target) = resolve(&files, module, &found) else {
                continue;
            };
            let ancestor = module.starts_with(&target);
            if target != *module && !ancestor {
                edges.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    edges
}

/// A loop of files, if there is one.
fn cycle(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Option<Vec<Vec<String>>> {
    fn visit(
        node: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        path: &mut Vec<Vec<String>>,
        done: &mut BTreeSet<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            return Some(path[at..].to_vec());
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, edges, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut Vec::new(), &mut done))
}

fn names(modules: &[Vec<String>]) -> String {
    modules
        .iter()
        .map(|m| m.join("::"))
        .collect::<Vec<_>>()
        .join(" -> ")
}

#[test]
fn no_file_imports_itself_through_others() {
    for root in ["gateway/src", "plugin-sdk/src"] {
        let edges = graph(&repo_root().join(root));
        assert!(
            !edges.is_empty(),
            "{root}: the reader found no imports at all"
        );
        if let Some(found) = cycle(&edges) {
            panic!("{root}: import circle {}", names(&found));
        }
    }
}

#[test]
fn layers_point_one_way() {
    let edges = graph(&repo_root().join("gateway/src"));
    let imports = |from: &str, to: &str| {
        edges.iter().any(|(module, targets)| {
            module.first().is_some_and(|m| m == from)
                && targets.iter().any(|t| t.first().is_some_and(|f| f == to))
        })
    };
    assert!(!imports("store", "routing"), "the store imports routing");
    assert!(!imports("store", "api"), "the store imports the API");
    for low in ["customer", "message", "origin"] {
        for high in ["store", "routing", "api", "dispatch", "plugins", "webhooks"] {
            assert!(!imports(low, high), "{low} imports {high}");
        }
    }
    // The contract's bindings never leave plugins/.
    for (module, targets) in &edges {
        if module.first().is_some_and(|m| m == "plugins") {
            continue;
        }
        assert!(
            !targets
                .iter()
                .any(|t| t.starts_with(&["plugins".into(), "contract".into()])),
            "{} reaches into plugins::contract",
            module.join("::")
        );
    }
}

#[test]
fn the_reader_sees_a_known_circle() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lib.rs"), "mod a;\nmod b;\n").unwrap();
    std::fs::write(dir.path().join("a.rs"), "use crate::b::B;\npub struct A;\n").unwrap();
    std::fs::write(
        dir.path().join("b.rs"),
        "use super::{a::{A}, c};\npub struct B;\n",
    )
    .unwrap();
    let edges = graph(dir.path());
    assert_eq!(names(&cycle(&edges).unwrap()), "a -> b");
}

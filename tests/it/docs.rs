//! The documentation explains the project from its own files: every
//! relative link in the README, CONTRIBUTING and `docs/` resolves inside
//! the repository, every Markdown file they name is one of ours, and the
//! README stays a front door.

use crate::support::repo_root;
use std::path::{Path, PathBuf};

fn markdown_files() -> Vec<PathBuf> {
    let root = repo_root();
    let mut files = vec![root.join("README.md"), root.join("CONTRIBUTING.md")];
    let mut folders = vec![root.join("docs")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("docs/") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files
}

/// The targets of `[text](target)` links in `text`.
fn links(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .map(str::to_owned)
        .collect()
}

/// The names of `.md` files a text mentions (`CONTRIBUTING.md`, `docs/api.md`), by file name.
fn markdown_names(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || "._-/".contains(c)))
        .filter(|word| word.ends_with(".md") && word.len() > 3)
        .filter_map(|word| word.rsplit('/').next())
        .map(str::to_owned)
        .collect()
}

/// The file names of every Markdown file in the repository (build output aside).
fn repository_markdown() -> std::collections::HashSet<String> {
    let mut names = std::collections::HashSet::new();
    let mut folders = vec![repo_root()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" {
                    folders.push(path);
                }
            } else if name.ends_with(".md") {
                names.insert(name);
            }
        }
    }
    names
}

#[test]
fn every_link_in_the_docs_resolves_inside_the_repository() {
    let root = repo_root();
    let ours = repository_markdown();
    let mut broken = Vec::new();
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for target in links(&text) {
            if target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with('#')
            {
                continue;
            }
            let path = target.split('#').next().unwrap_or_default();
            let resolved = file.parent().unwrap_or(Path::new(".")).join(path);
            let inside = resolved
                .canonicalize()
                .is_ok_and(|p| p.starts_with(root.canonicalize().unwrap()));
            if !inside {
                broken.push(format!("{}: {target}", file.display()));
            }
        }
        // Every Markdown file a page names, linked or not, is one of ours.
        for named in markdown_names(&text) {
            if !ours.contains(&named) {
                broken.push(format!(
                    "{}: names {named}, not in the repository",
                    file.display()
                ));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_readme_is_a_front_door() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= 300,
        "README.md has {lines} lines; the rest belongs in docs/"
    );
    for doc in [
        "architecture",
        "api",
        "configuration",
        "operations",
        "connectors",
        "benchmarks",
    ] {
        assert!(
            readme.contains(&format!("docs/{doc}.md")),
            "README does not link docs/{doc}.md"
        );
    }
}

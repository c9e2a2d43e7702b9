//! The shape of the source tree, checked: modules import only from the layers below
//! them on the mail's path (the table in `CONTRIBUTING.md`), and no two files import
//! each other, directly or around a circle. A failure names the offending line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Which top-level modules each may import from. The vocabulary (`wire`, `mail`) and
/// the utilities (`clock`, `fsync`) import nothing; the stages of the mail's path
/// (`smtp` → `plugin` → `queue` → `delivery`) use the ones they hand mail to, never
/// the ones before them; `control` and `cli` put it all together.
const LAYERS: &[(&str, &[&str])] = &[
    ("wire", &[]),
    ("mail", &[]),
    ("clock", &[]),
    ("fsync", &[]),
    ("config", &["mail", "wire"]),
    ("dns", &["config"]),
    ("mail_auth", &["mail", "wire", "config", "dns"]),
    ("kv", &["config", "clock", "fsync"]),
    ("queue", &["mail", "wire", "config", "clock", "fsync"]),
    ("client", &["mail", "wire", "config", "dns"]),
    ("recipients", &["mail", "wire", "config", "clock", "dns", "kv", "client"]),
    ("plugin", &["mail", "wire", "config", "clock", "fsync", "dns", "kv", "queue", "mail_auth"]),
    ("smtp", &["mail", "wire", "config", "clock", "fsync", "dns", "kv", "plugin", "queue", "recipients", "mail_auth"]),
    ("delivery", &["mail", "wire", "config", "clock", "fsync", "dns", "queue", "client"]),
    ("control", &["*"]),
    ("cli", &["*"]),
];

/// A file of the crate and the module path it defines (`src/smtp/session/mod.rs` is
/// `smtp::session`).
struct SourceFile {
    path: PathBuf,
    module: Vec<String>,
    /// Production code only: a file's `#[cfg(test)]` module at its end is left out.
    text: String,
}

/// One import of one file: the line, and the path it names, from the crate root.
struct Import {
    line: usize,
    source: String,
    path: Vec<String>,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn source_files() -> Vec<SourceFile> {
    let mut files = Vec::new();
    let mut dirs = vec![src_dir()];
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
            let relative = path.strip_prefix(src_dir()).unwrap().with_extension("");
            let mut module: Vec<String> = relative.iter().map(|c| c.to_string_lossy().into_owned()).collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib" | "main")) {
                module.pop();
            }
            if module.last().is_some_and(|m| m == "tests") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let text = match text.find("\n#[cfg(test)]\nmod tests {") {
                Some(at) => text[..at].to_string(),
                None => text,
            };
            files.push(SourceFile { path, module, text });
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

/// Drops comments (line comments and doc comments), keeping line numbers.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(n, line)| {
        let code = match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        };
        (n + 1, code)
    })
}

/// Every path a file names: its `use` trees flattened, and inline `crate::`/`super::`
/// paths. `pub use` re-exports are not imports of the re-exporting file.
fn imports(file: &SourceFile) -> Vec<Import> {
    let mut found = Vec::new();
    let mut statement = String::new();
    let mut start = 0;
    let mut in_reexport = false;
    for (number, code) in code_lines(&file.text) {
        let trimmed = code.trim();
        if in_reexport || (statement.is_empty() && trimmed.starts_with("pub use ")) {
            in_reexport = !trimmed.ends_with(';');
            continue;
        }
        if statement.is_empty() {
            let is_use = trimmed.starts_with("use ") || trimmed.starts_with("pub(crate) use ");
            if !is_use {
                for path in inline_paths(code) {
                    push_import(&mut found, file, number, code, &path);
                }
                continue;
            }
            start = number;
        }
        statement.push_str(trimmed);
        statement.push(' ');
        if trimmed.ends_with(';') {
            let tree =
                statement.trim().trim_start_matches("pub(crate) ").trim_start_matches("use ").trim_end_matches(';');
            for path in flatten(tree) {
                push_import(&mut found, file, start, statement.trim(), &path);
            }
            statement.clear();
        }
    }
    found
}

fn push_import(found: &mut Vec<Import>, file: &SourceFile, line: usize, source: &str, path: &str) {
    if let Some(path) = absolute(&file.module, path) {
        found.push(Import { line, source: source.trim().to_string(), path });
    }
}

/// `crate::a::b` and `super::c` inside code.
fn inline_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for prefix in ["crate::", "super::"] {
        let mut rest = code;
        while let Some(at) = rest.find(prefix) {
            let before = rest[..at].chars().last();
            let tail = &rest[at..];
            let len = tail.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(tail.len());
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                paths.push(tail[..len].trim_end_matches(':').to_string());
            }
            rest = &tail[len.max(1)..];
        }
    }
    paths
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e`.
fn flatten(tree: &str) -> Vec<String> {
    let tree: String = tree.split_whitespace().collect();
    let Some(open) = tree.find('{') else {
        return vec![tree.split(" as ").next().unwrap_or(&tree).to_string()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.len() - 1];
    let mut parts = Vec::new();
    let (mut depth, mut from) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[from..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| {
            flatten(p).into_iter().map(move |q| {
                if q == "self" { prefix.trim_end_matches("::").to_string() } else { format!("{prefix}{q}") }
            })
        })
        .collect()
}

/// The path from the crate root, or `None` for one outside the crate (std, deps).
fn absolute(module: &[String], path: &str) -> Option<Vec<String>> {
    let mut segments = path.split("::").filter(|s| !s.is_empty()).map(|s| s.split(" as ").next().unwrap_or(s));
    let first = segments.next()?;
    let mut base: Vec<String> = match first {
        "crate" => Vec::new(),
        "super" => module[..module.len().checked_sub(1)?].to_vec(),
        "self" => module.to_vec(),
        _ => return None,
    };
    for segment in segments {
        match segment {
            "super" => {
                base.pop()?;
            }
            "self" => {}
            other => base.push(other.to_string()),
        }
    }
    Some(base)
}

/// The file that defines the item a path names, following `pub use` re-exports.
fn defining_file<'a>(files: &'a [SourceFile], path: &[String], depth: usize) -> Option<&'a SourceFile> {
    let by_module = |m: &[String]| files.iter().find(|f| f.module == m);
    let mut module_len = 0;
    while module_len < path.len() && by_module(&path[..=module_len]).is_some() {
        module_len += 1;
    }
    let file = by_module(&path[..module_len])?;
    let Some(item) = path.get(module_len) else { return Some(file) };
    if depth < 8
        && let Some(target) = reexport(file, item)
    {
        return defining_file(files, &target, depth + 1).or(Some(file));
    }
    Some(file)
}

/// Where `file`'s `pub use` of `item` points, if it re-exports it.
fn reexport(file: &SourceFile, item: &str) -> Option<Vec<String>> {
    let mut statement = String::new();
    for (_, code) in code_lines(&file.text) {
        let trimmed = code.trim();
        if statement.is_empty() && !trimmed.starts_with("pub use ") {
            continue;
        }
        statement.push_str(trimmed);
        if !trimmed.ends_with(';') {
            continue;
        }
        let tree = statement.trim_start_matches("pub use ").trim_end_matches(';').to_string();
        statement.clear();
        for path in flatten(&tree) {
            if path.rsplit("::").next() == Some(item) {
                let path = if path.starts_with("crate::") || path.starts_with("super::") || path.starts_with("self::") {
                    path
                } else {
                    format!("self::{path}")
                };
                return absolute(&file.module, &path);
            }
        }
    }
    None
}

struct Edge<'a> {
    to: &'a Path,
    import: Import,
}

fn edges(files: &[SourceFile]) -> BTreeMap<&Path, Vec<Edge<'_>>> {
    let mut graph: BTreeMap<&Path, Vec<Edge<'_>>> = BTreeMap::new();
    for file in files {
        let list = graph.entry(file.path.as_path()).or_default();
        for import in imports(file) {
            if let Some(target) = defining_file(files, &import.path, 0)
                && target.path != file.path
            {
                list.push(Edge { to: &target.path, import });
            }
        }
    }
    graph
}

fn relative(path: &Path) -> String {
    path.strip_prefix(src_dir().parent().unwrap()).unwrap_or(path).display().to_string()
}

#[test]
fn modules_import_only_from_the_layers_below_them() {
    let files = source_files();
    let mut problems = Vec::new();
    for file in &files {
        let Some(top) = file.module.first() else { continue };
        let Some((_, allowed)) = LAYERS.iter().find(|(name, _)| name == top) else {
            problems.push(format!("{}: module `{top}` is not in the LAYERS table", relative(&file.path)));
            continue;
        };
        if allowed.contains(&"*") {
            continue;
        }
        for import in imports(file) {
            let Some(target) = import.path.first() else { continue };
            if target != top && !allowed.contains(&target.as_str()) && LAYERS.iter().any(|(n, _)| n == target) {
                problems.push(format!(
                    "{}:{}: `{top}` may not import from `{target}`: {}",
                    relative(&file.path),
                    import.line,
                    import.source
                ));
            }
        }
    }
    problems.dedup();
    assert!(problems.is_empty(), "imports against the layering:\n{}", problems.join("\n"));
}

#[test]
fn no_two_files_import_each_other() {
    let files = source_files();
    let graph = edges(&files);
    let mut cycles = BTreeSet::new();
    for start in graph.keys() {
        // Depth-first from each file, looking for a way back to it.
        let mut stack: Vec<(&Path, Vec<&Edge<'_>>)> = vec![(start, Vec::new())];
        let mut seen = BTreeSet::new();
        while let Some((at, trail)) = stack.pop() {
            for edge in graph.get(at).into_iter().flatten() {
                let mut next = trail.clone();
                next.push(edge);
                if edge.to == *start {
                    let text = next
                        .iter()
                        .map(|e| format!("  → {} (line {}: {})", relative(e.to), e.import.line, e.import.source))
                        .collect::<Vec<_>>()
                        .join("\n");
                    let members: BTreeSet<&Path> = next.iter().map(|e| e.to).collect();
                    cycles.insert((members, format!("{}\n{text}", relative(start))));
                } else if seen.insert(edge.to) {
                    stack.push((edge.to, next));
                }
            }
        }
    }
    let mut reported = BTreeSet::new();
    let list: Vec<String> =
        cycles.into_iter().filter(|(members, _)| reported.insert(members.clone())).map(|(_, text)| text).collect();
    assert!(list.is_empty(), "import circles between files:\n{}", list.join("\n\n"));
}

#[test]
fn the_checker_sees_imports() {
    let files = source_files();
    let session = files.iter().find(|f| f.path.ends_with("smtp/session/envelope.rs")).expect("a known file");
    let found = imports(session);
    assert!(found.iter().any(|i| i.path.starts_with(&["mail".to_string()])), "crate:: imports are found");
    assert!(found.iter().any(|i| i.path.starts_with(&["smtp".to_string()])), "super:: imports are found");
    assert_eq!(flatten("a::{b, c::{d, self}}"), ["a::b", "a::c::d", "a::c"]);
}

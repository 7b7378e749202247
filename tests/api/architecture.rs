//! The dependency rule of `ARCHITECTURE.md`, checked on the source: the
//! domain layer (everything but the GraphQL and HTTP layers, the resolvers,
//! the command line and the demo seeder) never imports those outer layers,
//! its modules import each other one way only, and only domain code talks
//! to the database through sea-orm.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

/// Top-level modules that form the outer layers.
const OUTER: [&str; 6] = ["graphql", "http", "startup", "cli", "main", "seed"];

/// One source file: its path below `src/`, its top-level module, and its
/// text without the unit tests.
struct Source {
    path: String,
    module: String,
    text: String,
}

impl Source {
    /// Resolvers and the outer modules: the GraphQL and HTTP side.
    fn is_outer(&self) -> bool {
        OUTER.contains(&self.module.as_str())
            || self.module == "lib"
            || self
                .path
                .split('/')
                .any(|part| part.starts_with("resolvers"))
    }
}

fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect(&root, &mut files);
    files
        .into_iter()
        .map(|file| {
            let path = file
                .strip_prefix(&root)
                .expect("below src")
                .to_string_lossy()
                .replace('\\', "/");
            let module = path
                .split('/')
                .next()
                .expect("a first part")
                .trim_end_matches(".rs")
                .to_owned();
            let text = fs::read_to_string(&file).expect("readable source");
            let text = match text.find("#[cfg(test)]") {
                Some(tests) => text[..tests].to_owned(),
                None => text,
            };
            Source { path, module, text }
        })
        .collect()
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

fn identifier(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The paths a file names below `crate::`, each as its list of segments up
/// to the first brace: `crate::ticket::query::by_id` gives
/// `["ticket", "query", "by_id"]`, and a group `crate::{a::b, c}` gives
/// `["a", "b"]` and `["c"]`.
fn crate_paths(text: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' | ',' if depth == 1 => {
                        paths.push(segments(&group[start..i]));
                        start = i + 1;
                        if c == '}' {
                            break;
                        }
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
        } else {
            paths.push(segments(rest));
        }
    }
    paths.retain(|path| !path.is_empty());
    paths
}

fn segments(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    loop {
        let name = identifier(rest);
        if name.is_empty() {
            break;
        }
        out.push(name.to_owned());
        match rest[name.len()..].strip_prefix("::") {
            Some(next) if !next.starts_with('{') => rest = next,
            Some(next) => {
                // A nested group: its first-level names count too.
                for inner in next[1..].split(',') {
                    let inner = identifier(inner.trim_start());
                    if inner == "resolvers" {
                        out.push(inner.to_owned());
                    }
                }
                break;
            }
            None => break,
        }
    }
    out
}

/// Top-level module → the top-level modules its domain files import.
fn domain_graph(sources: &[Source]) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<String> = sources.iter().map(|s| s.module.clone()).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for source in sources.iter().filter(|s| !s.is_outer()) {
        let entry = graph.entry(source.module.clone()).or_default();
        for path in crate_paths(&source.text) {
            if path[0] != source.module && modules.contains(&path[0]) {
                entry.insert(path[0].clone());
            }
        }
    }
    graph
}

#[test]
fn domain_code_never_imports_the_graphql_or_http_layers() {
    let mut offences = Vec::new();
    for source in sources().iter().filter(|s| !s.is_outer()) {
        for path in crate_paths(&source.text) {
            if OUTER.contains(&path[0].as_str()) || path.iter().any(|p| p == "resolvers") {
                offences.push(format!(
                    "{} imports crate::{}",
                    source.path,
                    path.join("::")
                ));
            }
        }
        if source.text.contains("async_graphql::Context") {
            offences.push(format!("{} reads a GraphQL context", source.path));
        }
    }
    assert!(offences.is_empty(), "{offences:#?}");
}

#[test]
fn domain_modules_import_each_other_one_way_only() {
    let graph = domain_graph(&sources());
    // Depth-first search for a cycle, reporting the first one found.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, &graph, &mut Vec::new(), &mut done) {
            panic!("a dependency cycle: {}", cycle.join(" -> "));
        }
    }
    // The check sees the imports it should: tickets are built on queues,
    // the event log and access.
    let ticket = &graph["ticket"];
    for below in ["access", "events", "queue", "vocabulary"] {
        assert!(ticket.contains(below), "ticket -> {below} in {graph:#?}");
    }
}

#[test]
fn only_domain_code_speaks_sea_orm() {
    let offences: Vec<String> = sources()
        .iter()
        .filter(|s| {
            s.is_outer() && !["startup", "cli", "main", "seed"].contains(&s.module.as_str())
        })
        .filter(|s| s.text.contains("sea_orm"))
        .map(|s| s.path.clone())
        .collect();
    assert!(offences.is_empty(), "these import sea_orm: {offences:?}");
}

#[test]
fn the_import_reader_finds_grouped_and_nested_paths() {
    let text = "use crate::{\n    access::Scope,\n    ticket::{query, resolvers::Ticket},\n    vocabulary::{Level, Status},\n};\nfn f() { crate::queue::service::get(); }";
    let heads: Vec<String> = crate_paths(text)
        .into_iter()
        .map(|p| p.join("::"))
        .collect();
    assert_eq!(
        heads,
        [
            "access::Scope",
            "ticket::resolvers",
            "vocabulary",
            "queue::service::get"
        ]
    );
}

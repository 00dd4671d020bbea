//! Tidy checks over `src/`, in the manner of rust-analyzer's `tidy.rs`: rules of the architecture
//! that the compiler does not enforce, read from the source text.
//!
//! - No import circle between the top-level modules of `src/` (`crate::x` paths, `use
//!   crate::{x, y}` groups and `super::` chains that reach the crate root): data flows one way.
//! - Every module file starts with `//!` docs.
//! - Only the `store` module names `rusqlite` and `postgres`; only `time` names `chrono`.
//! - Only `unsafe` in the raw inserts (`store/sqlite/raw.rs`) and `records_of`'s virtual table
//!   (`store/sqlite/records_of.rs`); a record's lists read only through `store::lists`.
//!
//! Comments, strings and character literals are blanked before reading, so a path in a doc link
//! or a message is not an import.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The source files under `root` (`src/`), as (path relative to `root`, text), sorted.
fn sources(root: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path.strip_prefix(root).unwrap().to_owned(), text));
            }
        }
    }
    out.sort();
    out
}

/// The top-level module a file belongs to (`fetch` for `fetch/imap.rs`), and its depth in the
/// module tree (1 for `fetch.rs` and `fetch/mod.rs`, 2 for `fetch/imap.rs`); `None` for the
/// crate root (`lib.rs`, `main.rs`).
fn module_of(relative: &Path) -> Option<(String, usize)> {
    let parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let first = parts[0].trim_end_matches(".rs").to_owned();
    if parts.len() == 1 && (first == "lib" || first == "main") {
        return None;
    }
    let last = parts.last().unwrap();
    let depth = if last == "mod.rs" {
        parts.len() - 1
    } else {
        parts.len()
    };
    Some((first, depth))
}

/// `text` with comments, string literals and character literals replaced by spaces (newlines
/// kept, so line numbers stay right).
fn code_only(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, chars: &[char]| {
        for c in chars {
            out.push(if *c == '\n' { '\n' } else { ' ' });
        }
    };
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        let ident_before = i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_');
        if c == '/' && next == Some('/') {
            let end = (i..b.len()).find(|&j| b[j] == '\n').unwrap_or(b.len());
            blank(&mut out, &b[i..end]);
            i = end;
        } else if c == '/' && next == Some('*') {
            let (mut depth, mut j) = (1, i + 2);
            while j < b.len() && depth > 0 {
                if b[j] == '/' && b.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if b[j] == '*' && b.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            blank(&mut out, &b[i..j]);
            i = j;
        } else if !ident_before
            && (c == 'r' || (c == 'b' && next == Some('r')))
            && matches!(b.get(i + usize::from(c == 'b') + 1), Some('"' | '#'))
        {
            // A raw string: r"…", r#"…"#, br"…".
            let mut j = i + usize::from(c == 'b') + 1;
            let hashes = b[j..].iter().take_while(|&&h| h == '#').count();
            j += hashes;
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"'
                    && b[j + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|&&h| h == '#')
                        .count()
                        == hashes
                {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            blank(&mut out, &b[i..j.min(b.len())]);
            i = j.min(b.len());
        } else if c == '"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != '"' {
                j += if b[j] == '\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(b.len());
            blank(&mut out, &b[i..end]);
            i = end;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{1F600}'), or the tick of a lifetime or label.
            let end = if next == Some('\\') {
                (i + 2..b.len()).find(|&j| b[j] == '\'').map(|j| j + 1)
            } else if b.get(i + 2) == Some(&'\'') {
                Some(i + 3)
            } else {
                None
            };
            match end {
                Some(end) => {
                    blank(&mut out, &b[i..end]);
                    i = end;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The identifiers a path names right after `crate::` (or a `super::` chain) at byte `at` of
/// `code`: one (`crate::fetch::…`), or the first of each item of a group (`crate::{fetch, judge::x}`).
fn first_segments(code: &str, at: usize) -> Vec<String> {
    let rest = code[at..].trim_start();
    let ident = |s: &str| -> String { s.chars().take_while(|&c| is_ident(c)).collect() };
    if let Some(group) = rest.strip_prefix('{') {
        let mut names = Vec::new();
        let mut depth = 0;
        let mut expect_name = true;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => expect_name = true,
                c if expect_name && depth == 0 && is_ident(c) => {
                    names.push(ident(&group[i..]));
                    expect_name = false;
                }
                _ => {}
            }
        }
        names
    } else {
        vec![ident(rest)]
    }
}

/// `from → to` between top-level modules, each with the places (`file:line`) that make it.
type Graph = BTreeMap<(String, String), Vec<String>>;

/// The import graph of the crate whose source is under `root`.
fn import_graph(root: &Path) -> Graph {
    let files = sources(root);
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|(p, _)| module_of(p).map(|(m, _)| m))
        .collect();
    let mut graph = Graph::new();
    for (path, text) in &files {
        let Some((from, depth)) = module_of(path) else {
            continue;
        };
        let code = code_only(text);
        let line_of = |at: usize| code[..at].matches('\n').count() + 1;
        let mut targets = Vec::new();
        for (at, _) in code.match_indices("crate::") {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| is_ident(c) || c == '$') {
                continue;
            }
            for name in first_segments(&code, at + "crate::".len()) {
                targets.push((name, at));
            }
        }
        // `super::super::x` from a depth-2 file reaches the root, then names `x`.
        for (at, _) in code.match_indices("super::") {
            if code[..at].chars().next_back().is_some_and(is_ident)
                || code[..at].ends_with("super::")
            {
                continue;
            }
            let mut end = at;
            let mut climbs = 0;
            while code[end..].starts_with("super::") {
                end += "super::".len();
                climbs += 1;
            }
            if climbs >= depth {
                for name in first_segments(&code, end) {
                    targets.push((name, at));
                }
            }
        }
        for (to, at) in targets {
            if to != from && modules.contains(&to) {
                graph.entry((from.clone(), to)).or_default().push(format!(
                    "src/{}:{}",
                    path.display(),
                    line_of(at)
                ));
            }
        }
    }
    graph
}

/// Every import circle, one per strongly connected set of modules, each written as a path through
/// the set and back with the place of each step: `config → notify (src/config.rs:70) → config
/// (src/notify/mod.rs:33)`.
fn circles(graph: &Graph) -> Vec<String> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in graph.keys() {
        next.entry(from).or_default().push(to);
        next.entry(to).or_default();
    }
    let reaches = |from: &str| -> BTreeSet<&str> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from];
        while let Some(m) = todo.pop() {
            for &n in &next[m] {
                if seen.insert(n) {
                    todo.push(n);
                }
            }
        }
        seen
    };
    let reach: BTreeMap<&str, BTreeSet<&str>> = next.keys().map(|&m| (m, reaches(m))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for &m in next.keys() {
        if done.contains(m) || !reach[m].contains(m) {
            continue;
        }
        // The modules on a circle with `m`.
        let set: BTreeSet<&str> = reach[m]
            .iter()
            .copied()
            .filter(|n| reach[n].contains(m))
            .collect();
        done.extend(set.iter().copied());
        // The shortest way from `m` back to `m` (breadth first, within the set).
        let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([m]);
        'search: while let Some(a) = queue.pop_front() {
            for &b in &next[a] {
                if !set.contains(b) || came_from.contains_key(b) {
                    continue;
                }
                came_from.insert(b, a);
                if b == m {
                    break 'search;
                }
                queue.push_back(b);
            }
        }
        let mut path = vec![m];
        let mut at = came_from[m];
        while at != m {
            path.push(at);
            at = came_from[at];
        }
        path.push(m);
        path.reverse();
        let mut text = m.to_owned();
        for step in path.windows(2) {
            let places = &graph[&(step[0].to_owned(), step[1].to_owned())];
            text.push_str(&format!(" → {} ({})", step[1], places[0]));
        }
        let others: Vec<&str> = set.iter().copied().filter(|n| !path.contains(n)).collect();
        if !others.is_empty() {
            text.push_str(&format!("; also in the circle: {}", others.join(", ")));
        }
        out.push(text);
    }
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_import_circle_between_top_level_modules() {
    let graph = import_graph(&src());
    assert!(
        graph.len() > 20,
        "the import graph looks empty, so the reader is broken: {graph:?}"
    );
    let found = circles(&graph);
    assert!(
        found.is_empty(),
        "import circles between top-level modules of src/ (data flows one way: inputs → unpack → \
         parse → store → analyse → outputs; move the shared item to the lower module or a leaf \
         module):\n  {}",
        found.join("\n  ")
    );
}

/// The check itself finds a circle, and names it: a small crate with one is written and read.
#[test]
fn a_deliberate_circle_is_found_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "lib.rs",
        "//! Root.\npub mod a;\npub mod b;\npub mod c;\npub mod d;\n",
    );
    write("a.rs", "//! A.\nuse crate::{d, b::Thing};\n");
    write(
        "b/mod.rs",
        "//! B.\n/// See [`crate::a`].\npub struct Thing(&'static str);\nconst X: &str = \"crate::a\";\n",
    );
    write(
        "b/inner.rs",
        "//! B, inside.\nfn f() -> char { let _ = 'x'; super::super::c::g() }\n",
    );
    write("c.rs", "//! C.\npub fn g() -> char { crate::a::h() }\n");
    write("d.rs", "//! D.\n");
    let graph = import_graph(dir.path());
    let edges: Vec<(&str, &str)> = graph
        .keys()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(edges, [("a", "b"), ("a", "d"), ("b", "c"), ("c", "a")]);
    assert_eq!(
        circles(&graph),
        ["a → b (src/a.rs:2) → c (src/b/inner.rs:2) → a (src/c.rs:2)"]
    );
    // Without the step back, no circle.
    write("c.rs", "//! C.\npub fn g() -> char { 'c' }\n");
    assert!(circles(&import_graph(dir.path())).is_empty());
}

#[test]
fn every_module_file_starts_with_docs() {
    let missing: Vec<String> = sources(&src())
        .into_iter()
        .filter(|(_, text)| !text.starts_with("//!"))
        .map(|(path, _)| format!("src/{}", path.display()))
        .collect();
    assert!(
        missing.is_empty(),
        "module files without `//!` docs on their first line: {missing:?}"
    );
}

/// Only `store` names the database drivers; only `time` names the calendar crate.
#[test]
fn crates_are_named_only_by_their_owner() {
    for (krate, owner, allowed) in [
        ("rusqlite", "store", &["store.rs", "store/"][..]),
        ("postgres", "store", &["store.rs", "store/"]),
        ("chrono", "time", &["time.rs"]),
    ] {
        let strays: Vec<String> = sources(&src())
            .into_iter()
            .filter(|(path, _)| {
                let path = path.to_string_lossy();
                !allowed
                    .iter()
                    .any(|a| path == *a || (a.ends_with('/') && path.starts_with(a)))
            })
            .filter(|(_, text)| {
                let code = code_only(text);
                code.match_indices(krate).any(|(at, _)| {
                    !code[..at].chars().next_back().is_some_and(is_ident)
                        && !code[at + krate.len()..]
                            .chars()
                            .next()
                            .is_some_and(is_ident)
                })
            })
            .map(|(path, _)| format!("src/{}", path.display()))
            .collect();
        assert!(
            strays.is_empty(),
            "{krate} is named outside `{owner}`, which owns it: {strays:?}"
        );
    }
}

/// `unsafe` is denied crate-wide (Cargo.toml) and allowed in two modules only: the inserts bound
/// in place through SQLite's C API (`src/store/sqlite/raw.rs`), where every block says what it
/// relies on, and `records_of`'s virtual table (`src/store/sqlite/records_of.rs`), which
/// implements rusqlite's unsafe traits and has no unsafe block.
#[test]
fn unsafe_code_lives_only_in_the_sqlite_raw_insert_and_virtual_table() {
    let allowed = Path::new("store/sqlite/raw.rs");
    let vtab = Path::new("store/sqlite/records_of.rs");
    let mut found = Vec::new();
    for (path, text) in sources(&src()) {
        let code = code_only(&text);
        let uses = code.match_indices("unsafe").any(|(at, _)| {
            !code[..at].chars().next_back().is_some_and(is_ident)
                && !code[at + 6..].chars().next().is_some_and(is_ident)
        });
        if uses {
            found.push(path.clone());
        }
        if path == allowed {
            for (at, _) in code.match_indices("unsafe {") {
                let before = &text[..at];
                let comment = before.rfind("// SAFETY:");
                let code_between = comment.map(|c| {
                    before[c..]
                        .lines()
                        .skip(1)
                        .filter(|l| !l.trim_start().starts_with("//"))
                        .count()
                });
                assert!(
                    code_between.is_some_and(|n| n <= 2),
                    "an unsafe block in src/{} without a `// SAFETY:` comment just above it",
                    path.display()
                );
            }
        }
        if path == vtab {
            assert!(
                !code.contains("unsafe {"),
                "an unsafe block in src/{}",
                path.display()
            );
        }
    }
    found.sort();
    assert_eq!(
        found,
        vec![allowed.to_owned(), vtab.to_owned()],
        "files using `unsafe`"
    );
    let lib = std::fs::read_to_string(src().join("store/sqlite/mod.rs")).unwrap();
    assert_eq!(lib.matches("#[allow(unsafe_code)]").count(), 2);
}

/// A record's lists (`records.auth`) are read only through `store::lists` (`Lists::read`), which
/// knows every text they have been stored as: no SQL elsewhere reads them with the databases'
/// JSON functions (as `check`'s selectors did while they were JSON), so that their form can change
/// with a migration that marks it.
#[test]
fn records_lists_are_read_only_through_store_lists() {
    let allowed = Path::new("store/lists.rs");
    let mut found = Vec::new();
    for (path, text) in sources(&src()) {
        if path == allowed {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            let names_auth = line.match_indices("auth").any(|(at, _)| {
                !line[..at].chars().next_back().is_some_and(is_ident)
                    && !line[at + 4..].chars().next().is_some_and(is_ident)
            });
            if names_auth && line.to_ascii_lowercase().contains("json") {
                found.push(format!("src/{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "`auth` read as JSON:\n{}",
        found.join("\n")
    );
}

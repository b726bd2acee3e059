//! Profile files as text with positions: reading a file, turning byte spans
//! into `file:line:column`, and rewriting toml's multi-line errors into one
//! line that names the key path.
//!
//! Everything here builds bad-input errors; nothing here knows the schema
//! beyond the names of its list sections (for naming `[[artifact]]` entries).

use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::bad_input;

/// Index of a file in [`Files`].
pub(super) type FileId = usize;

/// One profile file as read.
#[derive(Debug)]
pub(super) struct SourceFile {
    /// The path as given or joined from `extends`, lexically normalised:
    /// messages print this, so they are the same on every machine.
    pub display: PathBuf,
    /// The canonical path: identity for cycles and diamonds, base for
    /// relative paths in the file.
    pub abs: PathBuf,
    pub text: String,
}

/// Every file read so far, indexed by [`FileId`].
#[derive(Debug, Default)]
pub(super) struct Files(pub Vec<SourceFile>);

/// A position in one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct At {
    pub file: FileId,
    pub start: usize,
    pub end: usize,
}

impl At {
    pub fn new(file: FileId, span: Range<usize>) -> Self {
        Self {
            file,
            start: span.start,
            end: span.end,
        }
    }

    pub fn of<T>(file: FileId, v: &Spanned<T>) -> Self {
        Self::new(file, v.span())
    }
}

/// A value with the place it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Src<T> {
    pub value: T,
    pub at: At,
}

impl<T> Src<T> {
    pub fn from_spanned(file: FileId, v: Spanned<T>) -> Self {
        let at = At::of(file, &v);
        Self {
            value: v.into_inner(),
            at,
        }
    }
}

impl Files {
    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.0[id]
    }

    /// `file:line:column` of a position (both counted from 1, columns in
    /// characters, as toml and editors count them).
    pub fn position(&self, at: At) -> String {
        let f = self.get(at.file);
        let (line, col) = line_col(&f.text, at.start);
        format!("{}:{line}:{col}", f.display.display())
    }

    /// "file:line:col: msg" as a bad-input error.
    pub fn err(&self, at: At, msg: impl AsRef<str>) -> anyhow::Error {
        bad_input(format!("{}: {}", self.position(at), msg.as_ref()))
    }

    /// "file: msg" for mistakes without a position (a missing key).
    pub fn err_file(&self, file: FileId, msg: impl AsRef<str>) -> anyhow::Error {
        bad_input(format!(
            "{}: {}",
            self.get(file).display.display(),
            msg.as_ref()
        ))
    }
}

/// 1-based line and character column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    // Spans from toml always fall on character boundaries; be safe anyway.
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// Joins `rel` onto the folder of `file` and removes `.` and `name/..`
/// without touching the file system, so printed paths stay short.
pub(super) fn join_beside(file: &Path, rel: &str) -> PathBuf {
    let dir = file.parent().unwrap_or(Path::new(""));
    normalize(&dir.join(rel))
}

/// Lexical normalisation: drops `.`, folds `name/..`; keeps leading `..`.
pub(super) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                let last_is_name =
                    matches!(out.components().next_back(), Some(Component::Normal(_)));
                if last_is_name {
                    out.pop();
                } else if !matches!(out.components().next_back(), Some(Component::RootDir)) {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// One step in a key path: a table key, or a position in a list together
/// with the entry's `name` when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    Key(String),
    Index(usize, Option<String>),
}

/// How messages name a place: `[packages] include`, `[image.os-release]`,
/// `artifact `rkt`: files[0].mode`, or a bare top-level key.
pub(super) fn describe(path: &[Step]) -> String {
    let (section, rest) = split_section(path);
    let rest = render_rest(rest);
    match (section.is_empty(), rest.is_empty()) {
        (true, _) => rest,
        (false, true) => section,
        (false, false) if section.starts_with('[') => format!("{section} {rest}"),
        (false, false) => format!("{section}: {rest}"),
    }
}

/// Where an unknown key sits: "in [image]", "in artifact `rkt`: files[0]",
/// "at the top level".
fn describe_parent(path: &[Step]) -> String {
    if path.is_empty() {
        return "at the top level".to_string();
    }
    let mut keys = Vec::new();
    for step in path {
        match step {
            Step::Key(k) => keys.push(k.as_str()),
            Step::Index(..) => return format!("in {}", describe(path)),
        }
    }
    format!("in [{}]", keys.join("."))
}

/// Splits a path into its section (`[a.b]` for tables, "artifact `rkt`" for
/// an entry of a list of tables) and what follows inside it.
fn split_section(path: &[Step]) -> (String, &[Step]) {
    match path {
        [Step::Key(k), Step::Index(i, name), rest @ ..] if is_table_list(k) => {
            let section = match name {
                Some(n) => format!("{k} `{n}`"),
                None => format!("{k}[{i}]"),
            };
            (section, rest)
        }
        // A single top-level key is a plain key (schema, extends).
        [Step::Key(_)] => (String::new(), path),
        _ => {
            // Table keys up to the last key: [image.os-release] KEY.
            let names: Vec<&str> = path[..path.len().saturating_sub(1)]
                .iter()
                .map_while(|s| match s {
                    Step::Key(k) => Some(k.as_str()),
                    Step::Index(..) => None,
                })
                .collect();
            let keys = names.len();
            (format!("[{}]", names.join(".")), &path[keys..])
        }
    }
}

/// The top-level keys written as `[[name]]`.
fn is_table_list(key: &str) -> bool {
    matches!(key, "repository" | "artifact" | "file" | "user" | "group")
}

fn render_rest(rest: &[Step]) -> String {
    let mut out = String::new();
    for step in rest {
        match step {
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Index(i, _) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Rewrites a toml error (syntax or serde) into "file:line:col: message".
pub(super) fn toml_error(files: &Files, file: FileId, e: &toml::de::Error) -> anyhow::Error {
    let text = &files.get(file).text;
    let Some(span) = e.span() else {
        return files.err_file(file, e.message());
    };
    let at = At::new(file, span.clone());
    let msg = e.message();
    if msg == "duplicate key" {
        let key = text.get(span).unwrap_or("");
        return files.err(at, format!("duplicate key `{key}`"));
    }
    // Key paths need the document; a serde error only happens after the
    // document parsed, so re-parsing it here succeeds.
    let found = DeTable::parse(text)
        .ok()
        .and_then(|doc| find_path(doc.get_ref(), at.start, &mut Vec::new()));
    let Some((path, on_key)) = found else {
        return files.err(at, msg);
    };
    // serde: "unknown field `x`, expected one of `a`, `b`" (or "`a` or
    // `b`", or "there are no fields"), and the same for "unknown variant"
    // (an enum value, or an enum-keyed table such as [platform.NAME]).
    let unknown = msg
        .strip_prefix("unknown field `")
        .or_else(|| msg.strip_prefix("unknown variant `"));
    if let Some(rest) = unknown {
        let (name, expected) = rest.split_once("`, ").unwrap_or((rest, ""));
        let expected = expected.replace('`', "");
        let mut out = if on_key || msg.starts_with("unknown field") {
            let parent = &path[..path.len() - 1];
            format!("unknown key `{name}` {}", describe_parent(parent))
        } else {
            format!("{}: unknown value `{name}`", describe(&path))
        };
        if !expected.is_empty() {
            out.push_str(", ");
            out.push_str(&expected);
        }
        return files.err(at, out);
    }
    files.err(at, format!("{}: {msg}", describe(&path)))
}

/// The key path of the key or value at byte `offset`, searching the whole
/// document (tables written with headers have the header as their span,
/// so their keys are not inside it), and whether `offset` is on a key
/// rather than a value.
fn find_path(
    table: &DeTable<'_>,
    offset: usize,
    path: &mut Vec<Step>,
) -> Option<(Vec<Step>, bool)> {
    for (k, v) in table {
        path.push(Step::Key(k.get_ref().to_string()));
        if contains(k.span(), offset) {
            return Some((path.clone(), true));
        }
        if let Some(found) = find_in_value(v, offset, path) {
            return Some(found);
        }
        path.pop();
    }
    None
}

fn find_in_value(
    v: &Spanned<DeValue<'_>>,
    offset: usize,
    path: &mut Vec<Step>,
) -> Option<(Vec<Step>, bool)> {
    let inner = match v.get_ref() {
        DeValue::Table(t) => find_path(t, offset, path),
        DeValue::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let name = item
                .get_ref()
                .as_table()
                .and_then(|t| t.get("name").or_else(|| t.get("path")))
                .and_then(|n| n.get_ref().as_str())
                .map(str::to_string);
            path.push(Step::Index(i, name));
            let found = find_in_value(item, offset, path);
            path.pop();
            found
        }),
        _ => None,
    };
    inner.or_else(|| contains(v.span(), offset).then(|| (path.clone(), false)))
}

fn contains(span: Range<usize>, offset: usize) -> bool {
    span.contains(&offset) || (span.is_empty() && span.start == offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_from_one_in_characters() {
        assert_eq!(line_col("a = 1\nbé = 2\n", 0), (1, 1));
        assert_eq!(line_col("a = 1\nbé = 2\n", 10), (2, 4));
    }

    #[test]
    fn joined_paths_are_normalised() {
        let p = Path::new("profiles/x/child.toml");
        assert_eq!(
            join_beside(p, "../base.toml"),
            Path::new("profiles/base.toml")
        );
        assert_eq!(join_beside(p, "./a.toml"), Path::new("profiles/x/a.toml"));
        assert_eq!(
            join_beside(Path::new("c.toml"), "../b.toml"),
            Path::new("../b.toml")
        );
    }

    #[test]
    fn describes_sections_and_entries() {
        let k = |s: &str| Step::Key(s.to_string());
        assert_eq!(
            describe(&[k("packages"), k("include")]),
            "[packages] include"
        );
        assert_eq!(
            describe(&[k("image"), k("os-release"), k("FOO")]),
            "[image.os-release] FOO"
        );
        let rkt = Step::Index(0, Some("rkt".into()));
        assert_eq!(
            describe(&[
                k("artifact"),
                rkt,
                k("files"),
                Step::Index(1, None),
                k("mode")
            ]),
            "artifact `rkt`: files[1].mode"
        );
        assert_eq!(describe(&[k("extends")]), "extends");
    }
}

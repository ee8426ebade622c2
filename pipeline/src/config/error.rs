//! Config errors: every problem of a pipeline file, placed at its
//! file:line:column and reported at once (`mlcycle::config::*` codes).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};

use super::span::{self, Part, YamlPath};

/// Which file a problem is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKey {
    Pipeline,
    Params,
}

/// One problem found in a pipeline, before it is placed in the source.
#[derive(Debug, Clone)]
pub struct Issue {
    pub code: &'static str,
    pub message: String,
    pub help: Option<String>,
    pub file: FileKey,
    pub path: Option<YamlPath>,
    pub part: Part,
    pub label: String,
    /// A byte offset, for problems found by the parser (used when `path` is None).
    pub offset: Option<usize>,
}

/// A problem placed in its source file.
#[derive(Debug)]
pub struct LocatedIssue {
    pub issue: Issue,
    src: Arc<NamedSource<String>>,
    span: Option<(usize, usize)>,
    /// 1-based line and column, when known.
    pub line_col: Option<(usize, usize)>,
    pub file_name: String,
}

impl fmt::Display for LocatedIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.issue.message)
    }
}

impl std::error::Error for LocatedIssue {}

impl Diagnostic for LocatedIssue {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(format!("mlcycle::config::{}", self.issue.code)))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.issue
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.span.map(|_| &*self.src as &dyn SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let (o, l) = self.span?;
        Some(Box::new(std::iter::once(LabeledSpan::new(
            Some(self.issue.label.clone()),
            o,
            l,
        ))))
    }
}

/// Everything wrong with a pipeline file, reported at once.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    pub issues: Vec<LocatedIssue>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.issues.len();
        write!(
            f,
            "{} has {} problem{}",
            self.file.to_string_lossy().trim_start_matches("./"),
            n,
            if n == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for ConfigError {}

impl Diagnostic for ConfigError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new("mlcycle::config::invalid"))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(
            "fix the problems listed below; `mlcycle validate` checks the file without running anything",
        ))
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(self.issues.iter().map(|i| i as &dyn Diagnostic)))
    }
}

impl ConfigError {
    /// One line per problem, `file:line:col: message`, for logs and tests.
    pub fn brief(&self) -> String {
        let mut s = String::new();
        for i in &self.issues {
            match i.line_col {
                Some((l, c)) => s.push_str(&format!("{}:{l}:{c}: ", i.file_name)),
                None => s.push_str(&format!("{}: ", i.file_name)),
            }
            s.push_str(&i.issue.message);
            if let Some(h) = &i.issue.help {
                s.push_str(&format!(" (help: {h})"));
            }
            s.push('\n');
        }
        s
    }

    /// Places issues in their files' text.
    pub(crate) fn locate(
        file: &Path,
        sources: &[(FileKey, String, String)],
        issues: Vec<Issue>,
    ) -> Self {
        let mut indexes: Vec<(FileKey, Arc<NamedSource<String>>, span::SpanIndex, &str)> =
            Vec::new();
        for (key, name, text) in sources {
            let idx = span::SpanIndex::build(text);
            indexes.push((
                *key,
                Arc::new(NamedSource::new(name.clone(), text.clone()).with_language("yaml")),
                idx,
                text.as_str(),
            ));
        }
        let located = issues
            .into_iter()
            .map(|issue| {
                let (src, idx, text, name) = indexes
                    .iter()
                    .find(|(k, ..)| *k == issue.file)
                    .map(|(_, src, idx, text)| {
                        (src.clone(), Some(idx), *text, src.name().to_string())
                    })
                    .unwrap_or_else(|| {
                        (
                            Arc::new(NamedSource::new(file.display().to_string(), String::new())),
                            None,
                            "",
                            file.display().to_string(),
                        )
                    });
                let span = match (&issue.path, idx, issue.offset) {
                    (Some(p), Some(idx), _) => idx.locate(p, issue.part),
                    (None, Some(_), Some(o)) if !text.is_empty() => {
                        Some((o.min(text.len() - 1), 1))
                    }
                    _ => None,
                };
                let line_col = span.map(|(o, _)| line_col(text, o));
                let (issue, span) = drop_long_snippet(issue, span, line_col, &name, text);
                LocatedIssue {
                    issue,
                    src,
                    span,
                    line_col,
                    file_name: name,
                }
            })
            .collect();
        ConfigError {
            file: file.to_path_buf(),
            issues: located,
        }
    }

    /// An issue at a byte offset, for syntax errors found by the parser.
    pub(crate) fn at_offset(
        file: &Path,
        name: &str,
        text: &str,
        issue: Issue,
        offset: Option<usize>,
    ) -> Self {
        let span = offset.map(|o| {
            let o = o.min(text.len().saturating_sub(1));
            (o, 1)
        });
        let line_col = span.map(|(o, _)| line_col(text, o));
        let (issue, span) = drop_long_snippet(issue, span, line_col, name, text);
        ConfigError {
            file: file.to_path_buf(),
            issues: vec![LocatedIssue {
                issue,
                src: Arc::new(NamedSource::new(name, text.to_string()).with_language("yaml")),
                span,
                line_col,
                file_name: name.to_string(),
            }],
        }
    }
}

/// The widest column a source snippet is drawn for. The renderer cannot
/// draw a label past column 65 535 (it panics), and a snippet of a line that
/// long shows nothing useful: past this, the problem names its
/// file:line:column in the message and shows no snippet.
const MAX_SNIPPET_COLUMN: usize = 10_000;

fn drop_long_snippet(
    mut issue: Issue,
    span: Option<(usize, usize)>,
    line_col: Option<(usize, usize)>,
    name: &str,
    text: &str,
) -> (Issue, Option<(usize, usize)>) {
    // The renderer measures the whole line around the span: a very long
    // one (a deeply nested one-line document) costs it time quadratic in
    // its length.
    let line_len = |o: usize| {
        let o = o.min(text.len());
        let start = text[..o].rfind('\n').map_or(0, |i| i + 1);
        let end = text[o..].find('\n').map_or(text.len(), |i| o + i);
        end - start
    };
    match (span, line_col) {
        (Some((o, len)), Some((line, col)))
            if col + len > MAX_SNIPPET_COLUMN || line_len(o) > MAX_SNIPPET_COLUMN =>
        {
            issue.message = format!("{} (at {name}:{line}:{col})", issue.message);
            (issue, None)
        }
        _ => (issue, span),
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

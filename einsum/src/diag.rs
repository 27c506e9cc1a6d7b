//! Located diagnostics, rendered rustc-style with a caret snippet:
//!
//! ```text
//! error: unknown tensor `KK`
//!  --> attention.ein:5:20
//!   |
//! 5 | QK[m,p] = Q[e,p] * KK[e,m]
//!   |                    ^^ not an input and not written by any Einsum
//! ```

use crate::syntax::Span;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// One message about a place in a cascade file.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub span: Span,
    /// Text written under the caret.
    pub label: String,
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn error(span: Span, message: impl Into<String>, label: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            span,
            label: label.into(),
            notes: vec![],
        }
    }
    pub fn warning(span: Span, message: impl Into<String>, label: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            message: message.into(),
            span,
            label: label.into(),
            notes: vec![],
        }
    }
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A named source text, for rendering diagnostics.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        SourceFile {
            name: name.into(),
            text: text.into(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        // A span may end inside a multi-byte character (e.g. a syntax error's
        // one-byte span): count from the start of that character.
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |p| p + 1);
        (line, before[line_start..].chars().count() + 1)
    }

    /// Render one diagnostic with its location and a caret under the span.
    pub fn render(&self, d: &Diagnostic) -> String {
        let (line, col) = self.line_col(d.span.start);
        let kind = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let src_line = self.text.lines().nth(line - 1).unwrap_or("");
        let gutter = line.to_string().len();
        let pad = " ".repeat(gutter);
        let line_len = src_line.chars().count();
        let width = {
            let (l2, c2) = self.line_col(d.span.end.max(d.span.start));
            if l2 == line && c2 > col {
                c2 - col
            } else {
                line_len.saturating_sub(col - 1).max(1)
            }
        };
        let mut s = format!(
            "{kind}: {}\n{pad}--> {}:{line}:{col}\n{pad} |\n{line} | {src_line}\n{pad} | {}{} {}\n",
            d.message,
            self.name,
            " ".repeat(col - 1),
            "^".repeat(width.max(1)),
            d.label
        );
        for n in &d.notes {
            s.push_str(&format!("{pad} = note: {n}\n"));
        }
        s
    }

    pub fn render_all(&self, ds: &[Diagnostic]) -> String {
        ds.iter()
            .map(|d| self.render(d))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Errors (and the warnings found alongside them) from checking a cascade.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckError {
    pub source: SourceFile,
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.source.render_all(&self.diagnostics).trim_end())
    }
}

impl std::error::Error for CheckError {}

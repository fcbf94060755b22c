//! Manifest diagnostics: every problem found in one file, each with its span
//! and a help line, reported together in one run.

use std::ops::Range;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};

/// One problem in a manifest, pointing at the exact text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    pub span: Range<usize>,
    pub label: String,
    pub help: Option<String>,
}

impl Problem {
    pub fn new(message: impl Into<String>, span: Range<usize>, label: impl Into<String>) -> Self {
        Problem {
            message: message.into(),
            span,
            label: label.into(),
            help: None,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// All problems of one manifest file.
#[derive(Debug)]
pub struct ManifestErrors {
    pub source: Arc<NamedSource<String>>,
    pub problems: Vec<ProblemReport>,
}

/// A problem rendered against its source text.
#[derive(Debug, Clone)]
pub struct ProblemReport {
    source: Arc<NamedSource<String>>,
    pub problem: Problem,
}

impl ManifestErrors {
    pub fn new(name: &str, text: &str, problems: Vec<Problem>) -> Self {
        let source = Arc::new(NamedSource::new(name, text.to_string()).with_language("TOML"));
        let problems = problems
            .into_iter()
            .map(|problem| ProblemReport {
                source: source.clone(),
                problem,
            })
            .collect();
        ManifestErrors { source, problems }
    }
}

impl std::fmt::Display for ManifestErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.problems.len();
        write!(
            f,
            "{} has {} problem{}",
            self.source.name(),
            count,
            if count == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for ManifestErrors {}

impl Diagnostic for ManifestErrors {
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(self.problems.iter().map(|p| p as &dyn Diagnostic)))
    }
}

impl std::fmt::Display for ProblemReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.problem.message)
    }
}

impl std::error::Error for ProblemReport {}

impl Diagnostic for ProblemReport {
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.problem
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(self.source.as_ref())
    }

    /// No label (and so no source excerpt) for a problem that is about the
    /// command line rather than a place in the file.
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.problem.label.is_empty() {
            return None;
        }
        let span = &self.problem.span;
        Some(Box::new(std::iter::once(
            LabeledSpan::new_primary_with_span(
                Some(self.problem.label.clone()),
                (span.start, span.end.saturating_sub(span.start)),
            ),
        )))
    }
}

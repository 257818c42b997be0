//! [`Report`]: the findings of a validation.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The package cannot be published or run.
    Error,
    /// Worth fixing; does not block.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One finding: `{severity, code, message}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// A stable snake_case code, e.g. `import_not_permitted`.
    pub code: String,
    /// A sentence for the developer saying what is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]: {}", self.severity, self.code, self.message)
    }
}

/// Every finding of a validation, as the API returns it: `{findings:[…]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// All findings, in the order the rules ran.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }

    /// The error findings.
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }

    /// The warning findings.
    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
    }

    /// Whether some finding has this code.
    pub fn has_code(&self, code: &str) -> bool {
        self.findings.iter().any(|f| f.code == code)
    }

    /// Adds an error.
    pub fn error(&mut self, code: &str, message: impl Into<String>) {
        self.push(Severity::Error, code, message);
    }

    /// Adds a warning.
    pub fn warning(&mut self, code: &str, message: impl Into<String>) {
        self.push(Severity::Warning, code, message);
    }

    fn push(&mut self, severity: Severity, code: &str, message: impl Into<String>) {
        self.findings.push(Finding {
            severity,
            code: code.to_owned(),
            message: message.into(),
        });
    }
}

//! `cascade check`: parse and check a cascade; report its Einsums, tensors and passes per
//! rank, as text or as JSON (diagnostics included, like `rustc --error-format=json`).

use anyhow::{bail, Context, Result};
use cascade_einsum::{
    check_source, library, CheckError, Checked, Diagnostic, Severity, SourceFile,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The name and text of a cascade: a `.ein` file, or a built-in cascade by name.
pub fn load_source(arg: &str) -> Result<(String, String)> {
    let p = Path::new(arg);
    if p.exists() {
        let text = std::fs::read_to_string(p).with_context(|| format!("{arg}: cannot read"))?;
        Ok((arg.to_string(), text))
    } else if let Some(src) = library::source(arg) {
        Ok((format!("einsum/cascades/{arg}.ein"), src.to_string()))
    } else {
        bail!(
            "{arg}: no such file, and not a built-in cascade (built in: {})",
            library::names().join(", ")
        )
    }
}

/// One diagnostic with its place resolved to a 1-based line and column.
#[derive(Serialize, Debug)]
pub struct JsonDiagnostic {
    pub severity: &'static str,
    pub message: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub label: String,
    pub notes: Vec<String>,
}

/// What `check --json` prints.
#[derive(Serialize, Debug)]
pub struct CheckReport {
    pub ok: bool,
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cascade: Option<String>,
    pub einsums: Vec<String>,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub ranks: Vec<String>,
    /// Passes over each root rank (FuseMax §III).
    pub passes: BTreeMap<String, u32>,
    pub diagnostics: Vec<JsonDiagnostic>,
}

fn json_diagnostic(src: &SourceFile, d: &Diagnostic) -> JsonDiagnostic {
    let (line, column) = src.line_col(d.span.start);
    JsonDiagnostic {
        severity: match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        },
        message: d.message.clone(),
        file: src.name.clone(),
        line,
        column,
        label: d.label.clone(),
        notes: d.notes.clone(),
    }
}

/// Check `name`'s `text`: the report, and the error when the cascade is rejected.
pub fn check(name: &str, text: &str) -> (CheckReport, Result<Checked, CheckError>) {
    match check_source(name, text) {
        Ok(c) => {
            let cas = &c.cascade;
            let r = CheckReport {
                ok: true,
                file: name.to_string(),
                cascade: Some(cas.name.clone()),
                einsums: cas.einsums.iter().map(|e| e.name.clone()).collect(),
                inputs: cas.inputs.clone(),
                outputs: cas.outputs.clone(),
                ranks: cas.ranks.keys().cloned().collect(),
                passes: cascade_einsum::pass_counts(cas),
                diagnostics: c
                    .warnings
                    .iter()
                    .map(|d| json_diagnostic(&cas.source, d))
                    .collect(),
            };
            (r, Ok(c))
        }
        Err(e) => {
            let r = CheckReport {
                ok: false,
                file: name.to_string(),
                cascade: None,
                einsums: vec![],
                inputs: vec![],
                outputs: vec![],
                ranks: vec![],
                passes: BTreeMap::new(),
                diagnostics: e
                    .diagnostics
                    .iter()
                    .map(|d| json_diagnostic(&e.source, d))
                    .collect(),
            };
            (r, Err(e))
        }
    }
}

/// The text `check` prints for an accepted cascade.
pub fn render_text(c: &Checked) -> String {
    let cas = &c.cascade;
    let passes = cascade_einsum::pass_counts(cas);
    let p: Vec<String> = passes.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!(
        "ok: {} — {} Einsums, inputs {}, outputs {}\npasses per rank: {}\n",
        cas.source.name,
        cas.einsums.len(),
        cas.inputs.join(", "),
        cas.outputs.join(", "),
        p.join(", ")
    )
}

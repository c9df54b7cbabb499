//! What a run tells at its end: how each stage ended (`Outcome`), the report callers act on
//! (`RunReport`: exit code, counts, manifest), and the table people read (`summary`).

use std::mem::discriminant;

use crate::exec::error::ManifestError;

/// How a stage ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Its result was already in the cache.
    Cached,
    Ran,
    /// Not run because an input did not produce a result.
    Skipped(String),
    Failed(String),
    Cancelled,
    /// `--dry-run`: would run.
    WouldRun,
    /// Not selected by `--target`.
    NotSelected,
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Cached => "cached",
            Outcome::Ran => "ran",
            Outcome::Skipped(_) => "skipped",
            Outcome::Failed(_) => "FAILED",
            Outcome::Cancelled => "cancelled",
            Outcome::WouldRun => "would run",
            Outcome::NotSelected => "-",
        }
    }
}

pub struct StageReport {
    pub id: String,
    pub outcome: Outcome,
    pub wall_time_s: Option<f64>,
    pub rows: Option<u64>,
    /// Why it ran, or what was wrong with its cached result.
    pub note: Option<String>,
}

pub struct RunReport {
    pub stages: Vec<StageReport>,
    pub manifest_written: bool,
    /// The manifest could not be written (the results are cached all the same).
    pub manifest_error: Option<ManifestError>,
}

impl RunReport {
    pub fn failed(&self) -> bool {
        self.manifest_error.is_some()
            || self
                .stages
                .iter()
                .any(|s| matches!(s.outcome, Outcome::Failed(_) | Outcome::Skipped(_)))
    }

    pub fn cancelled(&self) -> bool {
        self.stages.iter().any(|s| s.outcome == Outcome::Cancelled)
    }

    /// How many stages ended like `outcome` (its variant; a message it carries is ignored).
    pub fn count(&self, outcome: &Outcome) -> usize {
        self.stages
            .iter()
            .filter(|s| discriminant(&s.outcome) == discriminant(outcome))
            .count()
    }
}

pub fn human_duration(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0}ms", s * 1000.0)
    } else if s < 120.0 {
        format!("{s:.1}s")
    } else {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    }
}

/// The end-of-run table for people.
pub fn summary(report: &RunReport) -> String {
    let width = report
        .stages
        .iter()
        .map(|s| s.id.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut out = format!(
        "{:width$}  {:9}  {:>8}  {:>9}  note\n",
        "stage", "outcome", "time", "rows"
    );
    for s in &report.stages {
        if s.outcome == Outcome::NotSelected {
            continue;
        }
        let time = s
            .wall_time_s
            .map(human_duration)
            .unwrap_or_else(|| "-".into());
        let rows = s.rows.map(|r| r.to_string()).unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "{:width$}  {:9}  {:>8}  {:>9}  {}\n",
            s.id,
            s.outcome.label(),
            time,
            rows,
            note(s)
        ));
    }
    out
}

/// The summary's note column: a failure's first line, why a stage was skipped, or its note.
fn note(s: &StageReport) -> String {
    match (&s.outcome, &s.note) {
        (Outcome::Failed(e), _) => e.lines().next().unwrap_or_default().to_string(),
        (Outcome::Skipped(why), _) => why.clone(),
        (_, Some(n)) => n.clone(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(id: &str, outcome: Outcome) -> StageReport {
        StageReport {
            id: id.into(),
            outcome,
            wall_time_s: None,
            rows: None,
            note: None,
        }
    }

    #[test]
    fn outcomes_are_counted_by_variant() {
        let report = RunReport {
            stages: vec![
                stage("a", Outcome::Ran),
                stage("b", Outcome::Failed("x".into())),
                stage("c", Outcome::Failed("y".into())),
                stage("d", Outcome::Cached),
            ],
            manifest_written: false,
            manifest_error: None,
        };
        assert_eq!(report.count(&Outcome::Ran), 1);
        assert_eq!(report.count(&Outcome::Failed(String::new())), 2);
        assert_eq!(report.count(&Outcome::Cancelled), 0);
        assert!(report.failed());
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human_duration(0.25), "250ms");
        assert_eq!(human_duration(3.21), "3.2s");
        assert_eq!(human_duration(185.0), "3m05s");
    }
}

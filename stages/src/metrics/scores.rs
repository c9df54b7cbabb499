//! Classification scores as scikit-learn computes them: accuracy, per-class precision / recall /
//! F1 / support with `zero_division=0`, macro and weighted averages, the confusion matrix
//! (counts and row-normalised, `normalize="true"`), and `classification_report`'s text layout.
//! The labels scored are those in `y_true` ∪ `y_pred`, sorted (scikit-learn's default).

use std::fmt::Write;

use serde::Serialize;

/// Precision, recall, F1 and support of one class or one average.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

/// Everything `classification_report` and `confusion_matrix` give for one split.
#[derive(Debug, Clone)]
pub struct Report {
    /// The label ids scored, sorted.
    pub labels: Vec<i64>,
    /// Their display names.
    pub names: Vec<String>,
    /// One entry per label.
    pub per_class: Vec<Scores>,
    pub accuracy: f64,
    pub macro_avg: Scores,
    pub weighted_avg: Scores,
    /// `confusion[t][p]`: rows with true label `labels[t]` predicted `labels[p]`.
    pub confusion: Vec<Vec<usize>>,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

impl Report {
    /// Scores `pred` against `truth`; `name(id)` gives a label's display name.
    pub fn new(truth: &[i64], pred: &[i64], name: impl Fn(i64) -> String) -> Report {
        assert_eq!(truth.len(), pred.len());
        let mut labels: Vec<i64> = truth.iter().chain(pred).copied().collect();
        labels.sort_unstable();
        labels.dedup();
        let index = |id: i64| labels.binary_search(&id).expect("label listed");
        let k = labels.len();
        let mut confusion = vec![vec![0usize; k]; k];
        for (t, p) in truth.iter().zip(pred) {
            confusion[index(*t)][index(*p)] += 1;
        }
        let total = truth.len();
        let correct: usize = (0..k).map(|i| confusion[i][i]).sum();
        let per_class: Vec<Scores> = (0..k)
            .map(|c| {
                let tp = confusion[c][c];
                let support: usize = confusion[c].iter().sum();
                let predicted: usize = confusion.iter().map(|row| row[c]).sum();
                Scores {
                    precision: ratio(tp, predicted),
                    recall: ratio(tp, support),
                    // 2tp / (2tp + fp + fn), as scikit-learn ≥ 1.3 computes it.
                    f1: ratio(2 * tp, support + predicted),
                    support,
                }
            })
            .collect();
        let avg = |weight: &dyn Fn(&Scores) -> f64| {
            let w: f64 = per_class.iter().map(weight).sum();
            let mean = |v: &dyn Fn(&Scores) -> f64| {
                if w == 0.0 {
                    0.0
                } else {
                    per_class.iter().map(|s| weight(s) * v(s)).sum::<f64>() / w
                }
            };
            Scores {
                precision: mean(&|s| s.precision),
                recall: mean(&|s| s.recall),
                f1: mean(&|s| s.f1),
                support: total,
            }
        };
        let macro_avg = avg(&|_| 1.0);
        let weighted_avg = avg(&|s| s.support as f64);
        Report {
            names: labels.iter().map(|&id| name(id)).collect(),
            labels,
            per_class,
            accuracy: ratio(correct, total),
            macro_avg,
            weighted_avg,
            confusion,
        }
    }

    /// The confusion matrix with each row divided by its sum (rows with no example stay 0).
    pub fn confusion_normalized(&self) -> Vec<Vec<f64>> {
        self.confusion
            .iter()
            .map(|row| {
                let sum: usize = row.iter().sum();
                row.iter().map(|&c| ratio(c, sum)).collect()
            })
            .collect()
    }

    /// `classification_report(..., digits=digits)`'s text, byte for byte.
    pub fn text(&self, digits: usize) -> String {
        const LAST: &str = "weighted avg";
        let name_width = self.names.iter().map(|n| n.chars().count()).max();
        let width = name_width.unwrap_or(0).max(LAST.len()).max(digits);
        let mut out = format!(
            "{:>width$}  {:>9} {:>9} {:>9} {:>9}\n\n",
            "", "precision", "recall", "f1-score", "support"
        );
        let row = |out: &mut String, name: &str, s: &Scores| {
            let _ = writeln!(
                out,
                "{name:>width$}  {:>9.digits$} {:>9.digits$} {:>9.digits$} {:>9}",
                s.precision, s.recall, s.f1, s.support
            );
        };
        for (name, s) in self.names.iter().zip(&self.per_class) {
            row(&mut out, name, s);
        }
        out.push('\n');
        let _ = writeln!(
            out,
            "{:>width$}  {:>9} {:>9} {:>9.digits$} {:>9}",
            "accuracy", "", "", self.accuracy, self.weighted_avg.support
        );
        row(&mut out, "macro avg", &self.macro_avg);
        row(&mut out, LAST, &self.weighted_avg);
        out
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    struct Fixture {
        names: Vec<String>,
        y_true: Vec<i64>,
        y_pred: Vec<i64>,
        labels: Vec<i64>,
        accuracy: f64,
        f1_weighted: f64,
        f1_macro: f64,
        report_text: String,
        report: serde_json::Value,
        confusion: Vec<Vec<usize>>,
        confusion_normalized: Vec<Vec<f64>>,
    }

    pub(crate) fn fixture() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/classify/metrics.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn report_matches_scikit_learn() {
        let fx: Fixture = serde_json::from_value(fixture()).unwrap();
        let r = Report::new(&fx.y_true, &fx.y_pred, |id| fx.names[id as usize].clone());
        assert_eq!(r.labels, fx.labels);
        assert_eq!(r.text(2), fx.report_text);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(r.accuracy, fx.accuracy));
        assert!(close(r.weighted_avg.f1, fx.f1_weighted), "{r:?}");
        assert!(close(r.macro_avg.f1, fx.f1_macro), "{r:?}");
        for (name, s) in r.names.iter().zip(&r.per_class) {
            let want = &fx.report[name];
            assert!(
                close(s.precision, want["precision"].as_f64().unwrap()),
                "{name}"
            );
            assert!(close(s.recall, want["recall"].as_f64().unwrap()), "{name}");
            assert!(close(s.f1, want["f1-score"].as_f64().unwrap()), "{name}");
            assert_eq!(
                s.support as f64,
                want["support"].as_f64().unwrap(),
                "{name}"
            );
        }
        let w = &fx.report["weighted avg"];
        assert!(close(
            r.weighted_avg.precision,
            w["precision"].as_f64().unwrap()
        ));
        let m = &fx.report["macro avg"];
        assert!(close(r.macro_avg.recall, m["recall"].as_f64().unwrap()));
        assert_eq!(r.confusion, fx.confusion);
        for (a, b) in r
            .confusion_normalized()
            .iter()
            .zip(&fx.confusion_normalized)
        {
            for (x, y) in a.iter().zip(b) {
                assert!(close(*x, *y), "{a:?} vs {b:?}");
            }
        }
    }
}

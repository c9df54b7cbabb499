//! Where each run goes: a cell of the rows × columns grid, or a point (series, x) of the line
//! chart. Two runs in one place is an error naming both.

use std::collections::BTreeMap;

use super::CompareParams;
use super::gather::Entry;
use crate::api::StageError;

/// The runs laid out for the table and the figure.
pub enum Layout<'a> {
    Grid(Grid<'a>),
    Curves(Vec<Curve<'a>>),
}

impl<'a> Layout<'a> {
    /// The line chart when `x` is given, else the grid.
    pub fn new(p: &'a CompareParams, runs: &[Entry<'a>]) -> Result<Layout<'a>, StageError> {
        match &p.x {
            Some(x) => curves(p, x, runs).map(Layout::Curves),
            None => Grid::new(p, runs).map(Layout::Grid),
        }
    }

    /// Every name it shows (row, column and series keys), which `labels` may rename.
    pub fn names(&self) -> Vec<&'a str> {
        match self {
            Layout::Grid(grid) => grid.rows.iter().chain(&grid.columns).copied().collect(),
            Layout::Curves(curves) => curves.iter().map(|c| c.key).collect(),
        }
    }
}

/// The runs as a table: one row per value of `rows` (or per stage), one column per value of
/// `columns` (or the metric alone), in the order first seen.
#[derive(Debug, PartialEq)]
pub struct Grid<'a> {
    pub rows: Vec<&'a str>,
    pub columns: Vec<&'a str>,
    /// rows × columns; `None` where no run landed.
    pub cells: Vec<Vec<Option<f64>>>,
}

impl<'a> Grid<'a> {
    fn new(p: &'a CompareParams, runs: &[Entry<'a>]) -> Result<Grid<'a>, StageError> {
        let mut grid = Grid {
            rows: Vec::new(),
            columns: Vec::new(),
            cells: Vec::new(),
        };
        let mut taken: BTreeMap<(usize, usize), &str> = BTreeMap::new();
        for run in runs {
            let row = match &p.rows {
                Some(name) => run.variable("rows", name)?,
                None => run.stage,
            };
            let column = match &p.columns {
                Some(name) => run.variable("columns", name)?,
                None => p.metric.as_str(),
            };
            let at = (index(&mut grid.rows, row), index(&mut grid.columns, column));
            if let Some(first) = taken.insert(at, run.stage) {
                return Err(same_place(first, run.stage, &grid_place(p, row, column)));
            }
            grid.cells.resize_with(grid.rows.len(), Vec::new);
            let cells = &mut grid.cells[at.0];
            cells.resize(cells.len().max(at.1 + 1), None);
            cells[at.1] = Some(run.value);
        }
        for row in &mut grid.cells {
            row.resize(grid.columns.len(), None);
        }
        Ok(grid)
    }
}

/// The position of `key` in `keys`, added at the end when new.
fn index<'a>(keys: &mut Vec<&'a str>, key: &'a str) -> usize {
    keys.iter().position(|k| *k == key).unwrap_or_else(|| {
        keys.push(key);
        keys.len() - 1
    })
}

/// `train = de, eval = en`: a cell, as messages name it.
fn grid_place(p: &CompareParams, row: &str, column: &str) -> String {
    let row = format!("{} = {row}", p.rows.as_deref().unwrap_or("stage"));
    match &p.columns {
        Some(name) => format!("{row}, {name} = {column}"),
        None => row,
    }
}

fn same_place(first: &str, second: &str, place: &str) -> StageError {
    StageError::failed(format!(
        "runs `{first}` and `{second}` both land at {place}"
    ))
    .with_hint(
        "each place holds one run: name the variable that tells them apart (`columns`, \
         `series`), or compare fewer runs",
    )
}

/// One line of the chart: its key (a value of `series`, or the metric) and its points by x.
#[derive(Debug, PartialEq)]
pub struct Curve<'a> {
    pub key: &'a str,
    pub points: Vec<Point<'a>>,
}

/// A run on the chart: x as a number and as written, its value, and its stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Point<'a> {
    pub x: f64,
    pub written: &'a str,
    pub value: f64,
    pub stage: &'a str,
}

/// One curve per value of `series` (or one), in the order first seen, its points by x.
fn curves<'a>(
    p: &'a CompareParams,
    x_name: &str,
    runs: &[Entry<'a>],
) -> Result<Vec<Curve<'a>>, StageError> {
    let mut curves: Vec<Curve> = Vec::new();
    for run in runs {
        let key = match &p.series {
            Some(name) => run.variable("series", name)?,
            None => p.metric.as_str(),
        };
        let point = point(p, x_name, run)?;
        let at = match curves.iter().position(|c| c.key == key) {
            Some(at) => at,
            None => {
                curves.push(Curve {
                    key,
                    points: Vec::new(),
                });
                curves.len() - 1
            }
        };
        let points = &mut curves[at].points;
        if let Some(first) = points.iter().find(|q| q.x == point.x) {
            let mut place = format!("{x_name} = {}", point.written);
            if let Some(series) = &p.series {
                place.push_str(&format!(" of the line {series} = {key}"));
            }
            return Err(same_place(first.stage, run.stage, &place));
        }
        points.push(point);
    }
    for curve in &mut curves {
        curve.points.sort_by(|a, b| a.x.total_cmp(&b.x));
    }
    Ok(curves)
}

/// A run's point: its `x` variable read as a number (above 0 on a log axis).
fn point<'a>(p: &CompareParams, x_name: &str, run: &Entry<'a>) -> Result<Point<'a>, StageError> {
    let written = run.variable("x", x_name)?;
    let who = format!("{} `{}`", run.role.name(), run.stage);
    let x = match written.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => x,
        _ => {
            return Err(StageError::param(
                "x",
                format!("{who} has {x_name} = `{written}`, which is not a number"),
                Some("`x` names a variable whose values are numbers, e.g. training sizes".into()),
            ));
        }
    };
    if p.x_scale.is_log() && x <= 0.0 {
        return Err(StageError::param(
            "x-scale",
            format!("{who} has {x_name} = {written}: a log x axis needs values above 0"),
            Some("use `x-scale: linear`".into()),
        ));
    }
    Ok(Point {
        x,
        written,
        value: run.value,
        stage: run.stage,
    })
}

#[cfg(test)]
mod tests {
    use super::super::gather::Role;
    use super::*;

    type Cell<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

    fn matrices(cells: &[Cell]) -> Vec<BTreeMap<String, String>> {
        cells
            .iter()
            .map(|(_, vars, _)| {
                vars.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .collect()
    }

    fn entries<'a>(cells: &[Cell<'a>], matrices: &'a [BTreeMap<String, String>]) -> Vec<Entry<'a>> {
        cells
            .iter()
            .zip(matrices)
            .map(|((stage, _, value), matrix)| Entry {
                stage,
                role: Role::Run,
                matrix,
                value: *value,
            })
            .collect()
    }

    fn params(yaml: &str) -> CompareParams {
        crate::params_from_yaml(yaml)
    }

    const TRANSFER: [Cell; 3] = [
        ("e-de-de", &[("train", "de"), ("eval", "de")], 0.87),
        ("e-de-fr", &[("train", "de"), ("eval", "fr")], 0.70),
        ("e-fr-fr", &[("train", "fr"), ("eval", "fr")], 0.84),
    ];

    #[test]
    fn runs_fill_a_grid_in_the_order_first_seen_with_holes_left_empty() {
        let p = params("{metric: f1, rows: train, columns: eval}");
        let m = matrices(&TRANSFER);
        let Layout::Grid(grid) = Layout::new(&p, &entries(&TRANSFER, &m)).unwrap() else {
            panic!("a grid")
        };
        assert_eq!(
            grid,
            Grid {
                rows: vec!["de", "fr"],
                columns: vec!["de", "fr"],
                cells: vec![vec![Some(0.87), Some(0.70)], vec![None, Some(0.84)]],
            }
        );
        // Rows only: one column, the metric; neither: one row per stage.
        let p = params("{metric: f1, rows: eval}");
        let Layout::Grid(grid) = Layout::new(&p, &entries(&TRANSFER[..2], &m)).unwrap() else {
            panic!("a grid")
        };
        assert_eq!(grid.columns, ["f1"]);
        assert_eq!(grid.cells, [[Some(0.87)], [Some(0.70)]]);
        let p = params("{metric: f1}");
        let layout = Layout::new(&p, &entries(&TRANSFER, &m)).unwrap();
        assert_eq!(layout.names(), ["e-de-de", "e-de-fr", "e-fr-fr", "f1"]);
    }

    #[test]
    fn two_runs_in_one_cell_are_an_error_naming_both() {
        let p = params("{metric: f1, rows: train}");
        let m = matrices(&TRANSFER);
        let err = Layout::new(&p, &entries(&TRANSFER, &m)).err().unwrap();
        assert_eq!(
            err.to_string(),
            "runs `e-de-de` and `e-de-fr` both land at train = de"
        );
        assert!(err.hint().unwrap().contains("`columns`"));
    }

    #[test]
    fn a_run_lacking_a_variable_is_an_error_at_the_param() {
        let p = params("{metric: f1, rows: train, columns: lang}");
        let m = matrices(&TRANSFER);
        let err = Layout::new(&p, &entries(&TRANSFER, &m)).err().unwrap();
        assert_eq!(
            err.to_string(),
            "run `e-de-de` has no matrix variable `lang` (its variables: eval, train)"
        );
        assert!(matches!(err, StageError::Param { ref field, .. } if field == "columns"));
    }

    const CURVE: [Cell; 4] = [
        ("c-de-1000", &[("lang", "de"), ("n", "1000")], 0.8),
        ("c-de-250", &[("lang", "de"), ("n", "250")], 0.5),
        ("c-fr-250", &[("lang", "fr"), ("n", "250.0")], 0.4),
        ("c-de-500", &[("lang", "de"), ("n", "500")], 0.7),
    ];

    /// A point as (x, x as written, value).
    type Shape<'a> = (f64, &'a str, f64);

    #[test]
    fn runs_become_lines_by_series_with_points_sorted_by_x() {
        let p = params("{metric: f1, x: n, series: lang}");
        let m = matrices(&CURVE);
        let Layout::Curves(curves) = Layout::new(&p, &entries(&CURVE, &m)).unwrap() else {
            panic!("curves")
        };
        let shape: Vec<(&str, Vec<Shape>)> = curves
            .iter()
            .map(|c| {
                let points = c.points.iter().map(|q| (q.x, q.written, q.value));
                (c.key, points.collect())
            })
            .collect();
        assert_eq!(
            shape,
            [
                (
                    "de",
                    vec![
                        (250.0, "250", 0.5),
                        (500.0, "500", 0.7),
                        (1000.0, "1000", 0.8)
                    ]
                ),
                ("fr", vec![(250.0, "250.0", 0.4)]),
            ]
        );
    }

    #[test]
    fn x_must_be_a_number_above_zero_on_a_log_axis_and_points_distinct() {
        let m = matrices(&CURVE);
        let runs = entries(&CURVE, &m);
        let err = Layout::new(&params("{metric: f1, x: n}"), &runs)
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "runs `c-de-250` and `c-fr-250` both land at n = 250.0"
        );
        let err = Layout::new(&params("{metric: f1, x: lang, series: n}"), &runs)
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "run `c-de-1000` has lang = `de`, which is not a number"
        );
        assert!(matches!(err, StageError::Param { ref field, .. } if field == "x"));

        let zero: [Cell; 1] = [("c-0", &[("n", "0")], 0.1)];
        let m = matrices(&zero);
        let err = Layout::new(
            &params("{metric: f1, x: n, x-scale: log}"),
            &entries(&zero, &m),
        )
        .err()
        .unwrap();
        assert_eq!(
            err.to_string(),
            "run `c-0` has n = 0: a log x axis needs values above 0"
        );
        assert!(matches!(err, StageError::Param { ref field, .. } if field == "x-scale"));
    }

    #[test]
    fn two_runs_at_one_point_of_a_line_name_both_and_the_line() {
        let twice: [Cell; 2] = [
            ("a", &[("lang", "de"), ("n", "250")], 0.5),
            ("b", &[("lang", "de"), ("n", "2.5e2")], 0.6),
        ];
        let m = matrices(&twice);
        let err = Layout::new(
            &params("{metric: f1, x: n, series: lang}"),
            &entries(&twice, &m),
        )
        .err()
        .unwrap();
        assert_eq!(
            err.to_string(),
            "runs `a` and `b` both land at n = 2.5e2 of the line lang = de"
        );
    }
}

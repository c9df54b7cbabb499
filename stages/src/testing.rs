//! Kinds that exercise the engine in tests: a source table, a CPU map, a device map and a join
//! with named inputs. Each run appends its stage id to `$CAIRN_TEST_LOG` (when set), so tests
//! count real executions.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::api::{
    Arity, Context, External, Input, InputSlot, Output, PrepareEnv, Stage, StageError,
};

fn log_execution(stage: &str) {
    if let Ok(path) = std::env::var("CAIRN_TEST_LOG") {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("test log");
        // One write per line: stages running at once append to the same log, and `writeln!`
        // writes the id and the newline separately, so two lines could interleave.
        f.write_all(format!("{stage}\n").as_bytes())
            .expect("test log write");
    }
}

fn nap(ms: u64, ctx: &Context) -> Result<(), StageError> {
    let mut left = ms;
    while left > 0 {
        ctx.check_cancelled()?;
        let step = left.min(20);
        std::thread::sleep(Duration::from_millis(step));
        left -= step;
    }
    Ok(())
}

#[derive(Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SourceParams {
    /// Rows to generate. Default 3.
    #[serde(default = "three")]
    rows: i64,
    /// Added to every value. Default 0.
    #[serde(default)]
    offset: i64,
    /// A text file whose lines become the `text` column (an external input).
    #[serde(default)]
    file: Option<String>,
    /// Also write a file output `note.txt`. Default false.
    #[serde(default)]
    write_file: bool,
    #[serde(default)]
    sleep_ms: u64,
    /// Also record this float as metric `score` (manifest round-trip tests).
    #[serde(default)]
    score: Option<f64>,
}

fn three() -> i64 {
    3
}

/// `test-source`: a `train` and a `test` table of `rows` rows.
pub struct TestSource;

impl Stage for TestSource {
    type Params = SourceParams;
    const KIND: &'static str = "test-source";
    const VERSION: u32 = 1;
    const INPUTS: Arity = Arity::None;
    const SUMMARY: &'static str = "(tests) generates a small table";

    fn externals(p: &SourceParams, env: &PrepareEnv) -> Result<Vec<External>, StageError> {
        Ok(p.file
            .iter()
            .map(|f| External {
                field: "file".into(),
                shown: f.clone(),
                path: env.root.join(f),
                content_only: false,
                files: None,
            })
            .collect())
    }

    fn run(p: &SourceParams, ctx: &Context) -> Result<Output, StageError> {
        log_execution(ctx.stage);
        nap(p.sleep_ms, ctx)?;
        let lines: Vec<String> = match &p.file {
            // Only the lines needed: benchmarks point this at a 1 GiB file.
            Some(f) => {
                use std::io::BufRead;
                let file = std::io::BufReader::new(std::fs::File::open(ctx.root.join(f))?);
                file.lines()
                    .take(p.rows.max(0) as usize)
                    .collect::<Result<_, _>>()?
            }
            None => Vec::new(),
        };
        let mut output = Output::default();
        for split in ["train", "test"] {
            let ids: Vec<i64> = (0..p.rows).collect();
            let values: Vec<i64> = ids.iter().map(|i| i + p.offset).collect();
            let text: Vec<String> = ids
                .iter()
                .map(|&i| {
                    lines
                        .get(i as usize)
                        .cloned()
                        .unwrap_or_else(|| format!("{split} row {i}"))
                })
                .collect();
            let schema = Schema::new(vec![
                Field::new("id", DataType::Int64, false),
                Field::new("value", DataType::Int64, false),
                Field::new("text", DataType::Utf8, false),
            ])
            .with_metadata(std::collections::HashMap::from([(
                "source".to_string(),
                "test".to_string(),
            )]));
            let batch = RecordBatch::try_new(
                Arc::new(schema),
                vec![
                    Arc::new(Int64Array::from(ids)),
                    Arc::new(Int64Array::from(values)),
                    Arc::new(StringArray::from(text)),
                ],
            )?;
            output.tables.insert(split.to_string(), batch);
        }
        if p.write_file {
            std::fs::create_dir_all(ctx.out_dir.join("sub"))?;
            std::fs::write(
                ctx.out_dir.join("sub/note.txt"),
                format!("rows={}\n", p.rows),
            )?;
        }
        output.metrics.insert("rows".into(), p.rows.into());
        if let Some(score) = p.score {
            output.metrics.insert("score".into(), score.into());
        }
        Ok(output)
    }
}

#[derive(Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MapParams {
    /// Added to `value`. Default 0.
    #[serde(default)]
    add: i64,
    /// Values above this are clamped to it (lets a param change leave the output unchanged).
    #[serde(default)]
    clamp: Option<i64>,
    #[serde(default)]
    sleep_ms: u64,
    /// Fail on purpose (with a hint). Default false.
    #[serde(default)]
    fail: bool,
    /// Panic on purpose. Default false.
    #[serde(default)]
    panic: bool,
}

fn map_run(p: &MapParams, ctx: &Context) -> Result<Output, StageError> {
    log_execution(ctx.stage);
    nap(p.sleep_ms, ctx)?;
    if p.fail {
        return Err(StageError::failed("failing on purpose (fail: true)")
            .with_hint("remove `fail: true` to let it succeed"));
    }
    if p.panic {
        panic!("panicking on purpose (panic: true)");
    }
    let mut output = Output::default();
    let mut total = 0i64;
    for input in ctx.inputs {
        for (split, batch) in &input.tables {
            let idx = batch.schema().index_of("value")?;
            let values = batch
                .column(idx)
                .as_any()
                .downcast_ref::<Int64Array>()
                .ok_or_else(|| StageError::failed("`value` is not int64"))?;
            let mapped: Int64Array = values
                .iter()
                .map(|v| {
                    v.map(|v| {
                        let x = v + p.add;
                        p.clamp.map_or(x, |c| x.min(c))
                    })
                })
                .collect();
            total += mapped.iter().flatten().sum::<i64>();
            let mut columns = batch.columns().to_vec();
            columns[idx] = Arc::new(mapped);
            let key = if output.tables.contains_key(split) {
                format!("{}-{split}", input.stage)
            } else {
                split.clone()
            };
            output
                .tables
                .insert(key, RecordBatch::try_new(batch.schema(), columns)?);
        }
        if let Some(path) = input.files.values().next() {
            let text = std::fs::read_to_string(path)?;
            std::fs::write(ctx.out_dir.join("copied.txt"), text)?;
        }
    }
    ctx.progress.set_total(1, "tables");
    ctx.progress.advance(1);
    output.metrics.insert("sum".into(), total.into());
    Ok(output)
}

/// `test-map`: adds `add` to the `value` column of every input table (a CPU stage).
pub struct TestMap;

impl Stage for TestMap {
    type Params = MapParams;
    const KIND: &'static str = "test-map";
    const VERSION: u32 = 1;
    const INPUTS: Arity = Arity::AtLeast(1);
    const SUMMARY: &'static str = "(tests) adds a number to a column";

    fn run(p: &MapParams, ctx: &Context) -> Result<Output, StageError> {
        map_run(p, ctx)
    }
}

/// `test-device-map`: as `test-map`, but a device stage.
pub struct TestDeviceMap;

impl Stage for TestDeviceMap {
    type Params = MapParams;
    const KIND: &'static str = "test-device-map";
    const VERSION: u32 = 1;
    const USES_DEVICE: bool = true;
    const INPUTS: Arity = Arity::AtLeast(1);
    const SUMMARY: &'static str = "(tests) adds a number to a column, on the device queue";

    fn run(p: &MapParams, ctx: &Context) -> Result<Output, StageError> {
        map_run(p, ctx)
    }
}

#[derive(Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct JoinParams {
    /// Multiplies the `left` values before the others are added. Default 1.
    #[serde(default = "one")]
    times: i64,
}

fn one() -> i64 {
    1
}

/// The `value` column of `input`'s table `split`.
fn values(input: &Input, split: &str) -> Result<Vec<i64>, StageError> {
    let batch = input.table(split)?;
    let column = batch.column(batch.schema().index_of("value")?);
    let values = column
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| StageError::failed("`value` is not int64"))?;
    Ok(values.iter().map(|v| v.unwrap_or(0)).collect())
}

/// `slot:stage`, with the upstream's sweep values when it is a cell: `right:b-2[n=2]`.
fn describe(input: &Input) -> String {
    let matrix: Vec<String> = input
        .matrix
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let matrix = if matrix.is_empty() {
        String::new()
    } else {
        format!("[{}]", matrix.join(","))
    };
    format!("{}:{}{matrix}", input.slot.unwrap_or("-"), input.stage)
}

/// `test-join`: `left` × `times` plus every `right` (and the optional `bias`), row by row.
pub struct TestJoin;

impl Stage for TestJoin {
    type Params = JoinParams;
    const KIND: &'static str = "test-join";
    const VERSION: u32 = 1;
    const INPUT_SLOTS: &'static [InputSlot] = &[
        InputSlot::new("left", Arity::One).from_kinds(&["test-source"]),
        InputSlot::new("right", Arity::AtLeast(1)),
        InputSlot::new("bias", Arity::Range(0, 1)),
    ];
    const SUMMARY: &'static str = "(tests) adds named inputs' values row by row";

    fn run(p: &JoinParams, ctx: &Context) -> Result<Output, StageError> {
        log_execution(ctx.stage);
        let left = ctx.input("left")?;
        let others: Vec<&Input> = ctx
            .inputs_for("right")
            .into_iter()
            .chain(ctx.optional_input("bias")?)
            .collect();
        let mut output = Output::default();
        for (split, batch) in &left.tables {
            let mut sum: Vec<i64> = values(left, split)?.iter().map(|v| v * p.times).collect();
            for other in &others {
                for (total, v) in sum.iter_mut().zip(values(other, split)?) {
                    *total += v;
                }
            }
            let mut columns = batch.columns().to_vec();
            columns[batch.schema().index_of("value")?] = Arc::new(Int64Array::from(sum));
            output.tables.insert(
                split.clone(),
                RecordBatch::try_new(batch.schema(), columns)?,
            );
        }
        let from: Vec<String> = ctx.inputs.iter().map(describe).collect();
        output.metrics.insert("from".into(), from.join(" ").into());
        Ok(output)
    }
}

//! The closed set of stage kinds. Adding a kind is one line here.

use std::any::Any;

use crate::api::{Arity, Context, External, InputSlot, Output, PrepareEnv, Stage, StageError};

/// A kind, type-erased so the engine can look it up by name.
pub struct Kind {
    pub name: &'static str,
    pub version: u32,
    pub uses_device: bool,
    /// How many inputs it takes as a list (`Arity::None` for a kind with named inputs).
    pub inputs: Arity,
    /// Its named inputs; empty for a kind that takes a list.
    pub slots: &'static [InputSlot],
    /// Whether it reads its inputs' metrics (which then enter its fingerprint).
    pub reads_metrics: bool,
    pub summary: &'static str,
    /// Predictions on new texts from the stage's files (`cairn predict`), for model kinds.
    pub predict: Option<crate::api::PredictFn>,
    /// Figures drawn from the stage's cached tables when they are looked at (`cairn report`).
    pub figures: Option<crate::api::FiguresFn>,
    /// The JSON Schema (draft-07) of its params, for `cairn schema`.
    pub params_schema: fn() -> serde_json::Value,
    /// Typed params (deserialize + re-serialize): the canonical form, or a serde error.
    parse: fn(serde_json::Value) -> Result<Parsed, ParamParseError>,
}

/// Params that passed the kind's typed deserialization.
pub struct Parsed {
    /// The params with every default filled in, as the fingerprint sees them.
    pub canonical: serde_json::Value,
    typed: Box<dyn Any + Send + Sync>,
    externals: fn(&(dyn Any + Send + Sync), &PrepareEnv) -> Result<Vec<External>, StageError>,
    run: fn(&(dyn Any + Send + Sync), &Context) -> Result<Output, StageError>,
}

impl Parsed {
    /// Validates the params ([`Stage::validate`]), then declares their externals
    /// ([`Stage::externals`]): the engine calls this once, at resolve time, before any stage
    /// runs.
    pub fn externals(&self, env: &PrepareEnv) -> Result<Vec<External>, StageError> {
        (self.externals)(self.typed.as_ref(), env)
    }
    pub fn run(&self, ctx: &Context) -> Result<Output, StageError> {
        (self.run)(self.typed.as_ref(), ctx)
    }
}

/// A typed-params error with the path of the offending field (`["max-length"]`).
#[derive(Debug)]
pub struct ParamParseError {
    pub path: Vec<String>,
    pub message: String,
}

impl Kind {
    /// Whether stages of this kind name their inputs (`inputs: {slot: stage}`).
    pub fn named_inputs(&self) -> bool {
        !self.slots.is_empty()
    }

    /// The named input `name`, if the kind has one.
    pub fn slot(&self, name: &str) -> Option<&'static InputSlot> {
        self.slots.iter().find(|s| s.name == name)
    }

    pub fn parse(&self, params: serde_json::Value) -> Result<Parsed, ParamParseError> {
        (self.parse)(params)
    }
}

const fn kind<S: Stage>() -> Kind {
    // Checked when the registry compiles: a stage writes its inputs one way or the other.
    assert!(
        S::INPUT_SLOTS.is_empty() || matches!(S::INPUTS, Arity::None),
        "a kind declares INPUTS (a list) or INPUT_SLOTS (by name), not both"
    );
    Kind {
        name: S::KIND,
        version: S::VERSION,
        uses_device: S::USES_DEVICE,
        inputs: S::INPUTS,
        slots: S::INPUT_SLOTS,
        reads_metrics: S::READS_METRICS,
        summary: S::SUMMARY,
        predict: S::PREDICT,
        figures: S::FIGURES,
        params_schema: params_schema::<S>,
        parse: parse::<S>,
    }
}

fn params_schema<S: Stage>() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    serde_json::to_value(generator.into_root_schema_for::<S::Params>()).expect("schema")
}

fn parse<S: Stage>(value: serde_json::Value) -> Result<Parsed, ParamParseError> {
    let typed: S::Params = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e
            .path()
            .iter()
            .filter_map(|seg| match seg {
                serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
                _ => None,
            })
            .collect();
        ParamParseError {
            path,
            message: e.into_inner().to_string(),
        }
    })?;
    let canonical = serde_json::to_value(&typed).expect("params serialize");
    Ok(Parsed {
        canonical,
        typed: Box::new(typed),
        externals: |p, env| {
            let params = p.downcast_ref::<S::Params>().expect("params type");
            S::validate(params, env)?;
            S::externals(params, env)
        },
        run: |p, ctx| S::run(p.downcast_ref::<S::Params>().expect("params type"), ctx),
    })
}

/// Every kind cairn knows, in the order `cairn kinds` lists them.
pub static KINDS: &[Kind] = &[
    kind::<crate::kinds::load::Load>(),
    kind::<crate::kinds::describe::Describe>(),
    kind::<crate::kinds::sample::Sample>(),
    kind::<crate::kinds::concat::Concat>(),
    kind::<crate::kinds::normalize::Normalize>(),
    kind::<crate::kinds::pretokenize::Pretokenize>(),
    kind::<crate::kinds::tokenize::Tokenize>(),
    kind::<crate::kinds::align_labels::AlignLabels>(),
    kind::<crate::kinds::extract_hidden::ExtractHidden>(),
    kind::<crate::kinds::scale::Scale>(),
    kind::<crate::kinds::project::Project>(),
    kind::<crate::kinds::classify::Classify>(),
    kind::<crate::kinds::evaluate::Evaluate>(),
    kind::<crate::kinds::finetune::Finetune>(),
    kind::<crate::kinds::predict::Predict>(),
    kind::<crate::kinds::compare::Compare>(),
    #[cfg(feature = "test-kinds")]
    kind::<crate::testing::TestSource>(),
    #[cfg(feature = "test-kinds")]
    kind::<crate::testing::TestMap>(),
    #[cfg(feature = "test-kinds")]
    kind::<crate::testing::TestDeviceMap>(),
    #[cfg(feature = "test-kinds")]
    kind::<crate::testing::TestJoin>(),
];

/// The kinds a user's build has: [`KINDS`] without the `test-*` kinds that exist only in test
/// builds (feature `test-kinds`).
pub fn user_kinds() -> impl Iterator<Item = &'static Kind> {
    KINDS.iter().filter(|k| !k.name.starts_with("test-"))
}

/// Looks a kind up by its YAML name.
pub fn lookup(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The engine resolves a stage through `Parsed::externals`: a wrong param must be found
    /// there, by `validate`, before `externals` looks for the model (which does not exist).
    #[test]
    fn params_are_validated_before_externals_are_resolved() {
        let env = PrepareEnv {
            root: std::path::Path::new("."),
            offline: true,
        };
        let cases = [
            (
                "finetune",
                r#"{"model": "no/such-model", "epochs": 0}"#,
                "epochs",
            ),
            (
                "extract-hidden",
                r#"{"model": "no/such-model", "batch-size": 0}"#,
                "batch-size",
            ),
            ("project", r#"{"n-components": 1}"#, "n-components"),
            ("classify", r#"{"method": "most-frequent", "C": -1}"#, "C"),
        ];
        for (kind, params, want) in cases {
            let parsed = lookup(kind)
                .expect("kind")
                .parse(serde_json::from_str(params).expect("json"))
                .map_err(|e| e.message)
                .expect("params parse");
            match parsed.externals(&env) {
                Err(StageError::Param { field, .. }) => assert_eq!(field, want, "{kind}"),
                Err(other) => panic!("{kind}: {other}"),
                Ok(_) => panic!("{kind}: accepted"),
            }
        }
    }
}

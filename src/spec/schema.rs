//! The JSON Schema (draft-07) of a pipeline file, for editors (`# yaml-language-server:
//! $schema=...`): the top level, the engine's stage keys, and each kind's params as its typed
//! params describe them (their doc comments become descriptions). Any param value may also be
//! a `${params.x}` or `${matrix.x}` reference, which the schema cannot see through.

use serde_json::{Map, Value, json};

use cairn_stages::registry::{Kind, user_kinds};

/// What a `${params.x}` / `${matrix.x}` reference looks like (a whole value).
const REFERENCE: &str = r"^\$\{(params|matrix)\.[A-Za-z0-9_.-]+\}$";

/// The schema of a pipeline file with every kind this build knows.
pub fn pipeline_schema() -> Value {
    let mut definitions = Map::new();
    definitions.insert(
        "reference".into(),
        json!({
            "type": "string",
            "pattern": REFERENCE,
            "description": "a value from the pipeline's `params:` or the stage's `matrix:`",
        }),
    );
    let mut dispatch = Vec::new();
    for kind in user_kinds() {
        let stage = stage_schema(kind, &mut definitions);
        let name = format!("stage-{}", kind.name);
        definitions.insert(name.clone(), stage);
        dispatch.push(json!({
            "if": {"properties": {"kind": {"const": kind.name}}, "required": ["kind"]},
            "then": {"$ref": format!("#/definitions/{name}")},
        }));
    }
    let names: Vec<&str> = user_kinds().map(|k| k.name).collect();
    definitions.insert("stage".into(), json!({
        "type": "object",
        "required": ["kind"],
        "properties": {"kind": {"enum": names, "description": "the stage kind (`cairn kinds`)"}},
        "allOf": dispatch,
    }));
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://cairn.dev/pipeline.schema.json",
        "title": "cairn pipeline",
        "description": "A cairn pipeline: named stages of stage kinds, run as a cached DAG.",
        "type": "object",
        "additionalProperties": false,
        "required": ["name", "stages"],
        "properties": {
            "name": {"type": "string", "description": "names the manifest: cache/manifests/<name>.yaml"},
            "description": {"type": "string", "description": "free text for people"},
            "root": {"type": "string", "description": "directory relative paths resolve against, relative to this file"},
            "params": {"type": "object", "description": "values referenced as ${params.name} in stage params"},
            "stages": {
                "type": "object",
                "description": "stage id → stage, in any order (inputs make the graph)",
                "additionalProperties": {"$ref": "#/definitions/stage"},
            },
        },
        "definitions": definitions,
    })
}

/// One kind's stage: its params (references allowed anywhere) plus the engine's keys.
fn stage_schema(kind: &Kind, definitions: &mut Map<String, Value>) -> Value {
    let mut params = (kind.params_schema)();
    let prefix = format!("{}.", kind.name);
    // The kind's own definitions join the document's, under the kind's name.
    if let Some(Value::Object(defs)) = params.as_object_mut().and_then(|o| o.remove("definitions"))
    {
        for (name, mut def) in defs {
            retarget_refs(&mut def, &prefix);
            allow_references(&mut def);
            definitions.insert(format!("{prefix}{name}"), def);
        }
    }
    if let Some(o) = params.as_object_mut() {
        for key in ["$schema", "title"] {
            o.remove(key);
        }
    }
    retarget_refs(&mut params, &prefix);
    allow_references(&mut params);
    add_engine_keys(&mut params, kind);
    params
}

/// `#/definitions/X` → `#/definitions/<kind>.X`.
fn retarget_refs(v: &mut Value, prefix: &str) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get_mut("$ref")
                && let Some(name) = r.strip_prefix("#/definitions/")
            {
                *r = format!("#/definitions/{prefix}{name}");
            }
            o.values_mut().for_each(|v| retarget_refs(v, prefix));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| retarget_refs(v, prefix)),
        _ => {}
    }
}

/// Every property, item and map value may instead be a reference.
fn allow_references(v: &mut Value) {
    let Value::Object(o) = v else {
        return;
    };
    for (key, child) in o.iter_mut() {
        match key.as_str() {
            "properties" => {
                if let Value::Object(props) = child {
                    for prop in props.values_mut() {
                        allow_references(prop);
                        *prop = either_reference(std::mem::take(prop));
                    }
                }
            }
            "items" | "additionalProperties" if child.is_object() => {
                allow_references(child);
                *child = either_reference(std::mem::take(child));
            }
            _ => match child {
                Value::Object(_) => allow_references(child),
                Value::Array(items) => items.iter_mut().for_each(allow_references),
                _ => {}
            },
        }
    }
}

/// The schema, or a reference; its description and default stay on top, where editors look.
fn either_reference(mut schema: Value) -> Value {
    let mut wrapper = Map::new();
    if let Value::Object(o) = &mut schema {
        for key in ["description", "default"] {
            if let Some(v) = o.remove(key) {
                wrapper.insert(key.into(), v);
            }
        }
    }
    wrapper.insert(
        "anyOf".into(),
        json!([schema, {"$ref": "#/definitions/reference"}]),
    );
    Value::Object(wrapper)
}

/// `kind`, `inputs`, `matrix`, `description` and (device kinds) `device` beside the params,
/// in every object alternative of the params schema.
fn add_engine_keys(params: &mut Value, kind: &Kind) {
    let Value::Object(o) = params else {
        return;
    };
    if let Some(Value::Object(props)) = o.get_mut("properties") {
        props.insert("kind".into(), json!({"const": kind.name}));
        props.insert("description".into(), json!({"type": "string"}));
        props.insert("inputs".into(), inputs_schema(kind));
        props.insert("matrix".into(), json!({
            "type": "object",
            "description": "expand this stage over values (their cartesian product): one stage per cell, id `<stage>-<value>...`",
            "additionalProperties": {"anyOf": [{"type": "array"}, {"$ref": "#/definitions/reference"}]},
        }));
        if kind.uses_device {
            props.insert(
                "device".into(),
                json!({
                    "type": "string",
                    "pattern": r"^(auto|cpu|cuda|cuda:[0-9]+)$",
                    "description": "overrides --device for this stage",
                }),
            );
        }
    }
    for alternatives in ["oneOf", "anyOf", "allOf"] {
        if let Some(Value::Array(items)) = o.get_mut(alternatives) {
            items
                .iter_mut()
                .for_each(|item| add_engine_keys(item, kind));
        }
    }
}

/// A list of stage ids, or for a kind with named inputs a map of input name → stage id.
fn inputs_schema(kind: &Kind) -> Value {
    let id = json!({"type": "string", "description": "a stage id, `stage.split` for one split"});
    if kind.named_inputs() {
        let slots: Map<String, Value> = kind
            .slots
            .iter()
            .map(|s| {
                (
                    s.name.to_string(),
                    json!({"anyOf": [id, {"type": "array", "items": id}]}),
                )
            })
            .collect();
        json!({"type": "object", "properties": slots, "additionalProperties": false})
    } else {
        json!({"type": "array", "items": id})
    }
}

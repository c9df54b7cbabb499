//! A stage's `inputs:`, as its kind takes them: a list (`inputs: [load, emb.train]`) checked
//! against the kind's arity, or by name (`inputs: {model: ft-de, data: load-en.test}`) checked
//! against the kind's named inputs: each name known, each required one given, each with as many
//! stages as it takes, each stage of a kind it accepts. A sweep's id stands for all its cells.

use cairn_stages::registry::Kind;
use cairn_stages::{Arity, InputSlot};
use serde_yaml::{Mapping, Value as Yaml};

use super::sweep::{Instance, Names, key_text};
use super::{InputRef, Reported, Resolver};
use crate::spec::diagnostic::did_you_mean;

/// What one written input names: its stages, and whether it was a sweep's id.
struct Named {
    refs: Vec<InputRef>,
    sweep: Option<String>,
}

impl Resolver<'_> {
    /// `inputs:` with `${matrix.x}` and `${params.x}` substituted, as the kind takes them.
    pub(super) fn stage_inputs(
        &mut self,
        at: &Instance,
        map: &Mapping,
        names: &Names,
        kind: &Kind,
    ) -> Result<Vec<InputRef>, Reported> {
        let written = match map.get("inputs") {
            None if kind.named_inputs() => Yaml::Mapping(Mapping::new()),
            None => Yaml::Sequence(Vec::new()),
            Some(written) => self.substituted_inputs(at, written)?,
        };
        match (&written, kind.named_inputs()) {
            (Yaml::Sequence(items), false) => self.list_inputs(at, items, names, kind),
            (Yaml::Mapping(slots), true) => self.named_inputs(at, slots, names, kind),
            (Yaml::Mapping(_), false) => Err(self.inputs_shape_error(
                at,
                format!(
                    "a `{}` stage takes its inputs as a list, not by name",
                    kind.name
                ),
                "e.g. `inputs: [load]` (`cairn kinds` lists what each kind takes)".into(),
            )),
            (_, false) => Err(self.inputs_shape_error(
                at,
                "`inputs:` must be a list of stage ids".into(),
                "e.g. `inputs: [load]` or `inputs: [load.train]`".into(),
            )),
            (_, true) => Err(self.inputs_shape_error(
                at,
                format!("a `{}` stage names its inputs", kind.name),
                format!("write `inputs: {{{}}}`", slot_template(kind)),
            )),
        }
    }

    fn substituted_inputs(&mut self, at: &Instance, written: &Yaml) -> Result<Yaml, Reported> {
        let mut inputs = written.clone();
        let before = self.errors.len();
        let mut path = vec!["stages".into(), at.key.clone(), "inputs".into()];
        self.substitute(&mut inputs, &mut path, at);
        if self.errors.len() > before {
            return Err(Reported);
        }
        Ok(inputs)
    }

    fn inputs_shape_error(&mut self, at: &Instance, message: String, hint: String) -> Reported {
        let pos = self.source.locations.value(&["stages", &at.key, "inputs"]);
        self.error(pos, Some(&at.id), message, Some(hint));
        Reported
    }

    /// `inputs: [a, b.split]`, as many as the kind takes.
    fn list_inputs(
        &mut self,
        at: &Instance,
        items: &[Yaml],
        names: &Names,
        kind: &Kind,
    ) -> Result<Vec<InputRef>, Reported> {
        let named: Vec<Result<Named, Reported>> = items
            .iter()
            .enumerate()
            .map(|(i, item)| self.input_refs(at, &["inputs", &i.to_string()], item, names, None))
            .collect();
        let named: Vec<Named> = named.into_iter().collect::<Result<_, _>>()?;
        let sweep = named.iter().find_map(|n| n.sweep.clone());
        let inputs: Vec<InputRef> = named.into_iter().flat_map(|n| n.refs).collect();
        if !kind.inputs.accepts(inputs.len()) {
            let loc = &self.source.locations;
            self.error(
                loc.key(&["stages", &at.key, "inputs"])
                    .or(loc.key(&["stages", &at.key])),
                Some(&at.id),
                format!(
                    "a `{}` stage takes {}, this one has {}",
                    kind.name,
                    kind.inputs.describe(),
                    inputs.len()
                ),
                sweep.map(|s| sweep_hint(&s, names)),
            );
            return Err(Reported);
        }
        Ok(inputs)
    }

    /// `inputs: {slot: a, other: [b, c.split]}`: every slot known and filled as it must be;
    /// the inputs in the order the kind declares its slots.
    fn named_inputs(
        &mut self,
        at: &Instance,
        written: &Mapping,
        names: &Names,
        kind: &Kind,
    ) -> Result<Vec<InputRef>, Reported> {
        let mut filled: Vec<(usize, Vec<InputRef>)> = Vec::new();
        let mut result = Ok(());
        for (name, value) in written {
            let name = key_text(name);
            match self.slot_inputs(at, &name, value, names, kind) {
                Ok((index, refs)) => filled.push((index, refs)),
                Err(reported) => result = Err(reported),
            }
        }
        // A slot written wrong, or misspelt, was reported as such; the others are missing.
        let written: Vec<String> = written.keys().map(key_text).collect();
        let meant = |slot: &InputSlot| {
            let meant = |w: &String| w == slot.name || did_you_mean(w, [slot.name]).is_some();
            written.iter().any(meant)
        };
        for slot in kind.slots.iter().filter(|s| s.required() && !meant(s)) {
            result = Err(self.missing_slot(at, slot, kind));
        }
        result?;
        filled.sort_by_key(|(index, _)| *index);
        Ok(filled.into_iter().flat_map(|(_, refs)| refs).collect())
    }

    /// One named input: a known slot, given a stage or a list of them, as many as it takes, of
    /// the kinds it takes. Returns the slot's place among the kind's slots, and its inputs.
    fn slot_inputs(
        &mut self,
        at: &Instance,
        name: &str,
        value: &Yaml,
        names: &Names,
        kind: &Kind,
    ) -> Result<(usize, Vec<InputRef>), Reported> {
        let Some(index) = kind.slots.iter().position(|s| s.name == name) else {
            return Err(self.unknown_slot(at, name, kind));
        };
        let slot = &kind.slots[index];
        let (items, listed) = match value {
            Yaml::Sequence(items) => (items.iter().collect(), true),
            one => (vec![one], false),
        };
        let indices: Vec<String> = (0..items.len()).map(|i| i.to_string()).collect();
        let mut refs = Vec::new();
        let mut sweep = None;
        for (item, index) in items.into_iter().zip(&indices) {
            let mut path = vec!["inputs", name];
            if listed {
                path.push(index);
            }
            let named = self.input_refs(at, &path, item, names, Some(slot.name))?;
            self.check_upstream_kinds(at, &path, &named.refs, slot, names)?;
            sweep = sweep.or(named.sweep);
            refs.extend(named.refs);
        }
        if !slot.arity.accepts(refs.len()) {
            let pos = self
                .source
                .locations
                .value(&["stages", &at.key, "inputs", name]);
            let message = format!(
                "input `{name}` of a `{}` stage takes {}, this one has {}",
                kind.name,
                slot_arity(slot),
                refs.len()
            );
            self.error(
                pos,
                Some(&at.id),
                message,
                sweep.map(|s| sweep_hint(&s, names)),
            );
            return Err(Reported);
        }
        Ok((index, refs))
    }

    /// One written input, `stage`, `stage.split` or a sweep's id (all its cells), at `path`
    /// under the stage.
    fn input_refs(
        &mut self,
        at: &Instance,
        path: &[&str],
        item: &Yaml,
        names: &Names,
        slot: Option<&'static str>,
    ) -> Result<Named, Reported> {
        let mut full = vec!["stages", at.key.as_str()];
        full.extend(path);
        let pos = self.source.locations.value(&full);
        let Some(text) = item.as_str() else {
            self.error(
                pos,
                Some(&at.id),
                "an input must be a stage id (string)".into(),
                None,
            );
            return Err(Reported);
        };
        let (stage, split) = match text.split_once('.') {
            Some((s, sp)) => (s, Some(sp.to_string())),
            None => (text, None),
        };
        let (stages, sweep) = match names.sweeps.get(stage) {
            // Its `matrix:` is wrong, and reported there.
            Some(None) => return Err(Reported),
            Some(Some(cells)) => (cells.clone(), Some(stage.to_string())),
            None if names.ids.iter().any(|id| id == stage) => (vec![stage.to_string()], None),
            None => return Err(self.unknown_input(at, pos, text, stage, names)),
        };
        let refs = stages
            .into_iter()
            .map(|stage| InputRef {
                matrix: names.cells.get(&stage).cloned().unwrap_or_default(),
                stage,
                split: split.clone(),
                slot,
            })
            .collect();
        Ok(Named { refs, sweep })
    }

    /// Each upstream stage must be of a kind the slot takes (when it names kinds).
    fn check_upstream_kinds(
        &mut self,
        at: &Instance,
        path: &[&str],
        refs: &[InputRef],
        slot: &InputSlot,
        names: &Names,
    ) -> Result<(), Reported> {
        if slot.kinds.is_empty() {
            return Ok(());
        }
        let wrong = refs.iter().find_map(|r| {
            let kind = names.kinds.get(&r.stage)?;
            (!slot.kinds.contains(&kind.as_str())).then(|| (r.stage.clone(), kind.clone()))
        });
        let Some((stage, kind)) = wrong else {
            return Ok(());
        };
        let mut full = vec!["stages", at.key.as_str()];
        full.extend(path);
        let wanted = kinds_listing(slot.kinds);
        let candidates: Vec<&str> = names
            .ids
            .iter()
            .filter(|id| {
                names
                    .kinds
                    .get(*id)
                    .is_some_and(|k| slot.kinds.contains(&k.as_str()))
            })
            .map(String::as_str)
            .collect();
        let hint = if candidates.is_empty() {
            format!("this pipeline has no {wanted} stage to name here")
        } else {
            format!("{wanted} stages here: {}", candidates.join(", "))
        };
        self.error(
            self.source.locations.value(&full),
            Some(&at.id),
            format!(
                "input `{}` takes the output of a {wanted} stage, but `{stage}` is a `{kind}` stage",
                slot.name
            ),
            Some(hint),
        );
        Err(Reported)
    }

    fn unknown_input(
        &mut self,
        at: &Instance,
        pos: Option<crate::spec::yaml::Pos>,
        text: &str,
        stage: &str,
        names: &Names,
    ) -> Reported {
        let known = names.ids.iter().chain(names.sweeps.keys());
        let hint = match did_you_mean(stage, known.map(String::as_str)) {
            Some(m) => format!("did you mean `{m}`?"),
            None => format!("stages in this pipeline: {}", names.written.join(", ")),
        };
        self.error(
            pos,
            Some(&at.id),
            format!("input `{text}` names no stage of this pipeline"),
            Some(hint),
        );
        Reported
    }

    fn unknown_slot(&mut self, at: &Instance, name: &str, kind: &Kind) -> Reported {
        let slots = kind.slots.iter().map(|s| s.name);
        let hint = match did_you_mean(name, slots) {
            Some(m) => format!("did you mean `{m}`? {}", slots_hint(kind)),
            None => slots_hint(kind),
        };
        self.error(
            self.source
                .locations
                .key(&["stages", &at.key, "inputs", name]),
            Some(&at.id),
            format!("a `{}` stage has no input `{name}`", kind.name),
            Some(hint),
        );
        Reported
    }

    fn missing_slot(&mut self, at: &Instance, slot: &InputSlot, kind: &Kind) -> Reported {
        let loc = &self.source.locations;
        self.error(
            loc.key(&["stages", &at.key, "inputs"])
                .or(loc.key(&["stages", &at.key])),
            Some(&at.id),
            format!("the stage does not name its input `{}`", slot.name),
            Some(slots_hint(kind)),
        );
        Reported
    }
}

/// `model: STAGE, data: [STAGE, …]`: what a kind's `inputs:` looks like.
fn slot_template(kind: &Kind) -> String {
    let slots: Vec<String> = kind
        .slots
        .iter()
        .map(|s| match s.arity.accepts(2) {
            true => format!("{}: [STAGE, …]", s.name),
            false => format!("{}: STAGE", s.name),
        })
        .collect();
    slots.join(", ")
}

/// What each named input of a kind takes.
fn slots_hint(kind: &Kind) -> String {
    let slots: Vec<String> = kind
        .slots
        .iter()
        .map(|s| {
            let from = match s.kinds {
                [] => String::new(),
                kinds => format!(", from a {} stage", kinds_listing(kinds)),
            };
            format!("`{}` ({}{from})", s.name, slot_arity(s))
        })
        .collect();
    format!("a `{}` stage's inputs: {}", kind.name, slots.join(", "))
}

/// How many stages a named input takes, in words.
fn slot_arity(slot: &InputSlot) -> String {
    match slot.arity {
        Arity::Range(0, 1) => "at most one input".into(),
        Arity::AtLeast(0) => "any number of inputs".into(),
        arity => arity.describe(),
    }
}

/// `` `finetune` `` or `` `a` or `b` ``.
fn kinds_listing(kinds: &[&str]) -> String {
    let quoted: Vec<String> = kinds.iter().map(|k| format!("`{k}`")).collect();
    quoted.join(" or ")
}

/// When a sweep's id brought in more stages than the input takes.
fn sweep_hint(sweep: &str, names: &Names) -> String {
    let cells = names
        .sweeps
        .get(sweep)
        .and_then(Option::as_ref)
        .map(|c| c.join(", "))
        .unwrap_or_default();
    format!("`{sweep}` names every cell of its sweep ({cells}); name one cell to take just it")
}

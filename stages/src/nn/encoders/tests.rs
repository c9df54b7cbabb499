//! Fidelity against Python `transformers` (fixtures from scripts/reference/encoder_fixtures.py):
//! tiny random BERT / DistilBERT / XLM-R models and all-MiniLM-L6-v2 on real tweets, every batch
//! padded.

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use super::*;

const TOLERANCE: f32 = 1e-4;

/// The device the fidelity tests run on: the CPU, or `CAIRN_TEST_DEVICE=cuda:N` in a build with
/// the `cuda` feature (scripts/gpu-check.sh), so the same tolerances check the GPU path.
fn test_device() -> Device {
    match std::env::var("CAIRN_TEST_DEVICE").ok().as_deref() {
        None | Some("cpu") => Device::Cpu,
        Some(d) => {
            let ordinal = d.strip_prefix("cuda:").and_then(|i| i.parse().ok());
            let ordinal = ordinal.unwrap_or_else(|| panic!("CAIRN_TEST_DEVICE={d}: use cuda:N"));
            Device::new_cuda(ordinal).unwrap_or_else(|e| panic!("CAIRN_TEST_DEVICE={d}: {e}"))
        }
    }
}

/// A fixture tensor on the test device.
fn on(dev: &Device, t: &Tensor) -> Tensor {
    t.to_device(dev).unwrap()
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/encoders")
}

fn read(path: &std::path::Path) -> std::collections::HashMap<String, Tensor> {
    candle_core::safetensors::load(path, &Device::Cpu).unwrap()
}

/// max |a - b| over the positions where `mask` is 1 (`a`, `b`: `[b, t, h]`), and over all.
fn max_abs_diff(a: &Tensor, b: &Tensor, mask: &Tensor) -> (f32, f32) {
    let d = (a - b).unwrap().abs().unwrap();
    let all = d
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let m = mask.to_dtype(DType::F32).unwrap().unsqueeze(2).unwrap();
    let real = d
        .broadcast_mul(&m)
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    (real, all)
}

fn check_tiny(name: &str) -> f32 {
    let dir = fixtures().join(name);
    let dev = test_device();
    let (encoder, cfg) = Encoder::from_dir(&dir, DType::F32, &dev).unwrap();
    let t = read(&dir.join("expected.safetensors"));
    let ids = on(&dev, &t["input_ids"].to_dtype(DType::U32).unwrap());
    let mask = &t["attention_mask"];
    let types = on(&dev, &t["token_type_ids"].to_dtype(DType::U32).unwrap());
    // Padding really is in the batch.
    let real: f32 = mask
        .to_dtype(DType::F32)
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar()
        .unwrap();
    assert!(
        (real as usize) < mask.elem_count(),
        "{name}: no padding in the fixture batch"
    );
    let types = cfg.uses_token_types().then_some(&types);
    let out = encoder
        .forward(&ids, &on(&dev, mask), types, false)
        .unwrap();
    let out = out.to_device(&Device::Cpu).unwrap();
    let first = encoder
        .first_token_state(&ids, &on(&dev, mask), types)
        .unwrap()
        .to_device(&Device::Cpu)
        .unwrap();
    let cls = out.narrow(1, 0, 1).unwrap().squeeze(1).unwrap();
    let d = (&first - &cls)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(
        d <= 1e-5,
        "{name}: first_token_state is {d} from forward()[:, 0]"
    );
    let (real_diff, all_diff) = max_abs_diff(&out, &t["hidden"], mask);
    eprintln!("{name}: max |Δ| {real_diff:e} over tokens, {all_diff:e} with pad positions");
    assert!(
        real_diff <= TOLERANCE,
        "{name}: max |Δ| {real_diff} > {TOLERANCE}"
    );
    assert!(
        all_diff <= TOLERANCE,
        "{name}: pad positions: max |Δ| {all_diff}"
    );
    real_diff
}

#[test]
fn tiny_bert_matches_transformers() {
    check_tiny("bert");
}

#[test]
fn tiny_distilbert_matches_transformers_mask_and_erf_gelu() {
    check_tiny("distilbert");
}

#[test]
fn tiny_xlm_roberta_matches_transformers_position_ids_skip_pads() {
    check_tiny("xlm_roberta");
}

#[test]
fn xlm_roberta_position_ids_start_after_padding_idx() {
    let ids = Tensor::new(&[[0u32, 5, 6, 2, 1, 1], [0, 7, 2, 1, 1, 1]], &Device::Cpu).unwrap();
    let pos = xlm_roberta::position_ids(&ids, 1)
        .unwrap()
        .to_vec2::<u32>()
        .unwrap();
    assert_eq!(pos, vec![vec![2, 3, 4, 5, 1, 1], vec![2, 3, 4, 1, 1, 1]]);
}

/// The training path (differentiable layer norm and softmax, dropout 0) computes what the
/// inference path does, and gradients reach every parameter.
#[test]
fn training_path_matches_inference_and_backpropagates() {
    for name in ["bert", "distilbert", "xlm_roberta"] {
        let dir = fixtures().join(name);
        let cfg = Config::from_file(&dir.join("config.json")).unwrap();
        let dev = test_device();
        let mut varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
        let mut encoder = Encoder::load(vb, &cfg).unwrap();
        varmap.load(dir.join("model.safetensors")).unwrap();
        encoder.set_dropout(0.0);
        let t = read(&dir.join("expected.safetensors"));
        let ids = on(&dev, &t["input_ids"].to_dtype(DType::U32).unwrap());
        let types = on(&dev, &t["token_type_ids"].to_dtype(DType::U32).unwrap());
        let types = cfg.uses_token_types().then_some(&types);
        let mask = &t["attention_mask"];
        let on_dev_mask = on(&dev, mask);
        let train = encoder.forward(&ids, &on_dev_mask, types, true).unwrap();
        let eval = encoder.forward(&ids, &on_dev_mask, types, false).unwrap();
        let grads =
            super::train_layers::backward(&train.sqr().unwrap().sum_all().unwrap()).unwrap();
        let (train, eval) = (
            train.to_device(&Device::Cpu).unwrap(),
            eval.to_device(&Device::Cpu).unwrap(),
        );
        let (d, _) = max_abs_diff(&train, &eval, mask);
        assert!(d <= 1e-5, "{name}: train vs eval max |Δ| {d}");
        let (d, _) = max_abs_diff(&train, &t["hidden"], mask);
        assert!(
            d <= TOLERANCE,
            "{name}: train path vs transformers max |Δ| {d}"
        );
        let vars = varmap.data().lock().unwrap();
        let missing: Vec<&String> = vars
            .iter()
            .filter(|(_, v)| grads.get(v.as_tensor()).is_none())
            .map(|(k, _)| k)
            .collect();
        // Position rows past the batch length and unused types get zero gradients, but every
        // parameter is on the graph.
        assert!(missing.is_empty(), "{name}: no gradient for {missing:?}");
    }
}

#[test]
fn dropout_is_active_only_in_training() {
    let dir = fixtures().join("bert");
    let (encoder, _) = Encoder::from_dir(&dir, DType::F32, &Device::Cpu).unwrap();
    let t = read(&dir.join("expected.safetensors"));
    let ids = t["input_ids"].to_dtype(DType::U32).unwrap();
    let mask = &t["attention_mask"];
    let a = encoder.forward(&ids, mask, None, true).unwrap();
    let b = encoder.forward(&ids, mask, None, false).unwrap();
    let (d, _) = max_abs_diff(&a, &b, mask);
    assert!(d > 1e-3, "dropout did nothing in training mode");
}

#[test]
fn unsupported_model_type_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    std::fs::write(&path, r#"{"model_type": "gpt2"}"#).unwrap();
    let e = Config::from_file(&path).unwrap_err().to_string();
    assert!(e.contains("gpt2") && e.contains("not supported"), "{e}");
}

/// all-MiniLM-L6-v2 (from the Hugging Face cache) on 32 real tweets padded in one batch.
#[test]
fn minilm_matches_transformers_on_tweets() {
    let dir = crate::hub::model::HubRepo::parse(
        crate::hub::model::RepoKind::Model,
        "sentence-transformers/all-MiniLM-L6-v2",
    )
    .unwrap()
    .cached_snapshot(&crate::hub::model::hub_cache_dir())
    .expect("all-MiniLM-L6-v2 is not in the Hugging Face cache: run scripts/setup.sh");
    let dev = test_device();
    let (encoder, _) = Encoder::from_dir(&dir, DType::F32, &dev).unwrap();
    let t = read(&fixtures().join("minilm-emotion.safetensors"));
    let ids = on(&dev, &t["input_ids"].to_dtype(DType::U32).unwrap());
    let types = on(&dev, &t["token_type_ids"].to_dtype(DType::U32).unwrap());
    let mask = &t["attention_mask"];
    let out = encoder
        .forward(&ids, &on(&dev, mask), Some(&types), false)
        .unwrap();
    let out = out.to_device(&Device::Cpu).unwrap();
    let cls = out.narrow(1, 0, 1).unwrap().squeeze(1).unwrap();
    let d_cls: f32 = (&cls - &t["cls"])
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap();
    // The [CLS] readout that runs the last layer for the first token only: the same math (gemm
    // may block the smaller products differently).
    let first = encoder
        .first_token_state(&ids, &on(&dev, mask), Some(&types))
        .unwrap()
        .to_device(&Device::Cpu)
        .unwrap();
    let d = (&first - &cls)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(d <= 1e-5, "first_token_state is {d} from forward()[:, 0]");
    let first4 = out.narrow(0, 0, 4).unwrap();
    let (d_seq, _) = max_abs_diff(&first4, &t["hidden4"], &mask.narrow(0, 0, 4).unwrap());
    eprintln!("minilm: max |Δ| [CLS] {d_cls:e}, full sequences (rows 0-3) {d_seq:e}");
    assert!(d_cls <= TOLERANCE, "[CLS] max |Δ| {d_cls}");
    assert!(d_seq <= TOLERANCE, "sequences max |Δ| {d_seq}");
}

/// The kernels' instruction set is not a result (see [`crate::nn::simd`]): the inference
/// forward, the training forward and every gradient come out bit for bit the same on the
/// portable path and on this CPU's fast one.
#[test]
fn portable_and_fast_kernels_give_the_same_bits() {
    let bits = |t: &Tensor| -> Vec<u32> {
        let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        v.iter().map(|x| x.to_bits()).collect()
    };
    for name in ["bert", "distilbert", "xlm_roberta"] {
        let dir = fixtures().join(name);
        let cfg = Config::from_file(&dir.join("config.json")).unwrap();
        let t = read(&dir.join("expected.safetensors"));
        let ids = t["input_ids"].to_dtype(DType::U32).unwrap();
        let types = t["token_type_ids"].to_dtype(DType::U32).unwrap();
        let types = cfg.uses_token_types().then_some(&types);
        let mask = &t["attention_mask"];
        let run = |portable: bool| {
            crate::nn::simd::with_portable(portable, || {
                let mut varmap = VarMap::new();
                let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
                let mut encoder = Encoder::load(vb, &cfg).unwrap();
                varmap.load(dir.join("model.safetensors")).unwrap();
                encoder.set_dropout(0.0);
                let mut out = vec![bits(&encoder.forward(&ids, mask, types, false).unwrap())];
                let train = encoder.forward(&ids, mask, types, true).unwrap();
                out.push(bits(&train));
                let grads = super::train_layers::backward(&train.sqr().unwrap().sum_all().unwrap())
                    .unwrap();
                let vars = varmap.data().lock().unwrap();
                let mut names: Vec<&String> = vars.keys().collect();
                names.sort();
                for n in names {
                    out.push(bits(grads.get(vars[n].as_tensor()).unwrap()));
                }
                out
            })
        };
        assert!(run(true) == run(false), "{name}: the paths differ");
    }
}

//! Step-by-step parity with PyTorch: trains the reference network for a few steps from
//! weights and batches that `scripts/parity_torch.py` then replays in PyTorch.
//!
//! ```text
//! cargo run --release -p valar-engine --example parity -- DIR [--steps N] [--lr LR] [--seed S] [--model reference]
//! python3 scripts/parity_torch.py DIR
//! ```
//!
//! Writes to DIR: `init.ckpt` (the initial state, in the checkpoint format), `x.f32` and
//! `y.f32` (the batches, raw little-endian), `valar.json` (the loss of every step and the
//! settings) and `final.ckpt` (the state after the last step). Any difference the Python side
//! reports is the engine's, not the data's or the initialisation's.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::Write;
use std::path::PathBuf;
use valar_engine::{Device, InputAffine, LossKind, ModelKind, ModelSpec, OptimizerKind, Trainer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .ok_or("usage: parity DIR [--steps N] [--lr LR]")?,
    );
    let (mut steps, mut lr, mut seed, mut model) =
        (20usize, 1e-3f32, 0u64, "reference".to_string());
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--steps" => steps = value.parse()?,
            "--lr" => lr = value.parse()?,
            "--seed" => seed = value.parse()?,
            "--model" => model = value,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    std::fs::create_dir_all(&dir)?;
    let (batch, size) = (64usize, 48usize);
    let kind: ModelKind = model.parse()?;
    let spec = ModelSpec {
        kind,
        input_size: size,
        channels: 1,
        outputs: 2,
        input: InputAffine::IDENTITY,
        flip_average: false,
        ema: None,
        expression: None,
    };
    let opt = OptimizerKind::AdamW {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 1e-4,
    };
    let mut t = Trainer::new(&spec, LossKind::MseCcc, opt, Device::Cpu, seed)?;
    t.try_state()?.save(&dir.join("init.ckpt"))?;

    // Smooth random images (so convolutions see structure) and labels in [-1, 1] that a
    // network can partly learn: valence follows the left-right brightness difference.
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5041_5249_5459);
    let per = size * size;
    let mut xs = Vec::with_capacity(steps * batch * per);
    let mut ys = Vec::with_capacity(steps * batch * 2);
    for _ in 0..steps * batch {
        let (a, b, c): (f32, f32, f32) = (rng.random(), rng.random(), rng.random());
        for k in 0..per {
            let (x, y) = (
                (k % size) as f32 / size as f32,
                (k / size) as f32 / size as f32,
            );
            let v = (a - 0.5) * x
                + (b - 0.5) * y
                + 0.3 * (6.0 * c + 9.0 * x * y).sin()
                + 0.2 * (rng.random::<f32>() - 0.5);
            xs.push(v * 2.0);
        }
        ys.push((a - 0.5) * 1.6);
        ys.push((c - 0.5) * 1.6);
    }
    let mut losses = Vec::with_capacity(steps);
    for s in 0..steps {
        let x = &xs[s * batch * per..(s + 1) * batch * per];
        let y = &ys[s * batch * 2..(s + 1) * batch * 2];
        losses.push(t.step(x, y, batch, lr)?.loss);
    }
    t.try_state()?.save(&dir.join("final.ckpt"))?;
    let raw = |v: &[f32]| v.iter().flat_map(|f| f.to_le_bytes()).collect::<Vec<u8>>();
    std::fs::write(dir.join("x.f32"), raw(&xs))?;
    std::fs::write(dir.join("y.f32"), raw(&ys))?;
    let mut f = std::fs::File::create(dir.join("valar.json"))?;
    let list: Vec<String> = losses.iter().map(|l| format!("{l}")).collect();
    writeln!(
        f,
        "{{\"model\": \"{model}\", \"steps\": {steps}, \"batch\": {batch}, \"size\": {size}, \"lr\": {lr}, \"weight_decay\": 1e-4, \"losses\": [{}]}}",
        list.join(", ")
    )?;
    println!("valar losses: {}", list.join(" "));
    Ok(())
}

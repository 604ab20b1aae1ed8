//! Benchmark: training-step time at batch 64, inference throughput at batch 256 and peak RSS, for
//! any registered network on 48×48 grey faces with 2 outputs. Prints one JSON line per measurement.
//!
//! `cargo run --release -p valar-engine --example bench_train [-- NAME...] [--steps N]
//! [--device cpu|cuda] [--losses K]` (default: facecnn and compact, on the CPU). `--losses K`
//! also prints the first K steps' losses on a fixed batch, which `just check-cuda` compares
//! between devices; a CUDA request that fell back to the CPU is an error, not a CPU figure.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use valar_engine::{
    Device, InferenceModel, LossKind, ModelKind, ModelSpec, OptimizerKind, Trainer,
};

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn emit(model: &str, measure: &str, batch: usize, value: f64, unit: &str) {
    // Losses are compared between devices to 1e-4, so they get more digits than timings.
    let digits = if unit == "loss" { 7 } else { 3 };
    println!(
        "{{\"engine\":\"valar-ort\",\"model\":\"{model}\",\"measure\":\"{measure}\",\"batch\":{batch},\"value\":{value:.digits$},\"unit\":\"{unit}\",\"threads\":{}}}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let steps: usize = flag("--steps").and_then(|s| s.parse().ok()).unwrap_or(10);
    let losses: usize = flag("--losses").and_then(|s| s.parse().ok()).unwrap_or(0);
    let device: Device = flag("--device").map_or(Ok(Device::Cpu), |s| s.parse())?;
    let mut names: Vec<&str> = Vec::new();
    let mut skip = false;
    for a in &args {
        if std::mem::take(&mut skip) {
            continue;
        }
        if matches!(a.as_str(), "--steps" | "--losses" | "--device") {
            skip = true;
        } else {
            names.push(a);
        }
    }
    if names.is_empty() {
        names = vec!["facecnn", "compact"];
    }
    let kinds: Vec<(&str, ModelKind)> = names
        .into_iter()
        .map(|n| Ok((n, n.parse::<ModelKind>()?)))
        .collect::<Result<_, String>>()?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for (name, kind) in kinds {
        let spec = ModelSpec {
            kind,
            input_size: 48,
            channels: 1,
            outputs: 2,
            input: valar_engine::InputAffine::IDENTITY,
            flip_average: false,
            ema: None,
            expression: None,
        };
        let per = 48 * 48;
        let (batch, infer_batch) = (64, 256);
        let x: Vec<f32> = (0..batch * per).map(|_| rng.random::<f32>()).collect();
        let y: Vec<f32> = (0..batch * 2)
            .map(|_| rng.random::<f32>() * 2.0 - 1.0)
            .collect();
        let mut t = Trainer::new(
            &spec,
            LossKind::Mse,
            OptimizerKind::adamw_default(),
            device,
            1,
        )?;
        let build = Instant::now();
        let first = t.step(&x, &y, batch, 1e-4)?;
        if t.device() != device {
            return Err(format!(
                "{name}: asked for {device}, ran on {}: {}",
                t.device(),
                valar_engine::cuda_unavailable_reason().unwrap_or_default()
            )
            .into());
        }
        if losses > 0 {
            emit(name, "loss_step_1", batch, f64::from(first.loss), "loss");
            for k in 2..=losses {
                let out = t.step(&x, &y, batch, 1e-4)?;
                emit(
                    name,
                    &format!("loss_step_{k}"),
                    batch,
                    f64::from(out.loss),
                    "loss",
                );
            }
        }
        emit(
            name,
            "first_step_ms",
            batch,
            build.elapsed().as_secs_f64() * 1e3,
            "ms",
        );
        t.step(&x, &y, batch, 1e-4)?;
        let start = Instant::now();
        for _ in 0..steps {
            t.step(&x, &y, batch, 1e-4)?;
        }
        emit(
            name,
            "train_step_ms",
            batch,
            start.elapsed().as_secs_f64() * 1e3 / steps as f64,
            "ms",
        );

        let dir = std::env::temp_dir().join(format!("valar-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.onnx"));
        t.export_onnx(&path)?;
        drop(t);
        let mut m = InferenceModel::load(&path, device)?;
        let xi: Vec<f32> = (0..infer_batch * per)
            .map(|_| rng.random::<f32>())
            .collect();
        m.predict(&xi, infer_batch)?;
        let runs = steps.max(3);
        let start = Instant::now();
        for _ in 0..runs {
            m.predict(&xi, infer_batch)?;
        }
        let secs = start.elapsed().as_secs_f64();
        emit(
            name,
            "inference_images_per_s",
            infer_batch,
            (runs * infer_batch) as f64 / secs,
            "images/s",
        );
        std::fs::remove_dir_all(&dir)?;
        emit(name, "peak_rss_mib", batch, peak_rss_mib(), "MiB");
    }
    Ok(())
}

//! Writes a dataset and reports throughput: `cargo run --release --example synth_bench -- OUT N [newer]`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use valar_synth::{Layout, SynthConfig, synthesize};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().ok_or("usage: synth_bench OUT N [newer]")?);
    let n: usize = args
        .next()
        .ok_or("usage: synth_bench OUT N [newer]")?
        .parse()?;
    let layout = if args.next().as_deref() == Some("newer") {
        Layout::Newer
    } else {
        Layout::Original
    };
    let cfg = SynthConfig {
        n,
        val_n: n / 10,
        layout,
        ..SynthConfig::default()
    };
    let count = AtomicUsize::new(0);
    let start = Instant::now();
    let summary = synthesize(&out, &cfg, &|| {
        count.fetch_add(1, Ordering::Relaxed);
    })?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} images ({} invalid rows) in {secs:.1} s: {:.1} images/s with {} cores available",
        summary.images,
        summary.invalid_rows,
        summary.images as f64 / secs,
        available_cores()
    );
    Ok(())
}

fn available_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

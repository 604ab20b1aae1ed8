//! The decode floor of `valar prepare`: how fast libjpeg-turbo alone turns the images of a
//! prepared folder into gray pixels, at the scale and down to the row that valar decodes
//! them, with nothing else (no crop, resize, hash or write). `just bench-prep` prints
//! valar's faces/s as a share of this rate.
//!
//! ```text
//! decode_floor --manifest PREPARED/manifest.csv --images ROOT [--threads N] [--size S] [--all-rows]
//! ```
//!
//! The images are the manifest's rows, that is the faces valar kept, and each is decoded
//! at the DCT scale valar picks from the manifest's box (the region valar cropped). By
//! default decoding stops where valar's does, a few rows below the face; `--all-rows`
//! decodes whole images instead. `--threads` defaults to rayon's default, which is what
//! `valar prepare` runs with. Prints one JSON object on stdout.

use anyhow::{Context, Result, anyhow, bail};
use rayon::prelude::*;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Instant;
use valar_core::FaceBox;
use valar_face::{rows_needed, scale_numerator};

struct Args {
    manifest: PathBuf,
    images: PathBuf,
    threads: usize,
    size: u32,
    all_rows: bool,
}

fn parse_args() -> Result<Args> {
    let usage = "usage: decode_floor --manifest PREPARED/manifest.csv --images ROOT \
                 [--threads N] [--size S] [--all-rows]";
    let (mut manifest, mut images, mut threads, mut size, mut all_rows) =
        (None, None, 0, 48, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| anyhow!("{arg} needs a value\n{usage}"))
        };
        match arg.as_str() {
            "--manifest" => manifest = Some(PathBuf::from(value()?)),
            "--images" => images = Some(PathBuf::from(value()?)),
            "--threads" => threads = value()?.parse().context("--threads: not a number")?,
            "--size" => size = value()?.parse().context("--size: not a number")?,
            "--all-rows" => all_rows = true,
            _ => bail!("unknown argument {arg}\n{usage}"),
        }
    }
    if size == 0 {
        bail!("--size must be at least 1");
    }
    Ok(Args {
        manifest: manifest.ok_or_else(|| anyhow!("--manifest is required\n{usage}"))?,
        images: images.ok_or_else(|| anyhow!("--images is required\n{usage}"))?,
        threads,
        size,
        all_rows,
    })
}

/// Reads one file and decodes it to gray; returns the pixels decoded.
fn decode(path: &Path, crop: FaceBox, size: u32, all_rows: bool) -> Result<usize> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    // mozjpeg reports libjpeg's fatal errors by unwinding.
    let decoded = catch_unwind(AssertUnwindSafe(|| -> std::io::Result<usize> {
        let mut header = mozjpeg::Decompress::new_mem(&bytes)?;
        let full_height = header.height() as u32;
        header.scale(scale_numerator(crop, size));
        let mut started = header.grayscale()?;
        let (width, height) = (started.width(), started.height() as u32);
        let rows = if all_rows {
            height
        } else {
            rows_needed(crop, size, height, full_height)
        };
        let mut pixels = vec![0u8; width * rows as usize];
        started.read_scanlines_into(&mut pixels)?;
        Ok(std::hint::black_box(pixels).len())
    }));
    match decoded {
        Ok(result) => result.with_context(|| format!("decoding {}", path.display())),
        Err(_) => bail!("decoding {}: libjpeg failed", path.display()),
    }
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let rows = valar_core::read_manifest(&args.manifest).with_context(|| {
        format!(
            "reading {} (a prepared folder's manifest.csv)",
            args.manifest.display()
        )
    })?;
    if rows.is_empty() {
        bail!("{} has no rows", args.manifest.display());
    }
    let jobs = rows
        .iter()
        .map(|r| {
            let path = valar_face::resolve_under_root(&args.images, &r.path)
                .with_context(|| format!("manifest path {}", r.path))?;
            Ok((path, r.face_box()))
        })
        .collect::<Result<Vec<_>>>()?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()?;

    // Only reading and decoding are timed: the manifest and the pool are set up above.
    let start = Instant::now();
    let pixels: usize = pool.install(|| {
        jobs.par_iter()
            .map(|(path, crop)| decode(path, *crop, args.size, args.all_rows))
            .sum::<Result<usize>>()
    })?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{{\"images\": {}, \"seconds\": {seconds:.4}, \"images_per_s\": {:.1}, \
         \"threads\": {}, \"rows\": \"{}\", \"pixels\": {pixels}}}",
        jobs.len(),
        jobs.len() as f64 / seconds,
        pool.current_num_threads(),
        if args.all_rows { "all" } else { "valar's" },
    );
    Ok(())
}

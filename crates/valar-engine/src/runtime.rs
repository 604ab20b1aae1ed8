//! ONNX Runtime: finding and loading the library once per process, devices, and session creation.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;

use crate::EngineError;

/// The ONNX Runtime version valar is built against.
const ORT_VERSION: &str = "1.31.1";

/// Where a session runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Device {
    /// ONNX Runtime's CPU execution provider.
    #[serde(rename = "cpu")]
    Cpu,
    /// ONNX Runtime's CUDA execution provider (needs an NVIDIA driver and the CUDA build of
    /// ONNX Runtime; training falls back to the CPU, with a message, when it is unusable).
    #[serde(rename = "cuda")]
    Cuda,
}
crate::named_enum!(Device, "device", Cpu => "cpu", Cuda => "cuda");

fn lib_name() -> String {
    format!("libonnxruntime.so.{ORT_VERSION}")
}

/// The directories searched, in order: the current directory and its ancestors, then the
/// ancestors of the running executable.
fn search_roots() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    roots
}

/// The first `root/<sub>/libonnxruntime.so.1.31.1` that exists.
fn find_in(roots: &[PathBuf], sub: &str) -> Option<PathBuf> {
    roots
        .iter()
        .map(|r| r.join(sub).join(lib_name()))
        .find(|p| p.is_file())
}

fn search_dirs(sub: &str) -> Option<PathBuf> {
    find_in(&search_roots(), sub)
}

/// The `onnxruntime/capi` folder of a Python environment whose `bin/` holds the running
/// executable: where `pip install valar` puts the library (the wheel depends on
/// `onnxruntime`), so a pip-installed valar needs neither `.ort/` nor `ORT_DYLIB_PATH`.
fn pip_capi_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    capi_dir_beside(&exe)
}

/// The pip-installed library when that package is `onnxruntime-gpu` (it carries the CUDA
/// provider beside the library; both packages install into `onnxruntime/`).
fn pip_cuda_library() -> Option<PathBuf> {
    pip_capi_dir()
        .filter(|capi| capi.join("libonnxruntime_providers_cuda.so").is_file())
        .map(|capi| capi.join(lib_name()))
}

/// `<prefix>/lib/python3.*/{site,dist}-packages/onnxruntime/capi` holding the library, for an
/// executable at `<prefix>/bin/<name>` (a venv, `pip install --user` or a system prefix).
fn capi_dir_beside(exe: &Path) -> Option<PathBuf> {
    let prefix = exe.parent()?.parent()?;
    let mut pythons: Vec<PathBuf> = std::fs::read_dir(prefix.join("lib"))
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
        .map(|e| e.path())
        .collect();
    // Several interpreters in one prefix: the order must not depend on the file system's.
    pythons.sort();
    pythons
        .iter()
        .flat_map(|py| ["site-packages", "dist-packages"].map(|s| py.join(s)))
        .map(|site| site.join("onnxruntime").join("capi"))
        .find(|capi| capi.join(lib_name()).is_file())
}

fn env_override() -> Option<PathBuf> {
    std::env::var_os("ORT_DYLIB_PATH")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn not_found() -> EngineError {
    EngineError::OrtNotFound(format!(
        "ONNX Runtime {ORT_VERSION} not found. Run `just setup` (or `scripts/setup-ort.sh`) in the valar checkout, \
         or set ORT_DYLIB_PATH=/path/to/{}",
        lib_name()
    ))
}

/// The CPU ONNX Runtime library valar would load: `ORT_DYLIB_PATH`, else `.ort/libonnxruntime.so.1.31.1`
/// in the current directory or an ancestor, else in an ancestor of the running executable, else
/// the `onnxruntime` Python package installed beside the executable (`pip install valar`).
pub fn ort_library() -> Result<PathBuf, EngineError> {
    locate(env_override(), &search_roots(), pip_capi_dir)
}

/// `pip_capi` is only looked for when nothing before it is found: it lists folders.
fn locate(
    env: Option<PathBuf>,
    roots: &[PathBuf],
    pip_capi: impl FnOnce() -> Option<PathBuf>,
) -> Result<PathBuf, EngineError> {
    if let Some(p) = env {
        return if p.is_file() {
            Ok(p)
        } else {
            Err(EngineError::OrtNotFound(format!(
                "ORT_DYLIB_PATH={} does not name a file. Unset it, or run `just setup` (or `scripts/setup-ort.sh`) \
                 in the valar checkout",
                p.display()
            )))
        };
    }
    find_in(roots, ".ort")
        .or_else(|| pip_capi().map(|dir| dir.join(lib_name())))
        .ok_or_else(not_found)
}

/// The loaded runtime: one per process, because ONNX Runtime's library can be loaded only once.
pub(crate) struct Runtime {
    pub env: Environment,
    /// Whether the loaded library can run CUDA (it is the CUDA build and the driver is present).
    pub cuda: bool,
}

/// Why loading failed, kept so every later caller gets the same error.
enum LoadFailure {
    NotFound(String),
    Failed(String),
}

static RUNTIME: OnceLock<Result<Runtime, LoadFailure>> = OnceLock::new();
static CUDA_REASON: Mutex<Option<String>> = Mutex::new(None);

fn set_cuda_reason(reason: String) {
    if let Ok(mut r) = CUDA_REASON.lock() {
        *r = Some(reason);
    }
}

/// Why the last request for [`Device::Cuda`] ran on the CPU instead, if it did.
pub fn cuda_unavailable_reason() -> Option<String> {
    CUDA_REASON.lock().ok().and_then(|r| r.clone())
}

/// Whether the NVIDIA driver library can be loaded. Checked before the CUDA execution provider is
/// touched, because a missing driver can abort the process inside ONNX Runtime.
fn cuda_driver_present() -> bool {
    // SAFETY: libcuda's initialisers only register the driver; the handle is dropped at once.
    #[allow(unsafe_code)]
    let lib = unsafe { libloading::Library::new("libcuda.so.1") };
    lib.is_ok()
}

/// Loads ONNX Runtime on first use. The first caller's device picks the library: a CUDA request
/// loads the CUDA build (`ORT_DYLIB_PATH`, then `.ort-cuda/`) when the driver is present.
pub(crate) fn runtime(device: Device) -> Result<&'static Runtime, EngineError> {
    let r = RUNTIME.get_or_init(|| {
        let mut cuda = false;
        let mut path = None;
        if device == Device::Cuda {
            if !cuda_driver_present() {
                set_cuda_reason("libcuda.so.1 (the NVIDIA driver) could not be loaded".into());
            } else if let Some(p) = env_override()
                .or_else(|| search_dirs(".ort-cuda"))
                .or_else(pip_cuda_library)
            {
                cuda = true;
                path = Some(p);
            } else {
                set_cuda_reason(format!(
                    "the CUDA build of ONNX Runtime {ORT_VERSION} was not found: run `scripts/setup-ort.sh --cuda` \
                     (and `pip install \"onnxruntime-gpu[cuda,cudnn]=={ORT_VERSION}\"`) or set ORT_DYLIB_PATH"
                ));
            }
        }
        let path = match path {
            Some(p) => p,
            None => ort_library().map_err(|e| LoadFailure::NotFound(e.to_string()))?,
        };
        let builder = ort::init_from(&path)
            .map_err(|e| LoadFailure::Failed(format!("loading {}: {e}", path.display())))?;
        let env = builder
            .with_name("valar")
            .build()
            .map_err(|e| LoadFailure::Failed(format!("creating the ONNX Runtime environment: {e}")))?;
        Ok(Runtime { env, cuda })
    });
    match r {
        Ok(rt) => {
            if device == Device::Cuda && !rt.cuda && cuda_unavailable_reason().is_none() {
                set_cuda_reason(
                    "ONNX Runtime was already loaded for the CPU in this process".into(),
                );
            }
            Ok(rt)
        }
        Err(LoadFailure::NotFound(e)) => Err(EngineError::OrtNotFound(e.clone())),
        Err(LoadFailure::Failed(e)) => Err(EngineError::Runtime(e.clone())),
    }
}

/// Intra-op threads: all available cores, set explicitly so runs are reproducible on one machine.
pub(crate) fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Builds a session from serialized model bytes on `device`, falling back to the CPU when CUDA cannot
/// be used. Returns the session and the device it actually runs on.
pub(crate) fn session(model: &[u8], device: Device) -> Result<(Session, Device), EngineError> {
    let rt = runtime(device)?;
    let b = Session::builder(&rt.env)?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(ort::Error::from)?
        .with_intra_threads(threads())
        .map_err(ort::Error::from)?
        .with_inter_threads(1)
        .map_err(ort::Error::from)?;
    // Spinning workers only pay off for sub-millisecond kernels; here every kernel is long, and on a
    // shared machine spinning steals the cores (compact step 625 ms with it, 425-475 ms without,
    // measured on 2 busy cores).
    let b = b.with_intra_op_spinning(false).map_err(ort::Error::from)?;
    // Without memory patterns the arena serves each tensor as it is planned, and peak RSS drops
    // (facecnn training 3.45 → 2.66 GiB, compact 344 → 194 MiB) at no measurable cost in step time.
    let b = b.with_memory_pattern(false).map_err(ort::Error::from)?;
    // Subnormal floats are flushed to zero. Adam's first moment of a weight whose gradient has
    // become zero decays by β₁ every step and turns subnormal after about 770 steps; from then
    // on every pass over it runs at the CPU's slow subnormal speed. On the real split the
    // default recipe's epochs grew from 12.2 to 14.7 s at epoch 24 (800 steps); with the flush
    // the same epochs take 11.9 s against 14.3 s and give the same losses. A value under 1.2e-38
    // changes no prediction. ONNX Runtime sets it on its pool's threads and, from the process's
    // first session, on the thread that made it.
    let mut b = b.with_flush_to_zero().map_err(ort::Error::from)?;
    // VALAR_ORT_PROFILE=<prefix> writes ONNX Runtime's per-node timings (JSON) for each session.
    if let Some(prefix) = std::env::var_os("VALAR_ORT_PROFILE") {
        b = b
            .with_profiling(PathBuf::from(prefix))
            .map_err(ort::Error::from)?;
    }
    let mut used = Device::Cpu;
    if device == Device::Cuda && rt.cuda {
        let ep = ort::ep::CUDA::default().build().error_on_failure();
        b = match b.with_execution_providers([ep]) {
            Ok(with_cuda) => {
                used = Device::Cuda;
                with_cuda
            }
            Err(e) => {
                set_cuda_reason(format!(
                    "the CUDA execution provider failed to register: {e}"
                ));
                e.recover()
            }
        };
    }
    let session = b.commit_from_memory(model)?;
    Ok((session, used))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Run by `sessions_flush_subnormal_results_to_zero` in a process of its own, so that its
    /// session is the process's first (which sets the flush on the thread that makes it).
    #[test]
    #[ignore = "run in its own process by sessions_flush_subnormal_results_to_zero"]
    fn subnormal_probe() {
        use crate::graph::{GraphBuilder, fixed};
        use crate::ops::tests::{In, run, session};
        let mut g = GraphBuilder::new();
        g.input("x", &fixed(&[2]));
        let half = g.scalar(0.5);
        let y = g.bin("Mul", "x", &half);
        g.rename(&y, "y");
        g.output("y", &fixed(&[2]));
        let mut s = session(g);
        let x = In {
            name: "x".into(),
            shape: vec![2],
            data: vec![1.5e-38, 3.0],
            check: false,
        };
        let out = run(&mut s, &[x], &["y"]);
        // 0.75e-38 is subnormal in f32: flushed, it is exactly zero.
        assert_eq!(out[0], vec![0.0, 1.5]);
    }

    #[test]
    fn sessions_flush_subnormal_results_to_zero() {
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args([
                "--ignored",
                "--exact",
                "runtime::tests::subnormal_probe",
                "--test-threads=1",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && text.contains("1 passed"),
            "the probe failed: {text}"
        );
    }

    #[test]
    fn library_search_order_and_message() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        std::fs::create_dir_all(&deep).unwrap();
        let roots: Vec<PathBuf> = deep.ancestors().map(Path::to_path_buf).collect();
        let err = locate(None, &roots, || None).unwrap_err().to_string();
        assert_eq!(
            err,
            "ONNX Runtime 1.31.1 not found. Run `just setup` (or `scripts/setup-ort.sh`) in the valar checkout, \
             or set ORT_DYLIB_PATH=/path/to/libonnxruntime.so.1.31.1"
        );
        // `.ort` in an ancestor is found.
        let lib = dir.path().join("a/.ort/libonnxruntime.so.1.31.1");
        std::fs::create_dir_all(lib.parent().unwrap()).unwrap();
        std::fs::write(&lib, b"").unwrap();
        assert_eq!(locate(None, &roots, || None).unwrap(), lib);
        // ORT_DYLIB_PATH wins, and a wrong one is reported as such.
        let other = dir.path().join("libonnxruntime.so.1.31.1");
        std::fs::write(&other, b"").unwrap();
        assert_eq!(locate(Some(other.clone()), &roots, || None).unwrap(), other);
        let missing = locate(Some(dir.path().join("nope.so")), &roots, || None).unwrap_err();
        assert!(
            matches!(missing, EngineError::OrtNotFound(_))
                && missing.to_string().contains("ORT_DYLIB_PATH=")
        );
    }

    #[test]
    fn a_pip_installed_onnxruntime_beside_the_executable_is_found_last() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("venv/bin/valar");
        assert_eq!(capi_dir_beside(&exe), None, "no lib/ at all");
        let capi = dir
            .path()
            .join("venv/lib/python3.11/site-packages/onnxruntime/capi");
        std::fs::create_dir_all(&capi).unwrap();
        assert_eq!(
            capi_dir_beside(&exe),
            None,
            "the package without its library"
        );
        std::fs::write(capi.join(lib_name()), b"").unwrap();
        assert_eq!(capi_dir_beside(&exe), Some(capi.clone()));

        // Searched only after `.ort/`: a checkout's own library still wins.
        let roots = vec![dir.path().join("checkout")];
        let ours = dir.path().join("checkout/.ort").join(lib_name());
        assert_eq!(
            locate(None, &roots, || Some(capi.clone())).unwrap(),
            capi.join(lib_name())
        );
        std::fs::create_dir_all(ours.parent().unwrap()).unwrap();
        std::fs::write(&ours, b"").unwrap();
        assert_eq!(locate(None, &roots, || Some(capi)).unwrap(), ours);
    }
}

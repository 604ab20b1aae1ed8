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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    /// ONNX Runtime's CPU execution provider.
    Cpu,
    /// ONNX Runtime's CUDA execution provider (needs an NVIDIA driver and the CUDA build of ONNX Runtime).
    Cuda,
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Device::Cpu => "cpu",
            Device::Cuda => "cuda",
        })
    }
}

impl std::str::FromStr for Device {
    type Err = EngineError;
    /// `cpu` or `cuda` (any case).
    fn from_str(s: &str) -> Result<Self, EngineError> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" => Ok(Device::Cpu),
            "cuda" | "gpu" => Ok(Device::Cuda),
            _ => Err(EngineError::InvalidInput(format!(
                "unknown device `{s}` (expected cpu or cuda)"
            ))),
        }
    }
}

fn lib_name() -> String {
    format!("libonnxruntime.so.{ORT_VERSION}")
}

/// `dir/<sub>/libonnxruntime.so.1.31.1` for `dir` the current directory, its ancestors, and the
/// ancestors of the running executable.
fn search_dirs(sub: &str) -> Option<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    roots
        .into_iter()
        .map(|r| r.join(sub).join(lib_name()))
        .find(|p| p.is_file())
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
/// in the current directory or an ancestor, else in an ancestor of the running executable.
pub fn ort_library() -> Result<PathBuf, EngineError> {
    if let Some(p) = env_override() {
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
    search_dirs(".ort").ok_or_else(not_found)
}

/// The loaded runtime: one per process, because ONNX Runtime's library can be loaded only once.
pub(crate) struct Runtime {
    pub env: Environment,
    /// Whether the loaded library can run CUDA (it is the CUDA build and the driver is present).
    pub cuda: bool,
}

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
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
            } else if let Some(p) = env_override().or_else(|| search_dirs(".ort-cuda")) {
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
            None => ort_library().map_err(|e| e.to_string())?,
        };
        let builder = ort::init_from(&path).map_err(|e| format!("loading {}: {e}", path.display()))?;
        let env = builder.with_name("valar").build().map_err(|e| format!("creating the ONNX Runtime environment: {e}"))?;
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
        Err(e) if e.starts_with("ONNX Runtime") || e.starts_with("ORT_DYLIB_PATH") => {
            Err(EngineError::OrtNotFound(e.clone()))
        }
        Err(e) => Err(EngineError::Runtime(e.clone())),
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
    let mut b = b.with_memory_pattern(false).map_err(ort::Error::from)?;
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

//! Stage 2: ONNX Runtime, loaded once per process, and a pool of sessions of the model.

use crate::error::Error;
use crate::input::NetworkInput;
use crate::output::CHANNELS;
use crate::params::{MODEL_SHA256, RUNTIME_SHA256};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::Tensor;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// The runtime library this process loaded, or why it could not (ONNX Runtime is one per
/// process).
static RUNTIME: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// Reads `path` and checks it against `expected` (hex SHA-256).
pub(crate) fn read_checked(path: &Path, expected: &'static str) -> Result<Vec<u8>, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    let found = hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes));
    if found != expected {
        return Err(Error::Checksum {
            path: path.to_owned(),
            expected,
            found,
        });
    }
    Ok(bytes)
}

/// Checks the runtime library at `path` and loads it into the process, once; later calls may
/// name another copy of the same file.
fn load_runtime(path: &Path) -> Result<(), Error> {
    read_checked(path, RUNTIME_SHA256)?;
    let loaded = RUNTIME.get_or_init(|| {
        ort::init_from(path.display().to_string())
            .with_name("idcardd")
            .commit()
            .map(|_| path.to_owned())
            .map_err(|e| e.to_string())
    });
    loaded
        .as_ref()
        .map(|_| ())
        .map_err(|e| Error::Runtime(e.clone()))
}

/// The model, checked, with sessions made on demand and kept for reuse (a session runs one
/// image at a time).
pub(crate) struct Network {
    model: Vec<u8>,
    threads: usize,
    idle: Mutex<Vec<Session>>,
}

impl Network {
    /// Loads the runtime and checks the model; makes one session, so that a model the runtime
    /// refuses fails here rather than at the first scan.
    pub fn open(runtime: &Path, model: &Path, threads: usize) -> Result<Network, Error> {
        load_runtime(runtime)?;
        let network = Network {
            model: read_checked(model, MODEL_SHA256)?,
            threads: threads.max(1),
            idle: Mutex::new(Vec::new()),
        };
        let first = network.session()?;
        network.give_back(first);
        Ok(network)
    }

    fn session(&self) -> Result<Session, Error> {
        if let Some(s) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(s);
        }
        Ok(Session::builder()?
            .with_optimization_level(GraphOptimizationLevel::Level3)?
            .with_intra_threads(self.threads)?
            .with_inter_threads(1)?
            .commit_from_memory(&self.model)?)
    }

    fn give_back(&self, session: Session) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(session);
    }

    /// The output map of `input` (`height` x `width` x [`CHANNELS`]).
    pub fn run(&self, input: &NetworkInput) -> Result<Vec<f32>, Error> {
        let mut session = self.session()?;
        let result = (|| {
            let tensor =
                Tensor::from_array(([1usize, input.height, input.width, 1], input.values.clone()))?;
            let outputs = session.run(ort::inputs![tensor])?;
            let (shape, data) = outputs[0].try_extract_tensor::<f32>()?;
            let expected = [1, input.height as i64, input.width as i64, CHANNELS as i64];
            if shape[..] != expected[..] {
                return Err(Error::Runtime(format!(
                    "output shape {shape:?}, expected {expected:?}"
                )));
            }
            Ok(data.to_vec())
        })();
        // A session that failed is dropped rather than reused.
        if result.is_ok() {
            self.give_back(session);
        }
        result
    }
}

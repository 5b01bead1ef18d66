//! Golden tests: run a model on the seeded inputs that `tools/make_golden.py` used and compare
//! with the reference interpreter's outputs stored beside them.

use std::path::{Path, PathBuf};

use ferrolite::{DType, Interpreter, Model, Options};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One golden case: `tests/golden/<name>/`.
pub struct Golden {
    pub name: String,
    pub dir: PathBuf,
    pub model: PathBuf,
    pub seed: u64,
    /// Whether `ref_output_*.npy` exist (BUILTIN_REF could run the model).
    pub has_ref: bool,
}

impl Golden {
    pub fn load(name: &str) -> Golden {
        let dir = repo_root().join("tests/golden").join(name);
        let meta_path = dir.join("meta.json");
        let text = std::fs::read_to_string(&meta_path)
            .unwrap_or_else(|e| panic!("{}: {e}", meta_path.display()));
        let meta: serde_json::Value = serde_json::from_str(&text).expect("meta.json parses");
        let model = meta["model"].as_str().expect("meta.model");
        // Models from the shared folder are named "shared/..." and live beside the repository.
        let model = match model.strip_prefix("shared/") {
            Some(rest) => repo_root().join("../shared").join(rest),
            None => repo_root().join(model),
        };
        Golden {
            name: name.to_string(),
            dir,
            model,
            seed: meta["seed"].as_u64().unwrap_or(0),
            has_ref: meta["ref"].as_bool().unwrap_or(true),
        }
    }

    /// Every golden case whose name passes `filter`.
    pub fn all(filter: impl Fn(&str) -> bool) -> Vec<Golden> {
        let mut names: Vec<String> = std::fs::read_dir(repo_root().join("tests/golden"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.path().join("meta.json").exists())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
            .into_iter()
            .filter(|n| filter(n))
            .map(|n| Golden::load(&n))
            .collect()
    }

    pub fn model_exists(&self) -> bool {
        self.model.exists()
    }

    /// Runs the model on the seeded inputs with `options` and returns the interpreter.
    pub fn run(&self, options: Options) -> Result<Interpreter, ferrolite::Error> {
        let model = Model::from_file(&self.model)?;
        let mut interp = Interpreter::new(model, options)?;
        for k in 0..interp.inputs().len() {
            let dtype = interp.inputs()[k].dtype;
            ferrolite::inputs::fill(interp.input_bytes_mut(k)?, dtype, self.seed, k);
        }
        interp.invoke()?;
        Ok(interp)
    }

    pub fn expected(&self, kind: &str, k: usize) -> Option<Array> {
        let path = self.dir.join(format!("{kind}_output_{k}.npy"));
        path.exists().then(|| Array::read(&path))
    }
}

/// A reference array: its dtype, shape and raw little-endian bytes.
pub struct Array {
    pub descr: String,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

impl Array {
    pub fn read(path: &Path) -> Array {
        use std::io::Read;
        let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let npy = npyz::NpyFile::new(std::io::BufReader::new(file)).expect("npy header");
        let descr = match npy.dtype() {
            npyz::DType::Plain(t) => t.to_string(),
            other => panic!("{}: unexpected dtype {other:?}", path.display()),
        };
        let shape = npy.shape().iter().map(|&d| d as usize).collect();
        let mut bytes = Vec::new();
        npy.into_inner().read_to_end(&mut bytes).expect("npy data");
        Array {
            descr,
            shape,
            bytes,
        }
    }

    pub fn f32s(&self) -> Vec<f32> {
        assert_eq!(self.descr, "<f4", "not a float32 array");
        self.bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Compares every output of `interp` with the golden case. Float outputs follow the
/// tolerance rule of the semantics page: within 1e-5·max(1, max|ref|) of REF, or no farther
/// from REF than XNNPACK is. Integer outputs must be bit-identical to `kind` (REF, or OPT where
/// REF cannot run the model, in which case ±`int_slack` steps are allowed).
pub fn check(g: &Golden, interp: &Interpreter, int_slack: i32) -> Result<(), String> {
    let kind = if g.has_ref { "ref" } else { "opt" };
    for k in 0..interp.outputs().len() {
        let info = &interp.outputs()[k];
        let want = g
            .expected(kind, k)
            .ok_or_else(|| format!("{}: no {kind}_output_{k}.npy", g.name))?;
        if want.shape != info.shape {
            return Err(format!(
                "{} output {k}: shape {:?} vs golden {:?}",
                g.name, info.shape, want.shape
            ));
        }
        match info.dtype {
            DType::F32 => {
                let got = interp.output::<f32>(k).map_err(|e| e.to_string())?;
                let want_v = want.f32s();
                if got.iter().any(|x| !x.is_finite()) != want_v.iter().any(|x| !x.is_finite()) {
                    return Err(format!("{} output {k}: non-finite values differ", g.name));
                }
                let max_ref = want_v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
                let mut tol = 1e-5 * max_ref.max(1.0);
                if let Some(xnn) = g.expected("xnn", k) {
                    tol = tol.max(max_abs_diff(&xnn.f32s(), &want_v));
                }
                let diff = max_abs_diff(got, &want_v);
                if diff > tol {
                    return Err(format!(
                        "{} output {k}: max |ours - {kind}| = {diff:e} > tolerance {tol:e} (max |ref| {max_ref})",
                        g.name
                    ));
                }
            }
            DType::I8 | DType::U8 | DType::I16 | DType::I32 | DType::I64 | DType::Bool => {
                let got = interp.output_bytes(k).map_err(|e| e.to_string())?;
                if int_slack == 0 || info.dtype != DType::I8 && info.dtype != DType::U8 {
                    if got != want.bytes.as_slice() {
                        let n = got.iter().zip(&want.bytes).filter(|(a, b)| a != b).count();
                        return Err(format!(
                            "{} output {k}: {n} of {} bytes differ from {kind}",
                            g.name,
                            got.len()
                        ));
                    }
                } else {
                    let signed = info.dtype == DType::I8;
                    let val = |b: u8| if signed { b as i8 as i32 } else { b as i32 };
                    let worst = got
                        .iter()
                        .zip(&want.bytes)
                        .map(|(&a, &b)| (val(a) - val(b)).abs())
                        .max();
                    if worst.unwrap_or(0) > int_slack {
                        return Err(format!(
                            "{} output {k}: differs by {worst:?} steps from {kind}",
                            g.name
                        ));
                    }
                }
            }
            other => {
                return Err(format!(
                    "{} output {k}: cannot compare dtype {other}",
                    g.name
                ))
            }
        }
    }
    Ok(())
}

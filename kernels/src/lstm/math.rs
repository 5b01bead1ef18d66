//! Elementwise pieces of the float LSTM step.

/// The activation of the cell gate and of the cell state before the output gate (the
/// node's `fused_activation_function`; TFLite's `ApplyActivationToVector`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellActivation {
    /// Identity.
    None,
    Relu,
    ReluN1To1,
    Relu6,
    Tanh,
}

impl CellActivation {
    pub fn apply(self, x: f32) -> f32 {
        match self {
            CellActivation::None => x,
            CellActivation::Relu => x.max(0.0),
            CellActivation::ReluN1To1 => x.clamp(-1.0, 1.0),
            CellActivation::Relu6 => x.clamp(0.0, 6.0),
            CellActivation::Tanh => x.tanh(),
        }
    }

    pub fn apply_slice(self, v: &mut [f32]) {
        for x in v {
            *x = self.apply(*x);
        }
    }
}

pub(super) fn sigmoid_slice(v: &mut [f32]) {
    for x in v {
        *x = 1.0 / (1.0 + (-*x).exp());
    }
}

/// Normalizes one row to zero mean and unit variance (TFLite's `MeanStddevNormalization`:
/// population variance, plus 1e-8 under the square root so constant rows give zeros).
pub(super) fn layer_norm(row: &mut [f32]) {
    if row.is_empty() {
        return;
    }
    let n = row.len() as f32;
    let mean = row.iter().sum::<f32>() / n;
    let var = row.iter().map(|&x| (x - mean) * (x - mean)).sum::<f32>() / n;
    let inv = 1.0 / (var + 1e-8).sqrt();
    for x in row {
        *x = (*x - mean) * inv;
    }
}

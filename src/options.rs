//! Builtin operator options, parsed once at load time.
//!
//! Only the options of operators ferrolite implements are decoded into typed variants; the
//! rest keep `OpOptions::Other`, and preparation refuses those operators with a clear error.

use crate::schema as fb;

/// Fused activation, as stored in options (`ActivationFunctionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    None,
    Relu,
    ReluN1To1,
    Relu6,
    Tanh,
    SignBit,
}

impl Activation {
    fn from_schema(a: fb::ActivationFunctionType) -> Option<Self> {
        Some(match a {
            fb::ActivationFunctionType::NONE => Activation::None,
            fb::ActivationFunctionType::RELU => Activation::Relu,
            fb::ActivationFunctionType::RELU_N1_TO_1 => Activation::ReluN1To1,
            fb::ActivationFunctionType::RELU6 => Activation::Relu6,
            fb::ActivationFunctionType::TANH => Activation::Tanh,
            fb::ActivationFunctionType::SIGN_BIT => Activation::SignBit,
            _ => return None,
        })
    }

    /// The float clamp TFLite applies for this fused activation. TANH and SIGN_BIT are not
    /// applied by the convolution, pooling and arithmetic kernels of the reference: they fall
    /// through to "no clamp", and so do we.
    pub fn float_range(self) -> (f32, f32) {
        match self {
            Activation::Relu => (0.0, f32::MAX),
            Activation::ReluN1To1 => (-1.0, 1.0),
            Activation::Relu6 => (0.0, 6.0),
            Activation::None | Activation::Tanh | Activation::SignBit => (f32::MIN, f32::MAX),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    Same,
    Valid,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Conv2D {
    pub padding: Padding,
    pub stride_w: i32,
    pub stride_h: i32,
    pub dilation_w: i32,
    pub dilation_h: i32,
    pub activation: Activation,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DepthwiseConv2D {
    pub padding: Padding,
    pub stride_w: i32,
    pub stride_h: i32,
    pub depth_multiplier: i32,
    pub dilation_w: i32,
    pub dilation_h: i32,
    pub activation: Activation,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FullyConnected {
    pub activation: Activation,
    /// `true` for the shuffled 4x16 int8 weights format, which ferrolite refuses.
    pub shuffled_weights: bool,
    pub keep_num_dims: bool,
    pub asymmetric_quantize_inputs: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pool2D {
    pub padding: Padding,
    pub stride_w: i32,
    pub stride_h: i32,
    pub filter_w: i32,
    pub filter_h: i32,
    pub activation: Activation,
}

/// Decoded builtin options of one operator.
#[derive(Debug, Clone, PartialEq)]
pub enum OpOptions {
    /// The operator has no options table, or ferrolite does not decode it.
    None,
    Conv2D(Conv2D),
    DepthwiseConv2D(DepthwiseConv2D),
    FullyConnected(FullyConnected),
    Pool2D(Pool2D),
    /// ADD, SUB: fused activation; `pot_scale_int16` for int16 ADD/SUB.
    Add {
        activation: Activation,
        pot_scale_int16: bool,
    },
    Mul {
        activation: Activation,
    },
    Reducer {
        keep_dims: bool,
    },
    Reshape {
        new_shape: Option<Vec<i32>>,
    },
    Softmax {
        beta: f32,
    },
    Concatenation {
        axis: i32,
        activation: Activation,
    },
    Squeeze {
        squeeze_dims: Vec<i32>,
    },
    /// An options table with values ferrolite cannot represent (an unknown enum value).
    Malformed(String),
}

fn padding(p: fb::Padding) -> Result<Padding, String> {
    match p {
        fb::Padding::SAME => Ok(Padding::Same),
        fb::Padding::VALID => Ok(Padding::Valid),
        other => Err(format!("unknown padding {}", other.0)),
    }
}

fn activation(a: fb::ActivationFunctionType) -> Result<Activation, String> {
    Activation::from_schema(a).ok_or_else(|| format!("unknown fused activation {}", a.0))
}

/// Decodes the options of `op`. Unknown enum values become `OpOptions::Malformed`, which
/// preparation reports as an error naming the operator.
pub(crate) fn parse(op: &fb::Operator<'_>) -> OpOptions {
    parse_inner(op).unwrap_or_else(OpOptions::Malformed)
}

fn parse_inner(op: &fb::Operator<'_>) -> Result<OpOptions, String> {
    use fb::BuiltinOptions as B;
    Ok(match op.builtin_options_type() {
        B::Conv2DOptions => {
            let o = op
                .builtin_options_as_conv_2_doptions()
                .ok_or("missing Conv2DOptions")?;
            OpOptions::Conv2D(Conv2D {
                padding: padding(o.padding())?,
                stride_w: o.stride_w(),
                stride_h: o.stride_h(),
                dilation_w: o.dilation_w_factor(),
                dilation_h: o.dilation_h_factor(),
                activation: activation(o.fused_activation_function())?,
            })
        }
        B::DepthwiseConv2DOptions => {
            let o = op
                .builtin_options_as_depthwise_conv_2_doptions()
                .ok_or("missing DepthwiseConv2DOptions")?;
            OpOptions::DepthwiseConv2D(DepthwiseConv2D {
                padding: padding(o.padding())?,
                stride_w: o.stride_w(),
                stride_h: o.stride_h(),
                depth_multiplier: o.depth_multiplier(),
                dilation_w: o.dilation_w_factor(),
                dilation_h: o.dilation_h_factor(),
                activation: activation(o.fused_activation_function())?,
            })
        }
        B::FullyConnectedOptions => {
            let o = op
                .builtin_options_as_fully_connected_options()
                .ok_or("missing FullyConnectedOptions")?;
            OpOptions::FullyConnected(FullyConnected {
                activation: activation(o.fused_activation_function())?,
                shuffled_weights: o.weights_format()
                    != fb::FullyConnectedOptionsWeightsFormat::DEFAULT,
                keep_num_dims: o.keep_num_dims(),
                asymmetric_quantize_inputs: o.asymmetric_quantize_inputs(),
            })
        }
        B::Pool2DOptions => {
            let o = op
                .builtin_options_as_pool_2_doptions()
                .ok_or("missing Pool2DOptions")?;
            OpOptions::Pool2D(Pool2D {
                padding: padding(o.padding())?,
                stride_w: o.stride_w(),
                stride_h: o.stride_h(),
                filter_w: o.filter_width(),
                filter_h: o.filter_height(),
                activation: activation(o.fused_activation_function())?,
            })
        }
        B::AddOptions => {
            let o = op
                .builtin_options_as_add_options()
                .ok_or("missing AddOptions")?;
            OpOptions::Add {
                activation: activation(o.fused_activation_function())?,
                pot_scale_int16: o.pot_scale_int16(),
            }
        }
        B::SubOptions => {
            let o = op
                .builtin_options_as_sub_options()
                .ok_or("missing SubOptions")?;
            OpOptions::Add {
                activation: activation(o.fused_activation_function())?,
                pot_scale_int16: o.pot_scale_int16(),
            }
        }
        B::MulOptions => {
            let o = op
                .builtin_options_as_mul_options()
                .ok_or("missing MulOptions")?;
            OpOptions::Mul {
                activation: activation(o.fused_activation_function())?,
            }
        }
        B::ReducerOptions => {
            let o = op
                .builtin_options_as_reducer_options()
                .ok_or("missing ReducerOptions")?;
            OpOptions::Reducer {
                keep_dims: o.keep_dims(),
            }
        }
        B::ReshapeOptions => {
            let o = op
                .builtin_options_as_reshape_options()
                .ok_or("missing ReshapeOptions")?;
            OpOptions::Reshape {
                new_shape: o.new_shape().map(|v| v.iter().collect()),
            }
        }
        B::SoftmaxOptions => {
            let o = op
                .builtin_options_as_softmax_options()
                .ok_or("missing SoftmaxOptions")?;
            OpOptions::Softmax { beta: o.beta() }
        }
        B::ConcatenationOptions => {
            let o = op
                .builtin_options_as_concatenation_options()
                .ok_or("missing ConcatenationOptions")?;
            OpOptions::Concatenation {
                axis: o.axis(),
                activation: activation(o.fused_activation_function())?,
            }
        }
        B::SqueezeOptions => {
            let o = op
                .builtin_options_as_squeeze_options()
                .ok_or("missing SqueezeOptions")?;
            OpOptions::Squeeze {
                squeeze_dims: o
                    .squeeze_dims()
                    .map(|v| v.iter().collect())
                    .unwrap_or_default(),
            }
        }
        _ => OpOptions::None,
    })
}

/// The schema name of a builtin operator code (`CONV_2D`), or `BUILTIN_<n>` for codes newer
/// than our schema.
pub fn builtin_name(code: i32) -> String {
    fb::BuiltinOperator(code)
        .variant_name()
        .map(str::to_string)
        .unwrap_or_else(|| format!("BUILTIN_{code}"))
}

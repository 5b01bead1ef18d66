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
    /// `quantized_bias_type` as a raw `TensorType`; 0 (FLOAT32, the default) means unset.
    pub quantized_bias_type: i8,
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
    /// `quantized_bias_type` as a raw `TensorType`; 0 (FLOAT32, the default) means unset.
    pub quantized_bias_type: i8,
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

#[derive(Debug, Clone, PartialEq)]
pub struct StridedSlice {
    pub begin_mask: i32,
    pub end_mask: i32,
    pub ellipsis_mask: i32,
    pub new_axis_mask: i32,
    pub shrink_axis_mask: i32,
    /// `end` is an offset from `begin` rather than an index.
    pub offset: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TransposeConv {
    pub padding: Padding,
    pub stride_w: i32,
    pub stride_h: i32,
    pub activation: Activation,
    /// `quantized_bias_type` as a raw `TensorType`; 0 (FLOAT32, the default) means unset.
    pub quantized_bias_type: i8,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SequenceLstm {
    pub activation: Activation,
    pub cell_clip: f32,
    pub proj_clip: f32,
    pub time_major: bool,
    pub asymmetric_quantize_inputs: bool,
    pub diagonal_recurrent_tensors: bool,
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
    /// DIV: fused activation.
    Div {
        activation: Activation,
    },
    LeakyRelu {
        alpha: f32,
    },
    Gelu {
        approximate: bool,
    },
    /// MIRROR_PAD: `true` for SYMMETRIC, `false` for REFLECT.
    MirrorPad {
        symmetric: bool,
    },
    StridedSlice(StridedSlice),
    /// SPLIT and SPLIT_V.
    Split {
        num_splits: i32,
    },
    Pack {
        values_count: i32,
        axis: i32,
    },
    Unpack {
        num: i32,
        axis: i32,
    },
    /// SHAPE: the output element type (schema `TensorType` value).
    Shape {
        out_type: i8,
    },
    Gather {
        axis: i32,
        batch_dims: i32,
    },
    /// DEPTH_TO_SPACE and SPACE_TO_DEPTH.
    BlockSize {
        block_size: i32,
    },
    /// RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR.
    Resize {
        align_corners: bool,
        half_pixel_centers: bool,
    },
    /// ARG_MAX and ARG_MIN: the output element type (schema `TensorType` value).
    ArgMinMax {
        output_type: i8,
    },
    Cumsum {
        exclusive: bool,
        reverse: bool,
    },
    /// CAST: schema `TensorType` values.
    Cast {
        in_type: i8,
        out_type: i8,
    },
    TransposeConv(TransposeConv),
    BatchMatMul {
        adj_x: bool,
        adj_y: bool,
        asymmetric_quantize_inputs: bool,
    },
    L2Norm {
        activation: Activation,
    },
    UnidirectionalSequenceLstm(SequenceLstm),
    While {
        cond_subgraph: i32,
        body_subgraph: i32,
    },
    If {
        then_subgraph: i32,
        else_subgraph: i32,
    },
    CallOnce {
        init_subgraph: i32,
    },
    VarHandle {
        container: String,
        shared_name: String,
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
                quantized_bias_type: o.quantized_bias_type().0,
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
                quantized_bias_type: o.quantized_bias_type().0,
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
        B::DivOptions => {
            let o = op
                .builtin_options_as_div_options()
                .ok_or("missing DivOptions")?;
            OpOptions::Div {
                activation: activation(o.fused_activation_function())?,
            }
        }
        B::LeakyReluOptions => {
            let o = op
                .builtin_options_as_leaky_relu_options()
                .ok_or("missing LeakyReluOptions")?;
            OpOptions::LeakyRelu { alpha: o.alpha() }
        }
        B::GeluOptions => {
            let o = op
                .builtin_options_as_gelu_options()
                .ok_or("missing GeluOptions")?;
            OpOptions::Gelu {
                approximate: o.approximate(),
            }
        }
        B::MirrorPadOptions => {
            let o = op
                .builtin_options_as_mirror_pad_options()
                .ok_or("missing MirrorPadOptions")?;
            let symmetric = match o.mode() {
                fb::MirrorPadMode::REFLECT => false,
                fb::MirrorPadMode::SYMMETRIC => true,
                m => return Err(format!("unknown mirror pad mode {}", m.0)),
            };
            OpOptions::MirrorPad { symmetric }
        }
        B::StridedSliceOptions => {
            let o = op
                .builtin_options_as_strided_slice_options()
                .ok_or("missing StridedSliceOptions")?;
            OpOptions::StridedSlice(StridedSlice {
                begin_mask: o.begin_mask(),
                end_mask: o.end_mask(),
                ellipsis_mask: o.ellipsis_mask(),
                new_axis_mask: o.new_axis_mask(),
                shrink_axis_mask: o.shrink_axis_mask(),
                offset: o.offset(),
            })
        }
        B::SplitOptions => {
            let o = op
                .builtin_options_as_split_options()
                .ok_or("missing SplitOptions")?;
            OpOptions::Split {
                num_splits: o.num_splits(),
            }
        }
        B::SplitVOptions => {
            let o = op
                .builtin_options_as_split_voptions()
                .ok_or("missing SplitVOptions")?;
            OpOptions::Split {
                num_splits: o.num_splits(),
            }
        }
        B::PackOptions => {
            let o = op
                .builtin_options_as_pack_options()
                .ok_or("missing PackOptions")?;
            OpOptions::Pack {
                values_count: o.values_count(),
                axis: o.axis(),
            }
        }
        B::UnpackOptions => {
            let o = op
                .builtin_options_as_unpack_options()
                .ok_or("missing UnpackOptions")?;
            OpOptions::Unpack {
                num: o.num(),
                axis: o.axis(),
            }
        }
        B::ShapeOptions => {
            let o = op
                .builtin_options_as_shape_options()
                .ok_or("missing ShapeOptions")?;
            OpOptions::Shape {
                out_type: o.out_type().0,
            }
        }
        B::GatherOptions => {
            let o = op
                .builtin_options_as_gather_options()
                .ok_or("missing GatherOptions")?;
            OpOptions::Gather {
                axis: o.axis(),
                batch_dims: o.batch_dims(),
            }
        }
        B::DepthToSpaceOptions => {
            let o = op
                .builtin_options_as_depth_to_space_options()
                .ok_or("missing DepthToSpaceOptions")?;
            OpOptions::BlockSize {
                block_size: o.block_size(),
            }
        }
        B::SpaceToDepthOptions => {
            let o = op
                .builtin_options_as_space_to_depth_options()
                .ok_or("missing SpaceToDepthOptions")?;
            OpOptions::BlockSize {
                block_size: o.block_size(),
            }
        }
        B::ResizeBilinearOptions => {
            let o = op
                .builtin_options_as_resize_bilinear_options()
                .ok_or("missing ResizeBilinearOptions")?;
            OpOptions::Resize {
                align_corners: o.align_corners(),
                half_pixel_centers: o.half_pixel_centers(),
            }
        }
        B::ResizeNearestNeighborOptions => {
            let o = op
                .builtin_options_as_resize_nearest_neighbor_options()
                .ok_or("missing ResizeNearestNeighborOptions")?;
            OpOptions::Resize {
                align_corners: o.align_corners(),
                half_pixel_centers: o.half_pixel_centers(),
            }
        }
        B::ArgMaxOptions => {
            let o = op
                .builtin_options_as_arg_max_options()
                .ok_or("missing ArgMaxOptions")?;
            OpOptions::ArgMinMax {
                output_type: o.output_type().0,
            }
        }
        B::ArgMinOptions => {
            let o = op
                .builtin_options_as_arg_min_options()
                .ok_or("missing ArgMinOptions")?;
            OpOptions::ArgMinMax {
                output_type: o.output_type().0,
            }
        }
        B::CumsumOptions => {
            let o = op
                .builtin_options_as_cumsum_options()
                .ok_or("missing CumsumOptions")?;
            OpOptions::Cumsum {
                exclusive: o.exclusive(),
                reverse: o.reverse(),
            }
        }
        B::CastOptions => {
            let o = op
                .builtin_options_as_cast_options()
                .ok_or("missing CastOptions")?;
            OpOptions::Cast {
                in_type: o.in_data_type().0,
                out_type: o.out_data_type().0,
            }
        }
        B::TransposeConvOptions => {
            let o = op
                .builtin_options_as_transpose_conv_options()
                .ok_or("missing TransposeConvOptions")?;
            OpOptions::TransposeConv(TransposeConv {
                padding: padding(o.padding())?,
                stride_w: o.stride_w(),
                stride_h: o.stride_h(),
                activation: activation(o.fused_activation_function())?,
                quantized_bias_type: o.quantized_bias_type().0,
            })
        }
        B::BatchMatMulOptions => {
            let o = op
                .builtin_options_as_batch_mat_mul_options()
                .ok_or("missing BatchMatMulOptions")?;
            OpOptions::BatchMatMul {
                adj_x: o.adj_x(),
                adj_y: o.adj_y(),
                asymmetric_quantize_inputs: o.asymmetric_quantize_inputs(),
            }
        }
        B::L2NormOptions => {
            let o = op
                .builtin_options_as_l2_norm_options()
                .ok_or("missing L2NormOptions")?;
            OpOptions::L2Norm {
                activation: activation(o.fused_activation_function())?,
            }
        }
        B::UnidirectionalSequenceLSTMOptions => {
            let o = op
                .builtin_options_as_unidirectional_sequence_lstmoptions()
                .ok_or("missing UnidirectionalSequenceLSTMOptions")?;
            OpOptions::UnidirectionalSequenceLstm(SequenceLstm {
                activation: activation(o.fused_activation_function())?,
                cell_clip: o.cell_clip(),
                proj_clip: o.proj_clip(),
                time_major: o.time_major(),
                asymmetric_quantize_inputs: o.asymmetric_quantize_inputs(),
                diagonal_recurrent_tensors: o.diagonal_recurrent_tensors(),
            })
        }
        B::WhileOptions => {
            let o = op
                .builtin_options_as_while_options()
                .ok_or("missing WhileOptions")?;
            OpOptions::While {
                cond_subgraph: o.cond_subgraph_index(),
                body_subgraph: o.body_subgraph_index(),
            }
        }
        B::IfOptions => {
            let o = op
                .builtin_options_as_if_options()
                .ok_or("missing IfOptions")?;
            OpOptions::If {
                then_subgraph: o.then_subgraph_index(),
                else_subgraph: o.else_subgraph_index(),
            }
        }
        B::CallOnceOptions => {
            let o = op
                .builtin_options_as_call_once_options()
                .ok_or("missing CallOnceOptions")?;
            OpOptions::CallOnce {
                init_subgraph: o.init_subgraph_index(),
            }
        }
        B::VarHandleOptions => {
            let o = op
                .builtin_options_as_var_handle_options()
                .ok_or("missing VarHandleOptions")?;
            OpOptions::VarHandle {
                container: o.container().unwrap_or_default().to_string(),
                shared_name: o.shared_name().unwrap_or_default().to_string(),
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

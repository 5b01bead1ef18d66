//! An owned, editable description of a `.tflite` model: decoded from a verified flatbuffer,
//! changed field by field, and written back with the flatbuffers builder.
//!
//! Only what ferrolite reads is kept; options of operators it does not decode are dropped.
//! Fields are kept in their on-file types (i32 indices, u32 buffer numbers) so that a mutation
//! can write any value the format can carry, including ones a converter never would.

use ferrolite::schema as fb;
use flatbuffers::{FlatBufferBuilder, WIPOffset};

#[derive(Clone, Debug, PartialEq)]
pub struct Quant {
    pub scale: Vec<f32>,
    pub zero_point: Vec<i64>,
    pub quantized_dimension: i32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TensorDesc {
    pub name: String,
    pub shape: Vec<i32>,
    pub dtype: i8,
    pub buffer: u32,
    pub quant: Option<Quant>,
    pub is_variable: bool,
    pub shape_signature: Option<Vec<i32>>,
}

/// The builtin options ferrolite decodes, with every field as stored.
#[derive(Clone, Debug, PartialEq)]
pub enum OptionsDesc {
    None,
    Conv2D {
        padding: i8,
        stride_w: i32,
        stride_h: i32,
        activation: i8,
        dilation_w: i32,
        dilation_h: i32,
    },
    Depthwise {
        padding: i8,
        stride_w: i32,
        stride_h: i32,
        depth_multiplier: i32,
        activation: i8,
        dilation_w: i32,
        dilation_h: i32,
    },
    FullyConnected {
        activation: i8,
        weights_format: i8,
        keep_num_dims: bool,
        asymmetric: bool,
    },
    Pool2D {
        padding: i8,
        stride_w: i32,
        stride_h: i32,
        filter_w: i32,
        filter_h: i32,
        activation: i8,
    },
    Add {
        activation: i8,
        pot_scale_int16: bool,
    },
    Sub {
        activation: i8,
        pot_scale_int16: bool,
    },
    Mul {
        activation: i8,
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
    Squeeze {
        dims: Vec<i32>,
    },
    Concatenation {
        axis: i32,
        activation: i8,
    },
    VarHandle {
        container: Option<String>,
        shared_name: Option<String>,
    },
    /// Any other options table made only of scalars: `kind` is the `BuiltinOptions` tag,
    /// `ints` its integer, enum and boolean fields in schema order, `floats` its float fields.
    Scalars {
        kind: u8,
        ints: Vec<i32>,
        floats: Vec<f32>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct OpDesc {
    pub opcode_index: u32,
    pub inputs: Vec<i32>,
    pub outputs: Vec<i32>,
    pub intermediates: Vec<i32>,
    pub options: OptionsDesc,
    pub custom_options: Option<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SubgraphDesc {
    pub tensors: Vec<TensorDesc>,
    pub inputs: Vec<i32>,
    pub outputs: Vec<i32>,
    pub ops: Vec<OpDesc>,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OpcodeDesc {
    pub deprecated_builtin_code: i8,
    pub builtin_code: i32,
    pub custom_code: Option<String>,
    pub version: i32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BufferDesc {
    pub data: Vec<u8>,
    pub offset: u64,
    pub size: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SignatureDesc {
    pub key: String,
    pub subgraph: u32,
    pub inputs: Vec<(String, u32)>,
    pub outputs: Vec<(String, u32)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ModelDesc {
    pub version: u32,
    pub opcodes: Vec<OpcodeDesc>,
    pub buffers: Vec<BufferDesc>,
    pub subgraphs: Vec<SubgraphDesc>,
    pub signatures: Vec<SignatureDesc>,
    pub description: String,
}

fn ints(v: Option<flatbuffers::Vector<'_, i32>>) -> Vec<i32> {
    v.map(|v| v.iter().collect()).unwrap_or_default()
}

fn decode_options(op: &fb::Operator<'_>) -> OptionsDesc {
    use fb::BuiltinOptions as B;
    let t = op.builtin_options_type();
    let o = match t {
        B::Conv2DOptions => op
            .builtin_options_as_conv_2_doptions()
            .map(|o| OptionsDesc::Conv2D {
                padding: o.padding().0,
                stride_w: o.stride_w(),
                stride_h: o.stride_h(),
                activation: o.fused_activation_function().0,
                dilation_w: o.dilation_w_factor(),
                dilation_h: o.dilation_h_factor(),
            }),
        B::DepthwiseConv2DOptions => {
            op.builtin_options_as_depthwise_conv_2_doptions()
                .map(|o| OptionsDesc::Depthwise {
                    padding: o.padding().0,
                    stride_w: o.stride_w(),
                    stride_h: o.stride_h(),
                    depth_multiplier: o.depth_multiplier(),
                    activation: o.fused_activation_function().0,
                    dilation_w: o.dilation_w_factor(),
                    dilation_h: o.dilation_h_factor(),
                })
        }
        B::FullyConnectedOptions => {
            op.builtin_options_as_fully_connected_options()
                .map(|o| OptionsDesc::FullyConnected {
                    activation: o.fused_activation_function().0,
                    weights_format: o.weights_format().0,
                    keep_num_dims: o.keep_num_dims(),
                    asymmetric: o.asymmetric_quantize_inputs(),
                })
        }
        B::Pool2DOptions => op
            .builtin_options_as_pool_2_doptions()
            .map(|o| OptionsDesc::Pool2D {
                padding: o.padding().0,
                stride_w: o.stride_w(),
                stride_h: o.stride_h(),
                filter_w: o.filter_width(),
                filter_h: o.filter_height(),
                activation: o.fused_activation_function().0,
            }),
        B::AddOptions => op
            .builtin_options_as_add_options()
            .map(|o| OptionsDesc::Add {
                activation: o.fused_activation_function().0,
                pot_scale_int16: o.pot_scale_int16(),
            }),
        B::SubOptions => op
            .builtin_options_as_sub_options()
            .map(|o| OptionsDesc::Sub {
                activation: o.fused_activation_function().0,
                pot_scale_int16: o.pot_scale_int16(),
            }),
        B::MulOptions => op
            .builtin_options_as_mul_options()
            .map(|o| OptionsDesc::Mul {
                activation: o.fused_activation_function().0,
            }),
        B::ReducerOptions => {
            op.builtin_options_as_reducer_options()
                .map(|o| OptionsDesc::Reducer {
                    keep_dims: o.keep_dims(),
                })
        }
        B::ReshapeOptions => {
            op.builtin_options_as_reshape_options()
                .map(|o| OptionsDesc::Reshape {
                    new_shape: o.new_shape().map(|v| v.iter().collect()),
                })
        }
        B::SoftmaxOptions => op
            .builtin_options_as_softmax_options()
            .map(|o| OptionsDesc::Softmax { beta: o.beta() }),
        B::SqueezeOptions => {
            op.builtin_options_as_squeeze_options()
                .map(|o| OptionsDesc::Squeeze {
                    dims: ints(o.squeeze_dims()),
                })
        }
        B::ConcatenationOptions => {
            op.builtin_options_as_concatenation_options()
                .map(|o| OptionsDesc::Concatenation {
                    axis: o.axis(),
                    activation: o.fused_activation_function().0,
                })
        }
        B::VarHandleOptions => {
            op.builtin_options_as_var_handle_options()
                .map(|o| OptionsDesc::VarHandle {
                    container: o.container().map(str::to_string),
                    shared_name: o.shared_name().map(str::to_string),
                })
        }
        _ => decode_scalars(op),
    };
    o.unwrap_or(OptionsDesc::None)
}

fn scalars(kind: fb::BuiltinOptions, ints: &[i32], floats: &[f32]) -> OptionsDesc {
    OptionsDesc::Scalars {
        kind: kind.0,
        ints: ints.to_vec(),
        floats: floats.to_vec(),
    }
}

/// The scalar-only options of the other operators ferrolite implements.
fn decode_scalars(op: &fb::Operator<'_>) -> Option<OptionsDesc> {
    use fb::BuiltinOptions as B;
    let t = op.builtin_options_type();
    let b = |v: bool| v as i32;
    match t {
        B::StridedSliceOptions => op.builtin_options_as_strided_slice_options().map(|o| {
            let ints = [
                o.begin_mask(),
                o.end_mask(),
                o.ellipsis_mask(),
                o.new_axis_mask(),
                o.shrink_axis_mask(),
                b(o.offset()),
            ];
            scalars(t, &ints, &[])
        }),
        B::GatherOptions => op
            .builtin_options_as_gather_options()
            .map(|o| scalars(t, &[o.axis(), o.batch_dims()], &[])),
        B::SplitOptions => op
            .builtin_options_as_split_options()
            .map(|o| scalars(t, &[o.num_splits()], &[])),
        B::SplitVOptions => op
            .builtin_options_as_split_voptions()
            .map(|o| scalars(t, &[o.num_splits()], &[])),
        B::MirrorPadOptions => op
            .builtin_options_as_mirror_pad_options()
            .map(|o| scalars(t, &[o.mode().0 as i32], &[])),
        B::ResizeBilinearOptions => op
            .builtin_options_as_resize_bilinear_options()
            .map(|o| scalars(t, &[b(o.align_corners()), b(o.half_pixel_centers())], &[])),
        B::ResizeNearestNeighborOptions => op
            .builtin_options_as_resize_nearest_neighbor_options()
            .map(|o| scalars(t, &[b(o.align_corners()), b(o.half_pixel_centers())], &[])),
        B::ArgMaxOptions => op
            .builtin_options_as_arg_max_options()
            .map(|o| scalars(t, &[o.output_type().0 as i32], &[])),
        B::ArgMinOptions => op
            .builtin_options_as_arg_min_options()
            .map(|o| scalars(t, &[o.output_type().0 as i32], &[])),
        B::WhileOptions => op
            .builtin_options_as_while_options()
            .map(|o| scalars(t, &[o.cond_subgraph_index(), o.body_subgraph_index()], &[])),
        B::IfOptions => op
            .builtin_options_as_if_options()
            .map(|o| scalars(t, &[o.then_subgraph_index(), o.else_subgraph_index()], &[])),
        B::CallOnceOptions => op
            .builtin_options_as_call_once_options()
            .map(|o| scalars(t, &[o.init_subgraph_index()], &[])),
        B::PackOptions => op
            .builtin_options_as_pack_options()
            .map(|o| scalars(t, &[o.values_count(), o.axis()], &[])),
        B::UnpackOptions => op
            .builtin_options_as_unpack_options()
            .map(|o| scalars(t, &[o.num(), o.axis()], &[])),
        B::LeakyReluOptions => op
            .builtin_options_as_leaky_relu_options()
            .map(|o| scalars(t, &[], &[o.alpha()])),
        B::GeluOptions => op
            .builtin_options_as_gelu_options()
            .map(|o| scalars(t, &[b(o.approximate())], &[])),
        B::SpaceToDepthOptions => op
            .builtin_options_as_space_to_depth_options()
            .map(|o| scalars(t, &[o.block_size()], &[])),
        B::DepthToSpaceOptions => op
            .builtin_options_as_depth_to_space_options()
            .map(|o| scalars(t, &[o.block_size()], &[])),
        B::CastOptions => op.builtin_options_as_cast_options().map(|o| {
            scalars(
                t,
                &[o.in_data_type().0 as i32, o.out_data_type().0 as i32],
                &[],
            )
        }),
        B::ShapeOptions => op
            .builtin_options_as_shape_options()
            .map(|o| scalars(t, &[o.out_type().0 as i32], &[])),
        B::DivOptions => op
            .builtin_options_as_div_options()
            .map(|o| scalars(t, &[o.fused_activation_function().0 as i32], &[])),
        B::CumsumOptions => op
            .builtin_options_as_cumsum_options()
            .map(|o| scalars(t, &[b(o.exclusive()), b(o.reverse())], &[])),
        B::TransposeConvOptions => op.builtin_options_as_transpose_conv_options().map(|o| {
            let ints = [
                o.padding().0 as i32,
                o.stride_w(),
                o.stride_h(),
                o.fused_activation_function().0 as i32,
            ];
            scalars(t, &ints, &[])
        }),
        B::BatchMatMulOptions => op.builtin_options_as_batch_mat_mul_options().map(|o| {
            let ints = [
                b(o.adj_x()),
                b(o.adj_y()),
                b(o.asymmetric_quantize_inputs()),
            ];
            scalars(t, &ints, &[])
        }),
        B::L2NormOptions => op
            .builtin_options_as_l2_norm_options()
            .map(|o| scalars(t, &[o.fused_activation_function().0 as i32], &[])),
        _ => None,
    }
}

impl ModelDesc {
    /// Decodes `bytes` through the verifying entry point; `None` if it is not a valid
    /// flatbuffer with the TFLite identifier.
    pub fn decode(bytes: &[u8]) -> Option<ModelDesc> {
        if bytes.len() < 8 || &bytes[4..8] != b"TFL3" {
            return None;
        }
        let m = fb::root_as_model(bytes).ok()?;
        let opcodes = m
            .operator_codes()
            .map(|v| {
                v.iter()
                    .map(|c| OpcodeDesc {
                        deprecated_builtin_code: c.deprecated_builtin_code(),
                        builtin_code: c.builtin_code().0,
                        custom_code: c.custom_code().map(str::to_string),
                        version: c.version(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let buffers = m
            .buffers()
            .map(|v| {
                v.iter()
                    .map(|b| BufferDesc {
                        data: b.data().map(|d| d.bytes().to_vec()).unwrap_or_default(),
                        offset: b.offset(),
                        size: b.size(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut subgraphs = Vec::new();
        for sg in m.subgraphs().iter().flat_map(|v| v.iter()) {
            let tensors = sg
                .tensors()
                .map(|v| {
                    v.iter()
                        .map(|t| TensorDesc {
                            name: t.name().unwrap_or_default().to_string(),
                            shape: ints(t.shape()),
                            dtype: t.type_().0,
                            buffer: t.buffer(),
                            quant: t.quantization().and_then(|q| {
                                let scale: Vec<f32> =
                                    q.scale().map(|s| s.iter().collect()).unwrap_or_default();
                                let zero_point: Vec<i64> = q
                                    .zero_point()
                                    .map(|s| s.iter().collect())
                                    .unwrap_or_default();
                                (!scale.is_empty() || !zero_point.is_empty()).then_some(Quant {
                                    scale,
                                    zero_point,
                                    quantized_dimension: q.quantized_dimension(),
                                })
                            }),
                            is_variable: t.is_variable(),
                            shape_signature: t.shape_signature().map(|v| v.iter().collect()),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let ops = sg
                .operators()
                .map(|v| {
                    v.iter()
                        .map(|op| OpDesc {
                            opcode_index: op.opcode_index(),
                            inputs: ints(op.inputs()),
                            outputs: ints(op.outputs()),
                            intermediates: ints(op.intermediates()),
                            options: decode_options(&op),
                            custom_options: op.custom_options().map(|d| d.bytes().to_vec()),
                        })
                        .collect()
                })
                .unwrap_or_default();
            subgraphs.push(SubgraphDesc {
                tensors,
                inputs: ints(sg.inputs()),
                outputs: ints(sg.outputs()),
                ops,
                name: sg.name().unwrap_or_default().to_string(),
            });
        }
        let maps = |v: Option<
            flatbuffers::Vector<'_, flatbuffers::ForwardsUOffset<fb::TensorMap<'_>>>,
        >| {
            v.iter()
                .flat_map(|v| v.iter())
                .map(|t| (t.name().unwrap_or_default().to_string(), t.tensor_index()))
                .collect()
        };
        let signatures = m
            .signature_defs()
            .iter()
            .flat_map(|v| v.iter())
            .map(|s| SignatureDesc {
                key: s.signature_key().unwrap_or_default().to_string(),
                subgraph: s.subgraph_index(),
                inputs: maps(s.inputs()),
                outputs: maps(s.outputs()),
            })
            .collect();
        Some(ModelDesc {
            version: m.version(),
            opcodes,
            buffers,
            subgraphs,
            signatures,
            description: m.description().unwrap_or_default().to_string(),
        })
    }

    /// Writes the description as a `.tflite` flatbuffer.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = FlatBufferBuilder::new();
        let opcodes: Vec<_> = self
            .opcodes
            .iter()
            .map(|c| {
                let custom_code = c.custom_code.as_deref().map(|s| b.create_string(s));
                fb::OperatorCode::create(
                    &mut b,
                    &fb::OperatorCodeArgs {
                        deprecated_builtin_code: c.deprecated_builtin_code,
                        custom_code,
                        version: c.version,
                        builtin_code: fb::BuiltinOperator(c.builtin_code),
                    },
                )
            })
            .collect();
        let opcodes = b.create_vector(&opcodes);
        let buffers: Vec<_> = self
            .buffers
            .iter()
            .map(|d| {
                // The builder aligns payloads to 4 bytes only, like most files in the wild;
                // ferrolite must cope with that.
                let data = (!d.data.is_empty()).then(|| b.create_vector(&d.data));
                fb::Buffer::create(
                    &mut b,
                    &fb::BufferArgs {
                        data,
                        offset: d.offset,
                        size: d.size,
                    },
                )
            })
            .collect();
        let buffers = b.create_vector(&buffers);
        let subgraphs: Vec<_> = self
            .subgraphs
            .iter()
            .map(|sg| encode_subgraph(&mut b, sg))
            .collect();
        let subgraphs = b.create_vector(&subgraphs);
        let signatures: Vec<_> = self
            .signatures
            .iter()
            .map(|s| {
                let mut maps = |v: &[(String, u32)]| {
                    let v: Vec<_> = v
                        .iter()
                        .map(|(name, t)| {
                            let name = Some(b.create_string(name));
                            fb::TensorMap::create(
                                &mut b,
                                &fb::TensorMapArgs {
                                    name,
                                    tensor_index: *t,
                                },
                            )
                        })
                        .collect();
                    b.create_vector(&v)
                };
                let inputs = Some(maps(&s.inputs));
                let outputs = Some(maps(&s.outputs));
                let signature_key = Some(b.create_string(&s.key));
                fb::SignatureDef::create(
                    &mut b,
                    &fb::SignatureDefArgs {
                        inputs,
                        outputs,
                        signature_key,
                        subgraph_index: s.subgraph,
                    },
                )
            })
            .collect();
        let signature_defs = (!signatures.is_empty()).then(|| b.create_vector(&signatures));
        let description = Some(b.create_string(&self.description));
        let model = fb::Model::create(
            &mut b,
            &fb::ModelArgs {
                version: self.version,
                operator_codes: Some(opcodes),
                subgraphs: Some(subgraphs),
                description,
                buffers: Some(buffers),
                signature_defs,
                ..Default::default()
            },
        );
        fb::finish_model_buffer(&mut b, model);
        b.finished_data().to_vec()
    }
}

fn encode_subgraph<'a>(
    b: &mut FlatBufferBuilder<'a>,
    sg: &SubgraphDesc,
) -> WIPOffset<fb::SubGraph<'a>> {
    let tensors: Vec<_> = sg
        .tensors
        .iter()
        .map(|t| {
            let shape = Some(b.create_vector(&t.shape));
            let name = Some(b.create_string(&t.name));
            let shape_signature = t.shape_signature.as_ref().map(|s| b.create_vector(s));
            let quantization = t.quant.as_ref().map(|q| {
                let scale = Some(b.create_vector(&q.scale));
                let zero_point = Some(b.create_vector(&q.zero_point));
                fb::QuantizationParameters::create(
                    b,
                    &fb::QuantizationParametersArgs {
                        scale,
                        zero_point,
                        quantized_dimension: q.quantized_dimension,
                        ..Default::default()
                    },
                )
            });
            fb::Tensor::create(
                b,
                &fb::TensorArgs {
                    shape,
                    type_: fb::TensorType(t.dtype),
                    buffer: t.buffer,
                    name,
                    quantization,
                    is_variable: t.is_variable,
                    shape_signature,
                    ..Default::default()
                },
            )
        })
        .collect();
    let tensors = b.create_vector(&tensors);
    let ops: Vec<_> = sg
        .ops
        .iter()
        .map(|op| {
            let inputs = Some(b.create_vector(&op.inputs));
            let outputs = Some(b.create_vector(&op.outputs));
            let intermediates =
                (!op.intermediates.is_empty()).then(|| b.create_vector(&op.intermediates));
            let custom_options = op.custom_options.as_ref().map(|c| b.create_vector(c));
            let (builtin_options_type, builtin_options) = encode_options(b, &op.options);
            fb::Operator::create(
                b,
                &fb::OperatorArgs {
                    opcode_index: op.opcode_index,
                    inputs,
                    outputs,
                    builtin_options_type,
                    builtin_options,
                    custom_options,
                    intermediates,
                    ..Default::default()
                },
            )
        })
        .collect();
    let ops = b.create_vector(&ops);
    let inputs = Some(b.create_vector(&sg.inputs));
    let outputs = Some(b.create_vector(&sg.outputs));
    let name = Some(b.create_string(&sg.name));
    fb::SubGraph::create(
        b,
        &fb::SubGraphArgs {
            tensors: Some(tensors),
            inputs,
            outputs,
            operators: Some(ops),
            name,
            debug_metadata_index: -1,
        },
    )
}

fn encode_options(
    b: &mut FlatBufferBuilder<'_>,
    o: &OptionsDesc,
) -> (
    fb::BuiltinOptions,
    Option<WIPOffset<flatbuffers::UnionWIPOffset>>,
) {
    use fb::BuiltinOptions as B;
    use fb::{ActivationFunctionType as Act, Padding as Pad};
    match o {
        OptionsDesc::None => (B::NONE, None),
        OptionsDesc::Conv2D {
            padding,
            stride_w,
            stride_h,
            activation,
            dilation_w,
            dilation_h,
        } => {
            let o = fb::Conv2DOptions::create(
                b,
                &fb::Conv2DOptionsArgs {
                    padding: Pad(*padding),
                    stride_w: *stride_w,
                    stride_h: *stride_h,
                    fused_activation_function: Act(*activation),
                    dilation_w_factor: *dilation_w,
                    dilation_h_factor: *dilation_h,
                    quantized_bias_type: fb::TensorType::FLOAT32,
                },
            );
            (B::Conv2DOptions, Some(o.as_union_value()))
        }
        OptionsDesc::Depthwise {
            padding,
            stride_w,
            stride_h,
            depth_multiplier,
            activation,
            dilation_w,
            dilation_h,
        } => {
            let o = fb::DepthwiseConv2DOptions::create(
                b,
                &fb::DepthwiseConv2DOptionsArgs {
                    padding: Pad(*padding),
                    stride_w: *stride_w,
                    stride_h: *stride_h,
                    depth_multiplier: *depth_multiplier,
                    fused_activation_function: Act(*activation),
                    dilation_w_factor: *dilation_w,
                    dilation_h_factor: *dilation_h,
                },
            );
            (B::DepthwiseConv2DOptions, Some(o.as_union_value()))
        }
        OptionsDesc::FullyConnected {
            activation,
            weights_format,
            keep_num_dims,
            asymmetric,
        } => {
            let o = fb::FullyConnectedOptions::create(
                b,
                &fb::FullyConnectedOptionsArgs {
                    fused_activation_function: Act(*activation),
                    weights_format: fb::FullyConnectedOptionsWeightsFormat(*weights_format),
                    keep_num_dims: *keep_num_dims,
                    asymmetric_quantize_inputs: *asymmetric,
                    ..Default::default()
                },
            );
            (B::FullyConnectedOptions, Some(o.as_union_value()))
        }
        OptionsDesc::Pool2D {
            padding,
            stride_w,
            stride_h,
            filter_w,
            filter_h,
            activation,
        } => {
            let o = fb::Pool2DOptions::create(
                b,
                &fb::Pool2DOptionsArgs {
                    padding: Pad(*padding),
                    stride_w: *stride_w,
                    stride_h: *stride_h,
                    filter_width: *filter_w,
                    filter_height: *filter_h,
                    fused_activation_function: Act(*activation),
                },
            );
            (B::Pool2DOptions, Some(o.as_union_value()))
        }
        OptionsDesc::Add {
            activation,
            pot_scale_int16,
        } => {
            let o = fb::AddOptions::create(
                b,
                &fb::AddOptionsArgs {
                    fused_activation_function: Act(*activation),
                    pot_scale_int16: *pot_scale_int16,
                },
            );
            (B::AddOptions, Some(o.as_union_value()))
        }
        OptionsDesc::Sub {
            activation,
            pot_scale_int16,
        } => {
            let o = fb::SubOptions::create(
                b,
                &fb::SubOptionsArgs {
                    fused_activation_function: Act(*activation),
                    pot_scale_int16: *pot_scale_int16,
                },
            );
            (B::SubOptions, Some(o.as_union_value()))
        }
        OptionsDesc::Mul { activation } => {
            let o = fb::MulOptions::create(
                b,
                &fb::MulOptionsArgs {
                    fused_activation_function: Act(*activation),
                },
            );
            (B::MulOptions, Some(o.as_union_value()))
        }
        OptionsDesc::Reducer { keep_dims } => {
            let o = fb::ReducerOptions::create(
                b,
                &fb::ReducerOptionsArgs {
                    keep_dims: *keep_dims,
                },
            );
            (B::ReducerOptions, Some(o.as_union_value()))
        }
        OptionsDesc::Reshape { new_shape } => {
            let new_shape = new_shape.as_ref().map(|s| b.create_vector(s));
            let o = fb::ReshapeOptions::create(b, &fb::ReshapeOptionsArgs { new_shape });
            (B::ReshapeOptions, Some(o.as_union_value()))
        }
        OptionsDesc::Softmax { beta } => {
            let o = fb::SoftmaxOptions::create(b, &fb::SoftmaxOptionsArgs { beta: *beta });
            (B::SoftmaxOptions, Some(o.as_union_value()))
        }
        OptionsDesc::Squeeze { dims } => {
            let squeeze_dims = Some(b.create_vector(dims));
            let o = fb::SqueezeOptions::create(b, &fb::SqueezeOptionsArgs { squeeze_dims });
            (B::SqueezeOptions, Some(o.as_union_value()))
        }
        OptionsDesc::Concatenation { axis, activation } => {
            let o = fb::ConcatenationOptions::create(
                b,
                &fb::ConcatenationOptionsArgs {
                    axis: *axis,
                    fused_activation_function: Act(*activation),
                },
            );
            (B::ConcatenationOptions, Some(o.as_union_value()))
        }
        OptionsDesc::VarHandle {
            container,
            shared_name,
        } => {
            let container = container.as_deref().map(|s| b.create_string(s));
            let shared_name = shared_name.as_deref().map(|s| b.create_string(s));
            let o = fb::VarHandleOptions::create(
                b,
                &fb::VarHandleOptionsArgs {
                    container,
                    shared_name,
                },
            );
            (B::VarHandleOptions, Some(o.as_union_value()))
        }
        OptionsDesc::Scalars { kind, ints, floats } => encode_scalars(b, *kind, ints, floats),
    }
}

/// Writes a [`OptionsDesc::Scalars`] table; missing fields are 0, extra ones ignored.
fn encode_scalars(
    b: &mut FlatBufferBuilder<'_>,
    kind: u8,
    ints: &[i32],
    floats: &[f32],
) -> (
    fb::BuiltinOptions,
    Option<WIPOffset<flatbuffers::UnionWIPOffset>>,
) {
    use fb::BuiltinOptions as B;
    let i = |k: usize| ints.get(k).copied().unwrap_or(0);
    let e = |k: usize| i(k) as i8;
    let f = |k: usize| floats.get(k).copied().unwrap_or(0.0);
    let flag = |k: usize| i(k) != 0;
    let t = B(kind);
    let o = match t {
        B::StridedSliceOptions => {
            let args = fb::StridedSliceOptionsArgs {
                begin_mask: i(0),
                end_mask: i(1),
                ellipsis_mask: i(2),
                new_axis_mask: i(3),
                shrink_axis_mask: i(4),
                offset: flag(5),
            };
            fb::StridedSliceOptions::create(b, &args).as_union_value()
        }
        B::GatherOptions => {
            let args = fb::GatherOptionsArgs {
                axis: i(0),
                batch_dims: i(1),
            };
            fb::GatherOptions::create(b, &args).as_union_value()
        }
        B::SplitOptions => {
            let args = fb::SplitOptionsArgs { num_splits: i(0) };
            fb::SplitOptions::create(b, &args).as_union_value()
        }
        B::SplitVOptions => {
            let args = fb::SplitVOptionsArgs { num_splits: i(0) };
            fb::SplitVOptions::create(b, &args).as_union_value()
        }
        B::MirrorPadOptions => {
            let args = fb::MirrorPadOptionsArgs {
                mode: fb::MirrorPadMode(e(0)),
            };
            fb::MirrorPadOptions::create(b, &args).as_union_value()
        }
        B::ResizeBilinearOptions => {
            let args = fb::ResizeBilinearOptionsArgs {
                align_corners: flag(0),
                half_pixel_centers: flag(1),
            };
            fb::ResizeBilinearOptions::create(b, &args).as_union_value()
        }
        B::ResizeNearestNeighborOptions => {
            let args = fb::ResizeNearestNeighborOptionsArgs {
                align_corners: flag(0),
                half_pixel_centers: flag(1),
            };
            fb::ResizeNearestNeighborOptions::create(b, &args).as_union_value()
        }
        B::ArgMaxOptions => {
            let args = fb::ArgMaxOptionsArgs {
                output_type: fb::TensorType(e(0)),
            };
            fb::ArgMaxOptions::create(b, &args).as_union_value()
        }
        B::ArgMinOptions => {
            let args = fb::ArgMinOptionsArgs {
                output_type: fb::TensorType(e(0)),
            };
            fb::ArgMinOptions::create(b, &args).as_union_value()
        }
        B::WhileOptions => {
            let args = fb::WhileOptionsArgs {
                cond_subgraph_index: i(0),
                body_subgraph_index: i(1),
            };
            fb::WhileOptions::create(b, &args).as_union_value()
        }
        B::IfOptions => {
            let args = fb::IfOptionsArgs {
                then_subgraph_index: i(0),
                else_subgraph_index: i(1),
            };
            fb::IfOptions::create(b, &args).as_union_value()
        }
        B::CallOnceOptions => {
            let args = fb::CallOnceOptionsArgs {
                init_subgraph_index: i(0),
            };
            fb::CallOnceOptions::create(b, &args).as_union_value()
        }
        B::PackOptions => {
            let args = fb::PackOptionsArgs {
                values_count: i(0),
                axis: i(1),
            };
            fb::PackOptions::create(b, &args).as_union_value()
        }
        B::UnpackOptions => {
            let args = fb::UnpackOptionsArgs {
                num: i(0),
                axis: i(1),
            };
            fb::UnpackOptions::create(b, &args).as_union_value()
        }
        B::LeakyReluOptions => {
            let args = fb::LeakyReluOptionsArgs { alpha: f(0) };
            fb::LeakyReluOptions::create(b, &args).as_union_value()
        }
        B::GeluOptions => {
            let args = fb::GeluOptionsArgs {
                approximate: flag(0),
            };
            fb::GeluOptions::create(b, &args).as_union_value()
        }
        B::SpaceToDepthOptions => {
            let args = fb::SpaceToDepthOptionsArgs { block_size: i(0) };
            fb::SpaceToDepthOptions::create(b, &args).as_union_value()
        }
        B::DepthToSpaceOptions => {
            let args = fb::DepthToSpaceOptionsArgs { block_size: i(0) };
            fb::DepthToSpaceOptions::create(b, &args).as_union_value()
        }
        B::CastOptions => {
            let args = fb::CastOptionsArgs {
                in_data_type: fb::TensorType(e(0)),
                out_data_type: fb::TensorType(e(1)),
            };
            fb::CastOptions::create(b, &args).as_union_value()
        }
        B::ShapeOptions => {
            let args = fb::ShapeOptionsArgs {
                out_type: fb::TensorType(e(0)),
            };
            fb::ShapeOptions::create(b, &args).as_union_value()
        }
        B::DivOptions => {
            let args = fb::DivOptionsArgs {
                fused_activation_function: fb::ActivationFunctionType(e(0)),
            };
            fb::DivOptions::create(b, &args).as_union_value()
        }
        B::CumsumOptions => {
            let args = fb::CumsumOptionsArgs {
                exclusive: flag(0),
                reverse: flag(1),
            };
            fb::CumsumOptions::create(b, &args).as_union_value()
        }
        B::TransposeConvOptions => {
            let args = fb::TransposeConvOptionsArgs {
                padding: fb::Padding(e(0)),
                stride_w: i(1),
                stride_h: i(2),
                fused_activation_function: fb::ActivationFunctionType(e(3)),
                quantized_bias_type: fb::TensorType::FLOAT32,
            };
            fb::TransposeConvOptions::create(b, &args).as_union_value()
        }
        B::BatchMatMulOptions => {
            let args = fb::BatchMatMulOptionsArgs {
                adj_x: flag(0),
                adj_y: flag(1),
                asymmetric_quantize_inputs: flag(2),
            };
            fb::BatchMatMulOptions::create(b, &args).as_union_value()
        }
        B::L2NormOptions => {
            let args = fb::L2NormOptionsArgs {
                fused_activation_function: fb::ActivationFunctionType(e(0)),
            };
            fb::L2NormOptions::create(b, &args).as_union_value()
        }
        _ => return (B::NONE, None),
    };
    (t, Some(o))
}

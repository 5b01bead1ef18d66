//! Builds small models with the flatbuffers builder, so that tests can describe a valid model
//! and then break exactly one thing in it.

#![allow(dead_code)]

use ferrolite::schema as fb;
use flatbuffers::FlatBufferBuilder;

#[derive(Clone, Debug)]
pub struct TensorSpec {
    pub name: String,
    pub shape: Vec<i32>,
    pub dtype: fb::TensorType,
    pub buffer: u32,
    /// (scales, zero points, quantized dimension)
    pub quant: Option<(Vec<f32>, Vec<i64>, i32)>,
}

impl TensorSpec {
    pub fn f32(name: &str, shape: &[i32], buffer: u32) -> Self {
        TensorSpec {
            name: name.into(),
            shape: shape.to_vec(),
            dtype: fb::TensorType::FLOAT32,
            buffer,
            quant: None,
        }
    }
}

#[derive(Clone, Debug)]
pub enum OptionsSpec {
    None,
    Add {
        activation: fb::ActivationFunctionType,
    },
    Reshape,
    Mul {
        activation: fb::ActivationFunctionType,
    },
    /// CONV_2D with SAME padding, no dilation.
    Conv2D {
        stride: i32,
        activation: fb::ActivationFunctionType,
    },
    /// DEPTHWISE_CONV_2D with SAME padding, no dilation, depth multiplier 1.
    DepthwiseConv2D {
        stride: i32,
        activation: fb::ActivationFunctionType,
    },
}

#[derive(Clone, Debug)]
pub struct OpSpec {
    pub opcode_index: u32,
    pub inputs: Vec<i32>,
    pub outputs: Vec<i32>,
    pub options: OptionsSpec,
}

#[derive(Clone, Debug)]
pub struct ModelSpec {
    pub version: u32,
    /// Builtin codes; each is written to both the new and the deprecated field.
    pub opcodes: Vec<i32>,
    pub buffers: Vec<Vec<u8>>,
    pub tensors: Vec<TensorSpec>,
    pub inputs: Vec<i32>,
    pub outputs: Vec<i32>,
    pub ops: Vec<OpSpec>,
    /// Custom codes, in order, for the opcodes equal to CUSTOM (32).
    pub custom_names: Vec<String>,
    /// Custom options bytes by operator index.
    pub custom_options: Vec<(usize, Vec<u8>)>,
}

pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

impl ModelSpec {
    /// `out = in + const`, shapes [1, 4]: tensor 0 input, 1 constant (buffer 1), 2 output.
    pub fn add_model() -> Self {
        ModelSpec {
            version: 3,
            opcodes: vec![fb::BuiltinOperator::ADD.0],
            buffers: vec![vec![], f32_bytes(&[1.0, 2.0, 3.0, 4.0])],
            tensors: vec![
                TensorSpec::f32("in", &[1, 4], 0),
                TensorSpec::f32("const", &[1, 4], 1),
                TensorSpec::f32("out", &[1, 4], 0),
            ],
            inputs: vec![0],
            outputs: vec![2],
            ops: vec![OpSpec {
                opcode_index: 0,
                inputs: vec![0, 1],
                outputs: vec![2],
                options: OptionsSpec::Add {
                    activation: fb::ActivationFunctionType::NONE,
                },
            }],
            custom_names: Vec::new(),
            custom_options: Vec::new(),
        }
    }

    pub fn build(&self) -> Vec<u8> {
        let mut b = FlatBufferBuilder::new();
        let mut names = self.custom_names.iter();
        let opcodes: Vec<_> = self
            .opcodes
            .iter()
            .map(|&c| {
                let custom_code = if c == fb::BuiltinOperator::CUSTOM.0 {
                    names.next().map(|n| b.create_string(n))
                } else {
                    None
                };
                fb::OperatorCode::create(
                    &mut b,
                    &fb::OperatorCodeArgs {
                        deprecated_builtin_code: c.min(127) as i8,
                        custom_code,
                        version: 1,
                        builtin_code: fb::BuiltinOperator(c),
                    },
                )
            })
            .collect();
        let opcodes = b.create_vector(&opcodes);
        let buffers: Vec<_> = self
            .buffers
            .iter()
            .map(|d| {
                let data = if d.is_empty() {
                    None
                } else {
                    Some(b.create_vector(d))
                };
                fb::Buffer::create(
                    &mut b,
                    &fb::BufferArgs {
                        data,
                        offset: 0,
                        size: 0,
                    },
                )
            })
            .collect();
        let buffers = b.create_vector(&buffers);
        let tensors: Vec<_> = self
            .tensors
            .iter()
            .map(|t| {
                let shape = Some(b.create_vector(&t.shape));
                let name = Some(b.create_string(&t.name));
                let quantization = t.quant.as_ref().map(|(s, z, axis)| {
                    let scale = Some(b.create_vector(s));
                    let zero_point = Some(b.create_vector(z));
                    fb::QuantizationParameters::create(
                        &mut b,
                        &fb::QuantizationParametersArgs {
                            scale,
                            zero_point,
                            quantized_dimension: *axis,
                            ..Default::default()
                        },
                    )
                });
                fb::Tensor::create(
                    &mut b,
                    &fb::TensorArgs {
                        shape,
                        type_: t.dtype,
                        buffer: t.buffer,
                        name,
                        quantization,
                        ..Default::default()
                    },
                )
            })
            .collect();
        let tensors = b.create_vector(&tensors);
        let ops: Vec<_> = self
            .ops
            .iter()
            .enumerate()
            .map(|(index, op)| {
                let custom_options = self
                    .custom_options
                    .iter()
                    .find(|(i, _)| *i == index)
                    .map(|(_, bytes)| b.create_vector(bytes));
                let inputs = Some(b.create_vector(&op.inputs));
                let outputs = Some(b.create_vector(&op.outputs));
                let (builtin_options_type, builtin_options) = match op.options {
                    OptionsSpec::None => (fb::BuiltinOptions::NONE, None),
                    OptionsSpec::Add { activation } => {
                        let o = fb::AddOptions::create(
                            &mut b,
                            &fb::AddOptionsArgs {
                                fused_activation_function: activation,
                                pot_scale_int16: true,
                            },
                        );
                        (fb::BuiltinOptions::AddOptions, Some(o.as_union_value()))
                    }
                    OptionsSpec::Mul { activation } => {
                        let o = fb::MulOptions::create(
                            &mut b,
                            &fb::MulOptionsArgs {
                                fused_activation_function: activation,
                            },
                        );
                        (fb::BuiltinOptions::MulOptions, Some(o.as_union_value()))
                    }
                    OptionsSpec::Conv2D { stride, activation } => {
                        let o = fb::Conv2DOptions::create(
                            &mut b,
                            &fb::Conv2DOptionsArgs {
                                padding: fb::Padding::SAME,
                                stride_w: stride,
                                stride_h: stride,
                                fused_activation_function: activation,
                                dilation_w_factor: 1,
                                dilation_h_factor: 1,
                                ..Default::default()
                            },
                        );
                        (fb::BuiltinOptions::Conv2DOptions, Some(o.as_union_value()))
                    }
                    OptionsSpec::DepthwiseConv2D { stride, activation } => {
                        let o = fb::DepthwiseConv2DOptions::create(
                            &mut b,
                            &fb::DepthwiseConv2DOptionsArgs {
                                padding: fb::Padding::SAME,
                                stride_w: stride,
                                stride_h: stride,
                                depth_multiplier: 1,
                                fused_activation_function: activation,
                                dilation_w_factor: 1,
                                dilation_h_factor: 1,
                            },
                        );
                        (
                            fb::BuiltinOptions::DepthwiseConv2DOptions,
                            Some(o.as_union_value()),
                        )
                    }
                    OptionsSpec::Reshape => {
                        let o = fb::ReshapeOptions::create(
                            &mut b,
                            &fb::ReshapeOptionsArgs { new_shape: None },
                        );
                        (fb::BuiltinOptions::ReshapeOptions, Some(o.as_union_value()))
                    }
                };
                fb::Operator::create(
                    &mut b,
                    &fb::OperatorArgs {
                        opcode_index: op.opcode_index,
                        inputs,
                        outputs,
                        builtin_options_type,
                        builtin_options,
                        custom_options,
                        ..Default::default()
                    },
                )
            })
            .collect();
        let ops = b.create_vector(&ops);
        let inputs = Some(b.create_vector(&self.inputs));
        let outputs = Some(b.create_vector(&self.outputs));
        let sg = fb::SubGraph::create(
            &mut b,
            &fb::SubGraphArgs {
                tensors: Some(tensors),
                inputs,
                outputs,
                operators: Some(ops),
                name: None,
                debug_metadata_index: -1,
            },
        );
        let subgraphs = Some(b.create_vector(&[sg]));
        let model = fb::Model::create(
            &mut b,
            &fb::ModelArgs {
                version: self.version,
                operator_codes: Some(opcodes),
                subgraphs,
                buffers: Some(buffers),
                ..Default::default()
            },
        );
        fb::finish_model_buffer(&mut b, model);
        b.finished_data().to_vec()
    }
}

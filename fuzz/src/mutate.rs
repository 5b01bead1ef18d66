//! Structure-aware mutation: the fuzzer's bytes choose a fixture and a list of field edits,
//! which are applied to the decoded model before it is written back. This reaches the checks
//! behind the flatbuffer verifier far more often than byte flips do.

use arbitrary::{Result, Unstructured};

use crate::desc::{BufferDesc, ModelDesc, OpDesc, OptionsDesc, Quant, TensorDesc};

/// Small fixtures, one or two per operator family and dtype; embedded so that the target is
/// self-contained. Each is also in `corpus/seed/models/`.
pub const FIXTURES: &[&[u8]] = &[
    include_bytes!("../corpus/seed/models/conv2d_same_s1_relu_f32.tflite"),
    include_bytes!("../corpus/seed/models/conv2d_valid_d2_relu_f32.tflite"),
    include_bytes!("../corpus/seed/models/dwconv_m2_same_s2_relu_f32.tflite"),
    include_bytes!("../corpus/seed/models/fc_bias_f32.tflite"),
    include_bytes!("../corpus/seed/models/fc_rank3_nokeep_f32.tflite"),
    include_bytes!("../corpus/seed/models/add_bcast_both_f32.tflite"),
    include_bytes!("../corpus/seed/models/mul_bcast_channel_f32.tflite"),
    include_bytes!("../corpus/seed/models/maxpool_same_k3_s2_f32.tflite"),
    include_bytes!("../corpus/seed/models/avgpool_valid_k3_s2_f32.tflite"),
    include_bytes!("../corpus/seed/models/mean_hw_keepdims_f32.tflite"),
    include_bytes!("../corpus/seed/models/softmax_rank4_f32.tflite"),
    include_bytes!("../corpus/seed/models/reshape_shape_f32.tflite"),
    include_bytes!("../corpus/seed/models/reshape_minus1_f32.tflite"),
    include_bytes!("../corpus/seed/models/dequantize_fp16_conv2d_f32.tflite"),
    include_bytes!("../corpus/seed/models/dequantize_int8_dwconv_f32.tflite"),
    include_bytes!("../corpus/seed/models/conv2d_same_s1_relu_int8.tflite"),
    include_bytes!("../corpus/seed/models/dwconv_m2_same_s2_relu_int8.tflite"),
    include_bytes!("../corpus/seed/models/fc_bias_int8.tflite"),
    include_bytes!("../corpus/seed/models/add_bcast_both_int8.tflite"),
    include_bytes!("../corpus/seed/models/avgpool_same_k3_s2_int8.tflite"),
    include_bytes!("../corpus/seed/models/mean_hw_int8.tflite"),
    include_bytes!("../corpus/seed/models/softmax_rank2_floatio_int8.tflite"),
    include_bytes!("../corpus/seed/models/conv2d_same_relu_dynamic.tflite"),
    include_bytes!("../corpus/seed/models/fc_asym_dynamic.tflite"),
    // Indexing, layout, control flow and state: the operators behind most past advisories.
    include_bytes!("../corpus/seed/models/tile_f32.tflite"),
    include_bytes!("../corpus/seed/models/tile_int32.tflite"),
    include_bytes!("../corpus/seed/models/strided_slice_basic_f32.tflite"),
    include_bytes!("../corpus/seed/models/strided_slice_ellipsis_newaxis_f32.tflite"),
    include_bytes!("../corpus/seed/models/strided_slice_shrink_neg_f32.tflite"),
    include_bytes!("../corpus/seed/models/gather_axis0_f32.tflite"),
    include_bytes!("../corpus/seed/models/gather_nd_f32.tflite"),
    include_bytes!("../corpus/seed/models/gather_nd_runtime_f32.tflite"),
    include_bytes!("../corpus/seed/models/space_to_depth_b2_f32.tflite"),
    include_bytes!("../corpus/seed/models/depth_to_space_b2_f32.tflite"),
    include_bytes!("../corpus/seed/models/split_axis2_f32.tflite"),
    include_bytes!("../corpus/seed/models/split_v_f32.tflite"),
    include_bytes!("../corpus/seed/models/concat_lastaxis_int8.tflite"),
    include_bytes!("../corpus/seed/models/transpose_rank5_f32.tflite"),
    include_bytes!("../corpus/seed/models/pad_hw_f32.tflite"),
    include_bytes!("../corpus/seed/models/mirror_pad_reflect_f32.tflite"),
    include_bytes!("../corpus/seed/models/resize_bilinear_halfpixel_up_int8.tflite"),
    include_bytes!("../corpus/seed/models/resize_nearest_align_up_f32.tflite"),
    include_bytes!("../corpus/seed/models/topk_k3_f32.tflite"),
    include_bytes!("../corpus/seed/models/arg_max_last_f32.tflite"),
    include_bytes!("../corpus/seed/models/while_counter_f32.tflite"),
    include_bytes!("../corpus/seed/models/if_bool_f32.tflite"),
    include_bytes!("../corpus/seed/models/variable_assign_add_f32.tflite"),
    include_bytes!("../corpus/seed/models/embedding_lookup_int8_hybrid.tflite"),
    include_bytes!("../corpus/seed/models/select_v2_cmp_f32.tflite"),
    include_bytes!("../corpus/seed/models/pack_axis1_f32.tflite"),
    include_bytes!("../corpus/seed/models/unpack_axis1_int8.tflite"),
    include_bytes!("../corpus/seed/models/cast_f32_to_int8_f32.tflite"),
    include_bytes!("../corpus/seed/models/reduce_prod_last_f32.tflite"),
    include_bytes!("../corpus/seed/models/leaky_relu_a0p2_int8.tflite"),
    include_bytes!("../corpus/seed/models/logistic_plain_int8.tflite"),
    include_bytes!("../corpus/seed/models/hard_swish_plain_int8.tflite"),
    include_bytes!("../corpus/seed/models/cumsum_excl_rev_f32.tflite"),
    include_bytes!("../corpus/seed/models/sum_all_f32.tflite"),
];

/// Values that sit on a boundary of some check.
const INTERESTING_I32: &[i32] = &[
    0,
    1,
    -1,
    2,
    -2,
    3,
    4,
    7,
    8,
    16,
    127,
    128,
    255,
    256,
    46_341, // just above sqrt(2^31): squares overflow i32
    65_535,
    65_536,
    1 << 24,
    1 << 30,
    i32::MAX,
    i32::MIN,
    i32::MIN + 1,
];

const INTERESTING_F32: &[f32] = &[
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    1.0 / 256.0,
    1e-10,
    1e-45,
    1e30,
    f32::MAX,
    f32::MIN_POSITIVE,
    f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
];

const INTERESTING_I64: &[i64] = &[
    0,
    1,
    -1,
    -128,
    127,
    128,
    255,
    256,
    -129,
    32_767,
    i32::MAX as i64,
    i32::MIN as i64,
    i64::MAX,
    i64::MIN,
];

/// An `i32` near a boundary, near `near` (a count the index is checked against), or any.
fn int(u: &mut Unstructured<'_>, near: usize) -> Result<i32> {
    Ok(match u.int_in_range(0..=3)? {
        0 | 1 => *u.choose(INTERESTING_I32)?,
        2 => (near as i32).wrapping_add(u.int_in_range(-2..=2)?),
        _ => u.arbitrary()?,
    })
}

fn f32v(u: &mut Unstructured<'_>) -> Result<f32> {
    Ok(if u.ratio(3, 4)? {
        *u.choose(INTERESTING_F32)?
    } else {
        f32::from_bits(u.arbitrary()?)
    })
}

fn i64v(u: &mut Unstructured<'_>) -> Result<i64> {
    Ok(if u.ratio(3, 4)? {
        *u.choose(INTERESTING_I64)?
    } else {
        u.arbitrary()?
    })
}

/// Edits one element of `v`, or grows or shrinks it.
fn edit_list(u: &mut Unstructured<'_>, v: &mut Vec<i32>, near: usize) -> Result<()> {
    match u.int_in_range(0..=4)? {
        0 | 1 if !v.is_empty() => {
            let i = u.choose_index(v.len())?;
            v[i] = int(u, near)?;
        }
        2 => v.push(int(u, near)?),
        3 if !v.is_empty() => {
            let i = u.choose_index(v.len())?;
            v.remove(i);
        }
        _ => {
            // A small, valid-looking index: swaps one tensor for another of the same graph.
            if !v.is_empty() && near > 0 {
                let i = u.choose_index(v.len())?;
                v[i] = u.choose_index(near)? as i32;
            }
        }
    }
    Ok(())
}

fn mutate_tensor(u: &mut Unstructured<'_>, t: &mut TensorDesc, buffers: usize) -> Result<()> {
    match u.int_in_range(0..=9)? {
        0..=2 => {
            let rank = t.shape.len();
            edit_list(u, &mut t.shape, rank)?;
        }
        3 => {
            // Rank changes, up to well past every limit.
            let rank = *u.choose(&[0usize, 1, 5, 6, 7, 8, 17, 100])?;
            t.shape.resize(rank, 1);
        }
        4 => t.dtype = u.int_in_range(-2..=24)?,
        5 => {
            t.buffer = match u.int_in_range(0..=3)? {
                0 => 0,
                1 => buffers as u32,
                2 => u32::MAX,
                _ => u.int_in_range(0..=buffers.max(1) as u32)?,
            }
        }
        6..=8 => mutate_quant(u, t)?,
        _ => t.is_variable = !t.is_variable,
    }
    Ok(())
}

fn mutate_quant(u: &mut Unstructured<'_>, t: &mut TensorDesc) -> Result<()> {
    let rank = t.shape.len();
    let q = t.quant.get_or_insert_with(|| Quant {
        scale: vec![1.0],
        zero_point: vec![0],
        quantized_dimension: 0,
    });
    match u.int_in_range(0..=6)? {
        0 if !q.scale.is_empty() => {
            let i = u.choose_index(q.scale.len())?;
            q.scale[i] = f32v(u)?;
        }
        1 if !q.zero_point.is_empty() => {
            let i = u.choose_index(q.zero_point.len())?;
            q.zero_point[i] = i64v(u)?;
        }
        2 => {
            let n = u.int_in_range(0..=8)?;
            q.scale.resize(n, 0.5);
        }
        3 => {
            let n = u.int_in_range(0..=8)?;
            q.zero_point.resize(n, 0);
        }
        4 => q.quantized_dimension = int(u, rank)?,
        5 => {
            // A consistent per-axis set along a chosen dimension.
            let axis = u.choose_index(rank.max(1))?;
            let n = t.shape.get(axis).copied().unwrap_or(1).clamp(0, 64) as usize;
            q.scale = vec![0.25; n];
            q.zero_point = vec![0; n];
            q.quantized_dimension = axis as i32;
        }
        _ => t.quant = None,
    }
    Ok(())
}

fn act(u: &mut Unstructured<'_>) -> Result<i8> {
    u.int_in_range(-1..=7)
}

fn pad(u: &mut Unstructured<'_>) -> Result<i8> {
    u.int_in_range(-1..=3)
}

fn mutate_options(u: &mut Unstructured<'_>, o: &mut OptionsDesc) -> Result<()> {
    if u.ratio(1, 8)? {
        // Options of another operator, or none at all.
        *o = match u.int_in_range(0..=5)? {
            0 => OptionsDesc::None,
            1 => OptionsDesc::Softmax { beta: 1.0 },
            2 => OptionsDesc::Reducer { keep_dims: true },
            3 => OptionsDesc::Reshape { new_shape: None },
            4 => OptionsDesc::Add {
                activation: 0,
                pot_scale_int16: false,
            },
            _ => OptionsDesc::Pool2D {
                padding: 0,
                stride_w: 1,
                stride_h: 1,
                filter_w: 1,
                filter_h: 1,
                activation: 0,
            },
        };
        return Ok(());
    }
    match o {
        OptionsDesc::None => {}
        OptionsDesc::Conv2D {
            padding,
            stride_w,
            stride_h,
            activation,
            dilation_w,
            dilation_h,
        } => match u.int_in_range(0..=5)? {
            0 => *padding = pad(u)?,
            1 => *stride_w = int(u, 1)?,
            2 => *stride_h = int(u, 1)?,
            3 => *activation = act(u)?,
            4 => *dilation_w = int(u, 1)?,
            _ => *dilation_h = int(u, 1)?,
        },
        OptionsDesc::Depthwise {
            padding,
            stride_w,
            stride_h,
            depth_multiplier,
            activation,
            dilation_w,
            dilation_h,
        } => match u.int_in_range(0..=6)? {
            0 => *padding = pad(u)?,
            1 => *stride_w = int(u, 1)?,
            2 => *stride_h = int(u, 1)?,
            3 => *activation = act(u)?,
            4 => *dilation_w = int(u, 1)?,
            5 => *dilation_h = int(u, 1)?,
            _ => *depth_multiplier = int(u, 1)?,
        },
        OptionsDesc::FullyConnected {
            activation,
            weights_format,
            keep_num_dims,
            asymmetric,
        } => match u.int_in_range(0..=3)? {
            0 => *activation = act(u)?,
            1 => *weights_format = u.int_in_range(-1..=2)?,
            2 => *keep_num_dims = !*keep_num_dims,
            _ => *asymmetric = !*asymmetric,
        },
        OptionsDesc::Pool2D {
            padding,
            stride_w,
            stride_h,
            filter_w,
            filter_h,
            activation,
        } => match u.int_in_range(0..=5)? {
            0 => *padding = pad(u)?,
            1 => *stride_w = int(u, 1)?,
            2 => *stride_h = int(u, 1)?,
            3 => *filter_w = int(u, 3)?,
            4 => *filter_h = int(u, 3)?,
            _ => *activation = act(u)?,
        },
        OptionsDesc::Add {
            activation,
            pot_scale_int16,
        }
        | OptionsDesc::Sub {
            activation,
            pot_scale_int16,
        } => {
            if u.arbitrary()? {
                *activation = act(u)?;
            } else {
                *pot_scale_int16 = !*pot_scale_int16;
            }
        }
        OptionsDesc::Mul { activation } => *activation = act(u)?,
        OptionsDesc::Reducer { keep_dims } => *keep_dims = !*keep_dims,
        OptionsDesc::Reshape { new_shape } => {
            let mut s = new_shape.take().unwrap_or_default();
            edit_list(u, &mut s, 4)?;
            *new_shape = (!u.ratio(1, 8)?).then_some(s);
        }
        OptionsDesc::Softmax { beta } => *beta = f32v(u)?,
        OptionsDesc::Squeeze { dims } => edit_list(u, dims, 4)?,
        OptionsDesc::Concatenation { axis, activation } => {
            if u.arbitrary()? {
                *axis = int(u, 4)?;
            } else {
                *activation = act(u)?;
            }
        }
        OptionsDesc::VarHandle { shared_name, .. } => {
            // Two handles with one name share a variable; another name makes a new one.
            *shared_name = match u.int_in_range(0..=2)? {
                0 => None,
                1 => Some(String::new()),
                _ => Some("v0".into()),
            };
        }
        OptionsDesc::Scalars { ints, floats, .. } => {
            if !floats.is_empty() && (ints.is_empty() || u.arbitrary()?) {
                let k = u.choose_index(floats.len())?;
                floats[k] = f32v(u)?;
            } else if !ints.is_empty() {
                // Masks, axes, counts, subgraph indices, block sizes, enum values.
                let k = u.choose_index(ints.len())?;
                ints[k] = int(u, 4)?;
            }
        }
    }
    Ok(())
}

fn mutate_op(
    u: &mut Unstructured<'_>,
    op: &mut OpDesc,
    tensors: usize,
    opcodes: usize,
) -> Result<()> {
    match u.int_in_range(0..=9)? {
        0..=2 => edit_list(u, &mut op.inputs, tensors)?,
        3 | 4 => edit_list(u, &mut op.outputs, tensors)?,
        5..=7 => mutate_options(u, &mut op.options)?,
        8 => {
            op.opcode_index = match u.int_in_range(0..=2)? {
                0 => opcodes as u32,
                1 => u32::MAX,
                _ => u.int_in_range(0..=opcodes as u32)?,
            }
        }
        _ => edit_list(u, &mut op.intermediates, tensors)?,
    }
    Ok(())
}

fn mutate_buffer(u: &mut Unstructured<'_>, b: &mut BufferDesc, file_guess: u64) -> Result<()> {
    match u.int_in_range(0..=6)? {
        0 => {
            let n = u.int_in_range(0..=b.data.len())?;
            b.data.truncate(n);
        }
        1 => b.data.clear(),
        2 => {
            let n = u.int_in_range(1..=64)?;
            b.data.extend(std::iter::repeat_n(0xA5, n));
        }
        3 if !b.data.is_empty() => {
            // Poison one float: NaN, infinity, or a huge value in a weight or bias.
            let i = u.choose_index(b.data.len() / 4 + 1)? * 4;
            let v = f32v(u)?.to_le_bytes();
            for (k, x) in v.iter().enumerate() {
                if let Some(d) = b.data.get_mut(i + k) {
                    *d = *x;
                }
            }
        }
        _ => {
            // Buffers stored after the flatbuffer (the >2 GB layout): offsets inside, past the
            // end of, and wrapping around the file.
            b.data.clear();
            let choices = [
                0,
                1,
                2,
                8,
                file_guess / 2,
                file_guess,
                u64::MAX,
                u64::MAX - 7,
                1 << 63,
            ];
            b.offset = *u.choose(&choices)?;
            b.size = *u.choose(&choices)?;
        }
    }
    Ok(())
}

/// Applies up to `max_edits` edits chosen by `u` to `m`.
pub fn mutate(u: &mut Unstructured<'_>, m: &mut ModelDesc, max_edits: usize) -> Result<()> {
    let edits = u.int_in_range(1..=max_edits)?;
    let file_guess = m
        .buffers
        .iter()
        .map(|b| b.data.len() as u64 + 16)
        .sum::<u64>()
        + 512;
    for _ in 0..edits {
        if u.is_empty() {
            break;
        }
        let opcodes = m.opcodes.len();
        let buffers = m.buffers.len();
        let nsg = m.subgraphs.len();
        match u.int_in_range(0..=19)? {
            0..=4 if nsg > 0 => {
                let sg = &mut m.subgraphs[u.choose_index(nsg)?];
                if !sg.ops.is_empty() {
                    let n = sg.tensors.len();
                    let i = u.choose_index(sg.ops.len())?;
                    mutate_op(u, &mut sg.ops[i], n, opcodes)?;
                }
            }
            5..=8 if nsg > 0 => {
                let sg = &mut m.subgraphs[u.choose_index(nsg)?];
                if !sg.tensors.is_empty() {
                    let i = u.choose_index(sg.tensors.len())?;
                    mutate_tensor(u, &mut sg.tensors[i], buffers)?;
                }
            }
            9 | 10 if buffers > 0 => {
                let i = u.choose_index(buffers)?;
                mutate_buffer(u, &mut m.buffers[i], file_guess)?;
            }
            11 if opcodes > 0 => {
                let c = &mut m.opcodes[u.choose_index(opcodes)?];
                match u.int_in_range(0..=4)? {
                    // Any builtin, implemented or not, through either code field.
                    0 => c.builtin_code = u.int_in_range(-1..=215)?,
                    1 => c.deprecated_builtin_code = u.arbitrary()?,
                    2 => {
                        // Old writers: only the byte field.
                        c.deprecated_builtin_code = u.int_in_range(0..=127)?;
                        c.builtin_code = 0;
                    }
                    3 => {
                        c.builtin_code = 32; // CUSTOM
                        c.deprecated_builtin_code = 32;
                        c.custom_code = Some("FuzzOp".into());
                    }
                    _ => c.version = int(u, 1)?,
                }
            }
            12 if nsg > 0 => {
                let sg = &mut m.subgraphs[u.choose_index(nsg)?];
                let n = sg.tensors.len();
                if u.arbitrary()? {
                    edit_list(u, &mut sg.inputs, n)?;
                } else {
                    edit_list(u, &mut sg.outputs, n)?;
                }
            }
            13 if nsg > 0 => {
                // Reorder, duplicate or drop operators.
                let sg = &mut m.subgraphs[u.choose_index(nsg)?];
                let n = sg.ops.len();
                if n > 0 {
                    let (i, j) = (u.choose_index(n)?, u.choose_index(n)?);
                    match u.int_in_range(0..=2)? {
                        0 => sg.ops.swap(i, j),
                        1 => {
                            let op = sg.ops[i].clone();
                            sg.ops.insert(j, op);
                        }
                        _ => {
                            sg.ops.remove(i);
                        }
                    }
                }
            }
            14 if nsg > 0 => {
                // A copy of a tensor, sharing its buffer, for ops to point at.
                let sg = &mut m.subgraphs[u.choose_index(nsg)?];
                if !sg.tensors.is_empty() {
                    let t = sg.tensors[u.choose_index(sg.tensors.len())?].clone();
                    sg.tensors.push(t);
                }
            }
            15 => {
                // Another subgraph (only subgraph 0 runs), or a signature pointing anywhere.
                if u.arbitrary()? {
                    if let Some(sg) = m.subgraphs.first().cloned() {
                        m.subgraphs.push(sg);
                    }
                } else {
                    let n = m.subgraphs.first().map_or(0, |s| s.tensors.len());
                    m.signatures.push(crate::desc::SignatureDesc {
                        key: "serving_default".into(),
                        subgraph: int(u, nsg)? as u32,
                        inputs: vec![("x".into(), int(u, n)? as u32)],
                        outputs: vec![("y".into(), int(u, n)? as u32)],
                    });
                }
            }
            16 => m.version = *u.choose(&[0u32, 1, 2, 3, 3, 4, u32::MAX])?,
            17 if nsg > 0 => {
                // Make a constant out of an activation, or the other way round.
                let sg = &mut m.subgraphs[u.choose_index(nsg)?];
                if !sg.tensors.is_empty() && buffers > 0 {
                    let i = u.choose_index(sg.tensors.len())?;
                    sg.tensors[i].buffer = u.choose_index(buffers)? as u32;
                }
            }
            18 => {
                // A fresh tensor with extreme values and an edited name.
                if let Some(sg) = m.subgraphs.first_mut() {
                    let rank = u.int_in_range(0..=6)?;
                    let shape = (0..rank).map(|_| int(u, 2)).collect::<Result<Vec<_>>>()?;
                    sg.tensors.push(TensorDesc {
                        name: "fuzz\u{0}\u{fffd}\n".into(),
                        shape,
                        dtype: u.int_in_range(0..=22)?,
                        buffer: 0,
                        quant: None,
                        is_variable: u.ratio(1, 4)?,
                        shape_signature: None,
                    });
                }
            }
            _ => {
                if let Some(sg) = m.subgraphs.first_mut() {
                    if let Some(t) = sg.tensors.last_mut() {
                        t.shape_signature = Some(t.shape.iter().map(|_| -1).collect());
                    }
                }
            }
        }
    }
    Ok(())
}

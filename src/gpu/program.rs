//! A compiled partition: buffers planned like the CPU arena, one bind group per dispatch,
//! and the invoke that uploads the inputs, records one command encoder, submits once and
//! reads back only the partition outputs.

use std::sync::{Arc, Mutex};

use super::context::Context;
use super::lower::{self, Ctx, Dispatch, Weights};
use crate::delegate::{DelegateIo, DelegateKernel, Partition};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::Tensor;
use crate::planner;

/// Bytes of parameters each dispatch gets in the uniform buffer (the largest uniform offset
/// alignment WebGPU allows).
const PARAM_SLOT: u64 = 256;

/// How a tensor crosses between the CPU arena and the GPU arena.
struct Transfer {
    /// Byte offset in the GPU arena.
    at: u64,
    numel: usize,
    dtype: DType,
    /// (scale, zero point) of int8/uint8 tensors, held dequantized on the GPU.
    quant: Option<(f32, i64)>,
    /// Byte offset in the staging buffer (outputs only).
    staging: u64,
}

pub(crate) struct Program {
    ctx: Arc<Context>,
    arena: wgpu::Buffer,
    passes: Vec<(Arc<wgpu::ComputePipeline>, wgpu::BindGroup, [u32; 2])>,
    /// Per partition input; `None` for inputs no dispatch reads (RESHAPE's shape tensor).
    inputs: Vec<Option<Transfer>>,
    outputs: Vec<Transfer>,
    staging: wgpu::Buffer,
    /// Reused conversion space for int8/uint8 inputs.
    scratch: Mutex<Vec<f32>>,
    // Kept alive for the bind groups.
    _weights: wgpu::Buffer,
    _params: wgpu::Buffer,
}

/// Workgroups (x, y) covering `n` invocations of 64 within the per-dimension limit.
fn grid(n: u32, max: u32) -> [u32; 2] {
    let groups = n.div_ceil(64).max(1);
    let x = groups.min(max.max(1));
    [x, groups.div_ceil(x)]
}

fn quant_of(t: &Tensor) -> Option<(f32, i64)> {
    match t.dtype {
        DType::I8 | DType::U8 => t.quantization.as_ref().and_then(|q| q.single()),
        _ => None,
    }
}

impl Program {
    pub(crate) fn compile(ctx: Arc<Context>, p: &Partition<'_>) -> Result<Program> {
        let fail = |what: String| {
            Error::Internal(format!(
                "GPU partition at node {}: {what}",
                p.nodes.first().map(|n| n.index).unwrap_or(0)
            ))
        };
        let ntensors = p.tensors.len();
        // Views share their input's GPU memory.
        let mut root: Vec<usize> = (0..ntensors).collect();
        for node in p.nodes.iter().filter(|n| n.is_view) {
            if let (Some(i), Some(&o)) = (node.input_index(0), node.op.outputs.first()) {
                root[o] = root[i];
            }
        }
        // Lifetimes in node steps; partition inputs and constants read from the arena live
        // from the start, outputs to the end.
        let end = p.nodes.len();
        let mut first: Vec<Option<usize>> = vec![None; ntensors];
        let mut last = vec![0usize; ntensors];
        let mut constant = vec![false; ntensors];
        let mut touch = |t: usize, step: usize, first: &mut Vec<Option<usize>>| {
            let f = first[t].get_or_insert(step);
            *f = (*f).min(step);
            last[t] = last[t].max(step);
        };
        for (step, node) in p.nodes.iter().enumerate() {
            for k in lower::arena_inputs(node) {
                let Some(t) = node.input_index(k) else {
                    continue;
                };
                let r = root[t];
                if node.constant(k).is_some() {
                    constant[r] = true;
                    touch(r, 0, &mut first);
                    touch(r, end, &mut first);
                } else {
                    let from = if p.inputs.contains(&r) { 0 } else { step };
                    touch(r, from, &mut first);
                    touch(r, step, &mut first);
                }
            }
            for &t in &node.op.outputs {
                touch(root[t], step, &mut first);
            }
        }
        for &t in &p.outputs {
            touch(root[t], end, &mut first);
        }
        let mut intervals = Vec::new();
        let mut slot: Vec<Option<usize>> = vec![None; ntensors];
        for t in 0..ntensors {
            if let (true, Some(f)) = (root[t] == t, first[t]) {
                slot[t] = Some(intervals.len());
                intervals.push(planner::Interval {
                    bytes: p.tensors[t].numel.max(1) * 4,
                    first: f,
                    last: last[t],
                });
            }
        }
        let plan = planner::plan(&intervals);
        let byte_offset = |t: usize| slot[root[t]].map(|s| plan.offsets[s] as u64);
        let offset = |t: usize| byte_offset(t).map(|b| (b / 4) as usize).unwrap_or(0);

        let mut weights = Weights::new(false);
        let mut dispatches: Vec<Dispatch> = Vec::new();
        for node in &p.nodes {
            let mut c = Ctx {
                offset: &offset,
                weights: &mut weights,
            };
            let list = lower::lower(node, &mut c)
                .map_err(|e| fail(format!("node {}: {e}", node.index)))?;
            dispatches.extend(list);
        }

        let max_binding = ctx.limits.max_storage_buffer_binding_size;
        let arena_bytes = (plan.arena_bytes as u64).max(16);
        let weight_bytes = (weights.data.len() as u64 * 4).max(16);
        for (what, bytes) in [("activations", arena_bytes), ("weights", weight_bytes)] {
            if bytes > max_binding || bytes > ctx.limits.max_buffer_size {
                return Err(fail(format!(
                    "{what} need {bytes} bytes, over the adapter's buffer limit of {max_binding}"
                )));
            }
        }
        let device = &ctx.device;
        let buffer = |label, size: u64, usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        use wgpu::BufferUsages as U;
        let arena = buffer("arena", arena_bytes, U::STORAGE | U::COPY_DST | U::COPY_SRC);
        let weight_buf = buffer("weights", weight_bytes, U::STORAGE | U::COPY_DST);
        if !weights.data.is_empty() {
            ctx.queue
                .write_buffer(&weight_buf, 0, bytemuck::cast_slice(&weights.data));
        }
        drop(weights);
        // Constants the shaders read from the arena, uploaded once.
        for t in 0..ntensors {
            if constant[t] && root[t] == t {
                let bytes = p
                    .constant(t)
                    .ok_or_else(|| fail(format!("tensor {t} has no data")))?;
                let values = lower::arena_constant(&p.tensors[t], bytes).map_err(fail)?;
                if let Some(at) = byte_offset(t) {
                    ctx.queue
                        .write_buffer(&arena, at, bytemuck::cast_slice(&values));
                }
            }
        }
        let params_bytes = (dispatches.len() as u64 * PARAM_SLOT).max(PARAM_SLOT);
        let params = buffer("params", params_bytes, U::UNIFORM | U::COPY_DST);
        let mut words = vec![0u32; (params_bytes / 4) as usize];
        for (i, d) in dispatches.iter().enumerate() {
            let at = i * (PARAM_SLOT / 4) as usize;
            if d.params.len() > (PARAM_SLOT / 4) as usize {
                return Err(fail(format!("{:?} has too many parameters", d.shader)));
            }
            words[at..at + d.params.len()].copy_from_slice(&d.params);
        }
        ctx.queue
            .write_buffer(&params, 0, bytemuck::cast_slice(&words));
        let max_groups = ctx.limits.max_compute_workgroups_per_dimension;
        let mut passes = Vec::with_capacity(dispatches.len());
        for (i, d) in dispatches.iter().enumerate() {
            let pipeline = ctx.pipeline(d.shader)?;
            let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &ctx.layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: arena.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: weight_buf.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 2,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: &params,
                            offset: i as u64 * PARAM_SLOT,
                            size: wgpu::BufferSize::new(PARAM_SLOT),
                        }),
                    },
                ],
            });
            let g = grid(d.invocations, max_groups);
            if g[1] > max_groups {
                return Err(fail(format!("{:?} needs too many workgroups", d.shader)));
            }
            passes.push((pipeline, bind, g));
        }

        let transfer = |t: usize, staging: u64| {
            let tensor = &p.tensors[t];
            byte_offset(t).map(|at| Transfer {
                at,
                numel: tensor.numel,
                dtype: tensor.dtype,
                quant: quant_of(tensor),
                staging,
            })
        };
        let inputs = p.inputs.iter().map(|&t| transfer(t, 0)).collect();
        let mut outputs = Vec::new();
        let mut staging_bytes = 0u64;
        for &t in &p.outputs {
            let tr = transfer(t, staging_bytes)
                .ok_or_else(|| fail(format!("output tensor {t} has no GPU memory")))?;
            staging_bytes += tr.numel as u64 * 4;
            outputs.push(tr);
        }
        let staging = buffer("staging", staging_bytes.max(16), U::MAP_READ | U::COPY_DST);
        ctx.check()?;
        Ok(Program {
            ctx,
            arena,
            passes,
            inputs,
            outputs,
            staging,
            scratch: Mutex::default(),
            _weights: weight_buf,
            _params: params,
        })
    }
}

impl DelegateKernel for Program {
    fn invoke(&self, mut io: DelegateIo<'_>) -> Result<()> {
        let ctx = &self.ctx;
        for (k, tr) in self.inputs.iter().enumerate() {
            let Some(tr) = tr else { continue };
            let bytes = io.input_bytes(k)?;
            match (tr.dtype, tr.quant) {
                (DType::F32, _) => ctx.queue.write_buffer(&self.arena, tr.at, bytes),
                (DType::I8 | DType::U8, Some((s, z))) => {
                    let mut buf = self
                        .scratch
                        .lock()
                        .map_err(|_| Error::Internal("GPU scratch poisoned".into()))?;
                    buf.clear();
                    let signed = tr.dtype == DType::I8;
                    buf.extend(bytes.iter().take(tr.numel).map(|&b| {
                        let q = if signed { b as i8 as i64 } else { b as i64 };
                        (q - z) as f32 * s
                    }));
                    ctx.queue
                        .write_buffer(&self.arena, tr.at, bytemuck::cast_slice(&buf));
                }
                (d, _) => return Err(Error::Internal(format!("GPU input of dtype {d}"))),
            }
        }
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: None,
                timestamp_writes: None,
            });
            for (pipeline, bind, [x, y]) in &self.passes {
                pass.set_pipeline(pipeline);
                pass.set_bind_group(0, bind, &[]);
                pass.dispatch_workgroups(*x, *y, 1);
            }
        }
        for tr in &self.outputs {
            encoder.copy_buffer_to_buffer(
                &self.arena,
                tr.at,
                &self.staging,
                tr.staging,
                tr.numel as u64 * 4,
            );
        }
        ctx.queue.submit([encoder.finish()]);
        if self.outputs.is_empty() {
            ctx.device
                .poll(wgpu::PollType::wait_indefinitely())
                .map_err(|e| Error::Internal(format!("GPU wait: {e}")))?;
            return ctx.check();
        }
        let slice = self.staging.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        ctx.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Internal(format!("GPU wait: {e}")))?;
        ctx.check()?;
        rx.recv()
            .map_err(|_| Error::Internal("GPU read-back never completed".into()))?
            .map_err(|e| Error::Internal(format!("GPU read-back: {e}")))?;
        let result = (|| {
            let view = slice
                .get_mapped_range()
                .map_err(|e| Error::Internal(format!("GPU read-back: {e}")))?;
            for (k, tr) in self.outputs.iter().enumerate() {
                let from = tr.staging as usize;
                let src: &[f32] = bytemuck::try_cast_slice(&view[from..from + tr.numel * 4])
                    .map_err(|e| Error::Internal(format!("GPU read-back: {e}")))?;
                let out = io.output_bytes_mut(k)?;
                match (tr.dtype, tr.quant) {
                    (DType::F32, _) => out.copy_from_slice(bytemuck::cast_slice(src)),
                    (DType::I8 | DType::U8, Some((s, z))) => {
                        let (lo, hi) = if tr.dtype == DType::I8 {
                            (-128.0, 127.0)
                        } else {
                            (0.0, 255.0)
                        };
                        for (o, &v) in out.iter_mut().zip(src) {
                            // TFLite rounds half away from zero when quantizing.
                            let q = ((v / s).round() + z as f32).clamp(lo, hi);
                            *o = if tr.dtype == DType::I8 {
                                q as i8 as u8
                            } else {
                                q as u8
                            };
                        }
                    }
                    (d, _) => return Err(Error::Internal(format!("GPU output of dtype {d}"))),
                }
            }
            Ok(())
        })();
        self.staging.unmap();
        result
    }
}

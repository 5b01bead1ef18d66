//! The wgpu device: adapter selection, the shared bind group layout, compiled pipelines, and
//! errors wgpu reports asynchronously.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::lower::Shader;
use crate::error::{Error, Result};

/// Environment variable that picks an adapter by (case-insensitive) substring of its name.
pub const ADAPTER_ENV: &str = "FERROLITE_ADAPTER";

pub(crate) struct Context {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub layout: wgpu::BindGroupLayout,
    pipeline_layout: wgpu::PipelineLayout,
    pipelines: Mutex<HashMap<Shader, Arc<wgpu::ComputePipeline>>>,
    /// The first error wgpu reported outside a call (validation, out of memory).
    errors: Arc<Mutex<Option<String>>>,
}

/// Adapters in the order the delegate prefers them: real GPUs before software ones.
fn rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

impl Context {
    /// Opens the adapter whose name contains `wanted` (or the best one) and its device.
    pub(crate) fn open(wanted: Option<&str>) -> Result<Context> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let mut adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
        adapters.sort_by_key(|a| rank(a.get_info().device_type));
        let names: Vec<String> = adapters
            .iter()
            .map(|a| {
                let i = a.get_info();
                format!("{} ({:?})", i.name, i.backend)
            })
            .collect();
        let adapter = match wanted {
            Some(w) => {
                let w = w.to_lowercase();
                adapters
                    .into_iter()
                    .find(|a| a.get_info().name.to_lowercase().contains(&w))
                    .ok_or_else(|| {
                        Error::Input(format!(
                            "no GPU adapter matches '{w}' (adapters: {})",
                            if names.is_empty() {
                                "none".into()
                            } else {
                                names.join(", ")
                            }
                        ))
                    })?
            }
            None => adapters.into_iter().next().ok_or_else(|| {
                Error::Input(
                    "no GPU adapter found: the GPU backend needs a Vulkan, Metal or DX12 \
                     driver (on Linux without a GPU, mesa's lavapipe: mesa-vulkan-drivers)"
                        .into(),
                )
            })?,
        };
        let info = adapter.get_info();
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("ferrolite"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| Error::Internal(format!("GPU adapter {}: no device: {e}", info.name)))?;
        let errors: Arc<Mutex<Option<String>>> = Arc::default();
        let sink = errors.clone();
        // wgpu's default handler panics; keep the first error for the next call to report.
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut slot) = sink.lock() {
                slot.get_or_insert_with(|| e.to_string());
            }
        }));
        let storage = |binding, read_only| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("ferrolite"),
            entries: &[
                storage(0, false),
                storage(1, true),
                wgpu::BindGroupLayoutEntry {
                    binding: 2,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("ferrolite"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let ctx = Context {
            device,
            queue,
            info,
            limits,
            layout,
            pipeline_layout,
            pipelines: Mutex::default(),
            errors,
        };
        ctx.check()?;
        Ok(ctx)
    }

    /// The compute pipeline of `shader`, compiled on first use.
    pub(crate) fn pipeline(&self, shader: Shader) -> Result<Arc<wgpu::ComputePipeline>> {
        let mut map = self
            .pipelines
            .lock()
            .map_err(|_| Error::Internal("GPU pipeline cache poisoned".into()))?;
        if let Some(p) = map.get(&shader) {
            return Ok(p.clone());
        }
        let source = format!("{}\n{}", include_str!("common.wgsl"), shader.source());
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("ferrolite"),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some("ferrolite"),
                layout: Some(&self.pipeline_layout),
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            });
        self.check()
            .map_err(|e| Error::Internal(format!("{shader:?} shader: {e}")))?;
        let pipeline = Arc::new(pipeline);
        map.insert(shader, pipeline.clone());
        Ok(pipeline)
    }

    /// Fails with the first error wgpu reported since the last check.
    pub(crate) fn check(&self) -> Result<()> {
        let taken = self.errors.lock().ok().and_then(|mut e| e.take());
        match taken {
            Some(e) => Err(Error::Internal(format!("GPU error: {e}"))),
            None => Ok(()),
        }
    }
}

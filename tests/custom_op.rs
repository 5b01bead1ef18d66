//! Custom operators registered by name, with flexbuffer options.

mod common;

use std::sync::Arc;

use common::builder::{ModelSpec, OpSpec, OptionsSpec};
use ferrolite::custom::{CustomContext, CustomKernel, CustomNode, CustomOp};
use ferrolite::schema::BuiltinOperator;
use ferrolite::{Interpreter, Model, Options};

struct Scale;
struct ScaleKernel(f32);

impl CustomOp for Scale {
    fn prepare(&self, node: &CustomNode<'_>) -> ferrolite::Result<Box<dyn CustomKernel>> {
        assert_eq!(node.inputs.len(), 1);
        let factor = node
            .options()?
            .map(|o| o.as_map().idx("factor").as_f32())
            .unwrap_or(1.0);
        Ok(Box::new(ScaleKernel(factor)))
    }
}

impl CustomKernel for ScaleKernel {
    fn eval(&self, mut ctx: CustomContext<'_>) -> ferrolite::Result<()> {
        let input = ctx.input::<f32>(0)?;
        for (o, i) in ctx.output_mut::<f32>(0)?.iter_mut().zip(input) {
            *o = i * self.0;
        }
        Ok(())
    }
}

fn scale_model() -> Vec<u8> {
    // in -> Scale{factor: 3} -> mid -> ADD const -> out
    let mut spec = ModelSpec::add_model();
    spec.opcodes.push(BuiltinOperator::CUSTOM.0);
    spec.custom_names.push("Scale".into());
    spec.tensors
        .push(common::builder::TensorSpec::f32("scaled", &[1, 4], 0));
    spec.ops.insert(
        0,
        OpSpec {
            opcode_index: 1,
            inputs: vec![0],
            outputs: vec![3],
            options: OptionsSpec::None,
        },
    );
    spec.ops[1].inputs = vec![3, 1];
    let mut fxb = flexbuffers::Builder::default();
    let mut map = fxb.start_map();
    map.push("factor", 3.0f32);
    map.end_map();
    spec.custom_options.push((0, fxb.view().to_vec()));
    spec.build()
}

#[test]
fn registered_custom_op_runs_with_its_options() {
    let model = Model::from_vec(scale_model()).unwrap();
    let options = Options::default().custom_op("Scale", Arc::new(Scale));
    let mut interp = Interpreter::new(model, options).unwrap();
    interp
        .input_mut::<f32>(0)
        .unwrap()
        .copy_from_slice(&[1.0, -2.0, 0.5, 4.0]);
    interp.invoke().unwrap();
    // 3·x + [1, 2, 3, 4]
    assert_eq!(interp.output::<f32>(0).unwrap(), &[4.0, -4.0, 4.5, 16.0]);
}

#[test]
fn unregistered_custom_op_is_refused_by_name() {
    let model = Model::from_vec(scale_model()).unwrap();
    let err = Interpreter::new(model, Options::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("custom operator 'Scale' is not registered") && err.contains("op 0"),
        "{err}"
    );
}

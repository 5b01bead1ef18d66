//! (being implemented)

use super::registry::OpSupport;
use super::{PrepareCtx, Prepared};
use crate::error::Result;
use crate::schema::BuiltinOperator as B;

pub(super) const SUPPORT: &[OpSupport] = &[];

/// Prepares `code` if this family implements it.
pub(super) fn prepare(ctx: &PrepareCtx<'_>, code: B) -> Option<Result<Prepared>> {
    let _ = (ctx, code);
    None
}

//! The TypeScript module.

use super::{Api, Plan};

pub(super) fn render(_api: &Api, _plan: &Plan) -> String {
    String::new()
}

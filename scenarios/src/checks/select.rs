//! Section 4: worker selection.

use crate::registry::{Ctx, Outcome};

macro_rules! todo_check {
    ($($name:ident),*) => {$(
        /// Not written yet.
        pub fn $name(_ctx: &Ctx) -> Outcome {
            Outcome::new().error("check not written yet")
        }
    )*};
}

todo_check!(modulo, mirror, before_listen, stable);

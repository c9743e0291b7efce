//! Section 3: worker control.

use crate::registry::{Ctx, Outcome};

macro_rules! todo_check {
    ($($name:ident),*) => {$(
        /// Not written yet.
        pub fn $name(_ctx: &Ctx) -> Outcome {
            Outcome::new().error("check not written yet")
        }
    )*};
}

todo_check!(
    pause_async,
    pause_routing,
    suspended_idle,
    resume,
    index,
    drivers_serviced
);

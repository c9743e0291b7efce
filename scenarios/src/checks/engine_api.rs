//! Section 1: the engine's lifecycle, addresses, metrics and shutdown.

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
    new_validate,
    listen_bind,
    listen_addr,
    listen_blocks,
    engine_type,
    workers_count,
    metrics,
    shutdown_graceful
);

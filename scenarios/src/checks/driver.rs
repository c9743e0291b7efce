//! Section 5: worker loop handle and driver connections.

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
    cpuid,
    register,
    recv,
    unregister,
    close_callback,
    write_unknown,
    write_queue_full,
    write_no_loss,
    write_inline_once,
    write_concurrent,
    no_sigpipe
);

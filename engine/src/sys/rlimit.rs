//! Process resource limits.

use std::io;

/// Raises the soft limit on open descriptors (`RLIMIT_NOFILE`) to at least `want`,
/// capped at the hard limit; returns the soft limit now in force. Never lowers it.
// `rlim_t` is `u64` on 64-bit Linux but not on every target: the casts are needed there.
#[allow(clippy::unnecessary_cast)]
pub fn raise_nofile_limit(want: u64) -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    syscall!(getrlimit(libc::RLIMIT_NOFILE, &mut lim))?;
    if lim.rlim_cur >= want as libc::rlim_t {
        return Ok(lim.rlim_cur as u64);
    }
    lim.rlim_cur = (want as libc::rlim_t).min(lim.rlim_max);
    // SAFETY: `lim` is a valid rlimit whose soft value does not exceed its hard value.
    syscall!(setrlimit(libc::RLIMIT_NOFILE, &lim))?;
    Ok(lim.rlim_cur as u64)
}

/// Sets the soft limit on open descriptors of process `pid` (`prlimit(2)`; the
/// harness lowers a target's to make its `accept` fail with `EMFILE`) and returns the
/// soft limit it had. The hard limit is kept; `soft` is capped at it.
#[allow(clippy::unnecessary_cast)]
pub fn set_nofile_limit_of(pid: u32, soft: u64) -> io::Result<u64> {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a null new limit only reads the current one into `old`, a valid rlimit.
    syscall!(prlimit(
        pid as libc::pid_t,
        libc::RLIMIT_NOFILE,
        std::ptr::null(),
        &mut old
    ))?;
    let new = libc::rlimit {
        rlim_cur: (soft as libc::rlim_t).min(old.rlim_max),
        rlim_max: old.rlim_max,
    };
    // SAFETY: `new` is a valid rlimit whose soft value does not exceed its hard value;
    // the old value is not wanted (null).
    syscall!(prlimit(
        pid as libc::pid_t,
        libc::RLIMIT_NOFILE,
        &new,
        std::ptr::null_mut()
    ))?;
    Ok(old.rlim_cur as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_to_the_current_limit_changes_nothing() {
        let now = raise_nofile_limit(0).unwrap();
        assert_eq!(raise_nofile_limit(now).unwrap(), now);
    }
}

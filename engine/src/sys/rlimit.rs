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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_to_the_current_limit_changes_nothing() {
        let now = raise_nofile_limit(0).unwrap();
        assert_eq!(raise_nofile_limit(now).unwrap(), now);
    }
}

//! Thread identity and CPU placement.

use std::io;

/// The kernel thread id of the calling thread.
pub fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() }
}

/// The CPUs the calling thread may run on.
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    affinity_of(0)
}

/// The affinity mask of thread `tid` (0 = the calling thread), as a list of CPU ids.
pub fn affinity_of(tid: i32) -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of the size passed.
    syscall!(sched_getaffinity(
        tid,
        std::mem::size_of::<libc::cpu_set_t>(),
        &mut set
    ))?;
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: CPU_ISSET reads the set at an index below its capacity.
    Ok((0..max)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// Restricts the calling thread (and the threads it creates from now on) to `cpus`.
/// Fails with `EINVAL` when none of them is available (or one is out of range).
pub fn pin_current_thread_to(cpus: &[usize]) -> io::Result<()> {
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    if cpus.is_empty() || cpus.iter().any(|&c| c >= max) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        // SAFETY: `cpu` is below the set's capacity (checked above).
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of the size passed; 0 is the calling thread.
    syscall!(sched_setaffinity(
        0,
        std::mem::size_of::<libc::cpu_set_t>(),
        &set
    ))?;
    Ok(())
}

/// Pins the calling thread to exactly `cpu`. Fails with `EINVAL` when `cpu` is not
/// available to this process (or out of range).
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    pin_current_thread_to(&[cpu])
}

fn clock(id: libc::clockid_t) -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock ids used are always present
    // on Linux, and a failure leaves `ts` at zero.
    let _ = syscall!(clock_gettime(id, &mut ts));
    std::time::Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// CPU time (user + system) the calling thread has used.
pub fn thread_cpu_time() -> std::time::Duration {
    clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time (user + system) this process has used, all threads.
pub fn process_cpu_time() -> std::time::Duration {
    clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// Sets the calling thread's timer slack (`PR_SET_TIMERSLACK`): how late the kernel may
/// fire its timeouts to batch wakeups (default 50 µs). The load generator sets 1 ns so
/// that open-model sends leave on time.
pub fn set_timer_slack(nanos: u64) -> io::Result<()> {
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument; the rest are ignored.
    syscall!(prctl(
        libc::PR_SET_TIMERSLACK,
        nanos.max(1) as libc::c_ulong,
        0,
        0,
        0
    ))?;
    Ok(())
}

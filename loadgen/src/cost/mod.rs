//! `loadgen cost`: the deterministic cost per request of any server command, by the
//! difference of two runs (N1 < N2 requests) so that start-up and shutdown cancel:
//! user-space instructions (valgrind's cachegrind, `--cache-sim=no`), heap allocations
//! (valgrind's memcheck), syscalls by name and bytes written (strace), for the fixed
//! [`workload`]s; and the exact comparison of two servers ([`model::compare`]).
//!
//! Instructions are of the whole server process, from `exec` to its exit on SIGTERM;
//! allocations and syscalls are counted inside windows of one run ([`tools`]). The
//! client ([`workload::Client`]) keeps one request, batch or connection in flight,
//! so the counts do not depend on timing, except the epoll waits that return no event
//! (timer wakeups), which are shown and not gated.

pub mod model;
pub mod tools;
pub mod workload;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use model::{CostDoc, Counter, FunctionCost, ServerCost, WorkloadCost, SCHEMA};
use tools::{Counts, Scratch, ServerCmd, Tool};
use workload::Workload;

/// How many functions a workload's cost lists.
const LISTED_FUNCTIONS: usize = 15;

/// What `loadgen cost` measures.
#[derive(Debug, Clone)]
pub struct Plan {
    /// One server, or base and head (`--ab`).
    pub servers: Vec<ServerCmd>,
    /// The workloads, in report order.
    pub workloads: Vec<Workload>,
    /// How long a server (under valgrind) may take to accept its first connection.
    pub start_timeout: Duration,
    /// `--ab`: the threshold on instructions per request, in percent.
    pub threshold_pct: f64,
    /// `--ab`: how many changed functions to name per workload.
    pub functions: usize,
}

/// The server a spec names: `embedded` (this binary's `serve`), a command with
/// `{addr}` or `{port}`, a command listening on `fixed` (when given), or the path of
/// a `loadgen` binary (its `serve`).
pub fn server_cmd(
    flag: &str,
    name: &str,
    spec: &str,
    fixed: Option<SocketAddr>,
) -> Result<ServerCmd, String> {
    let serve = |bin: &str| format!("{bin} serve --addr {{addr}} --workers 1");
    let template = if spec == "embedded" {
        let exe = std::env::current_exe()
            .map_err(|e| format!("{flag} embedded: cannot find this binary: {e}"))?;
        serve(&exe.display().to_string())
    } else if spec.contains("{addr}") || spec.contains("{port}") || fixed.is_some() {
        spec.to_string()
    } else if !spec.contains(char::is_whitespace) && Path::new(spec).is_file() {
        serve(spec)
    } else {
        return Err(format!(
            "{flag} {spec:?}: not `embedded`, a loadgen binary or a command with {{addr}} or \
             {{port}} where the server should listen (or give its fixed address with --addr)"
        ));
    };
    Ok(ServerCmd {
        name: name.to_string(),
        template,
        fixed_addr: if spec.contains("{addr}") || spec.contains("{port}") {
            None
        } else {
            fixed
        },
    })
}

/// Measures every server of the plan (base then head per workload, interleaved) and,
/// with two servers, compares them.
pub fn run(plan: &Plan) -> Result<CostDoc, String> {
    tools::check_installed()?;
    let scratch = Scratch::new()?;
    let mut servers: Vec<ServerCost> = plan
        .servers
        .iter()
        .map(|s| ServerCost {
            name: s.name.clone(),
            command: s.template.clone(),
            workloads: Vec::new(),
        })
        .collect();
    for &w in &plan.workloads {
        for (cmd, out) in plan.servers.iter().zip(&mut servers) {
            out.workloads
                .push(measure(cmd, w, scratch.path(), plan.start_timeout)?);
        }
    }
    let ab = match servers.as_slice() {
        [base, head] => Some(model::compare(
            base,
            head,
            plan.threshold_pct,
            plan.functions,
        )),
        _ => None,
    };
    Ok(CostDoc {
        schema: SCHEMA.to_string(),
        method: "instructions: valgrind --tool=cachegrind --cache-sim=no, whole-process \
                 totals of two runs of N1 and N2 requests; allocations (valgrind \
                 --tool=memcheck, through vgdb) and syscalls and bytes written (strace -f \
                 -ttt): inside windows of one run, from a start mark to the marks after N1 \
                 and N2 requests"
            .to_string(),
        servers,
        ab,
    })
}

/// One workload of one server: each tool at N1 and at N2.
fn measure(
    cmd: &ServerCmd,
    w: Workload,
    dir: &Path,
    start_timeout: Duration,
) -> Result<WorkloadCost, String> {
    let mut runs: Vec<[Counts; 2]> = Vec::new();
    let mut requests = [0u64; 2];
    for tool in Tool::ALL {
        eprintln!("cost: {} {} under {tool:?} ...", cmd.name, w.name());
        let (r, c) = tools::run(tool, cmd, w, w.requests(), dir, start_timeout)?;
        if tool != Tool::Cachegrind && r != requests {
            return Err(format!(
                "{}: {}: the runs made {r:?} requests, not {requests:?}",
                cmd.name,
                w.name()
            ));
        }
        requests = r;
        runs.push(c);
    }
    let [cg, mc, st] = [&runs[0], &runs[1], &runs[2]];
    let counter = |f: &dyn Fn(&Counts) -> u64, pair: &[Counts; 2]| {
        Counter::new([f(&pair[0]), f(&pair[1])], requests)
    };
    let mut syscalls = BTreeMap::new();
    let names: std::collections::BTreeSet<&String> =
        st[0].syscalls.keys().chain(st[1].syscalls.keys()).collect();
    for name in names {
        let get = |c: &Counts| c.syscalls.get(name).copied().unwrap_or(0);
        let c = counter(&get, st);
        if c.difference() != 0 {
            syscalls.insert(name.clone(), c);
        }
    }
    let mut not_gated = BTreeMap::new();
    not_gated.insert(
        "epoll_wait_empty".to_string(),
        counter(&|c: &Counts| c.empty_waits, st),
    );
    let all_functions = per_request_functions(&cg[0], &cg[1], requests);
    let mut functions: Vec<FunctionCost> = all_functions
        .iter()
        .map(|(f, &v)| FunctionCost {
            function: f.clone(),
            instructions_per_request: v,
        })
        .collect();
    functions.sort_by(|a, b| {
        b.instructions_per_request
            .total_cmp(&a.instructions_per_request)
    });
    functions.truncate(LISTED_FUNCTIONS);
    Ok(WorkloadCost {
        workload: w.name().to_string(),
        description: w.description().to_string(),
        requests,
        instructions: counter(&|c: &Counts| c.instructions, cg),
        allocations: counter(&|c: &Counts| c.allocations, mc),
        bytes_written: counter(&|c: &Counts| c.bytes_written, st),
        syscalls,
        not_gated,
        functions,
        all_functions,
    })
}

/// Every function's own instructions per request, by the difference of the two runs
/// (functions whose count did not change left out).
fn per_request_functions(a: &Counts, b: &Counts, requests: [u64; 2]) -> BTreeMap<String, f64> {
    let extra = (requests[1] - requests[0]) as f64;
    let names: std::collections::BTreeSet<&String> =
        a.functions.keys().chain(b.functions.keys()).collect();
    names
        .into_iter()
        .filter_map(|f| {
            let x = a.functions.get(f).copied().unwrap_or(0) as f64;
            let y = b.functions.get(f).copied().unwrap_or(0) as f64;
            (x != y).then(|| (f.clone(), (y - x) / extra))
        })
        .collect()
}

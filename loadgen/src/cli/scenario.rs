//! `loadgen scenario`: select scenarios, run them, print verdicts with Requirement /
//! Expected / Actual for failures, and map the results to an exit code.

use clap::Args;
use scenarios::registry;

use crate::export::{self, OutputFile};
use crate::suite::{self, Options, Plan, TargetSpec, DEFAULT_PARALLEL};
use crate::EXIT_OK;

/// `loadgen scenario`.
#[derive(Debug, Args)]
pub struct ScenarioArgs {
    /// Scenario IDs, aliases or globs (`accept.*`); `list` lists them.
    pub selectors: Vec<String>,
    /// Run every scenario.
    #[arg(long)]
    pub all: bool,
    /// Run each selected scenario K times and report flakes.
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub repeat: u32,
    /// Scale every tolerance and deadline by F (slow machines: 2, 3 ...).
    #[arg(long, default_value_t = 1.0, value_name = "F")]
    pub slack: f64,
    /// Workers of the engines scenarios start (where the scenario does not fix it).
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub workers: usize,
    /// Inject a named fault into the engine (needs `--features faults`).
    #[arg(long, value_name = "NAME")]
    pub fault: Option<String>,
    /// The engine under test: `reference` (the reference engine in this process) or
    /// `nginx` (nginx from PATH, started per scenario with a generated configuration).
    /// Scenarios needing what the target lacks are skipped, saying why.
    #[arg(long, default_value = "reference", value_name = "NAME")]
    pub target: String,
    /// Run against a server already running at this URL (HTTP only: the scenarios
    /// needing more, or their own limits and timeouts, are skipped).
    #[arg(long, value_name = "URL", conflicts_with = "target")]
    pub target_url: Option<String>,
    /// Run against an engine in another process: this command is started once per
    /// instance with $LOADGEN_CONTROL naming a Unix socket, and speaks the control
    /// protocol on it (docs/control-protocol.md), e.g. 'loadgen serve --control'.
    #[arg(long, value_name = "COMMAND", conflicts_with_all = ["target", "target_url"])]
    pub target_cmd: Option<String>,
    /// Write the results (loadgen.scenarios/v1 JSON) to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<std::path::PathBuf>,
    /// Write the results as JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<std::path::PathBuf>,
    /// Compare every verdict with an expectations file (id, verdicts, reason; unlisted
    /// scenarios must pass) and exit 1 on any difference, an unexpected pass included.
    #[arg(long, value_name = "FILE")]
    pub expect: Option<std::path::PathBuf>,
    /// Run the scenarios one after another.
    #[arg(long, conflicts_with = "parallel")]
    pub serial: bool,
    /// Run up to N scenarios at the same time.
    #[arg(long, value_name = "N")]
    pub parallel: Option<usize>,
    /// With `list`: print the table as Markdown (the README's scenarios table).
    #[arg(long)]
    pub markdown: bool,
}

/// Runs `loadgen scenario`.
pub fn run(args: ScenarioArgs) -> Result<u8, String> {
    // A panic inside a check is caught and reported as an `error` verdict with its
    // message (some checks provoke one on purpose): no backtrace on stderr.
    std::panic::set_hook(Box::new(|_| {}));
    let all = registry();
    if args.selectors.first().map(String::as_str) == Some("list") {
        if args.markdown {
            print!("{}", export::suite::markdown_table(&all));
        } else {
            print!("{}", export::suite::list(&all));
        }
        return Ok(EXIT_OK);
    }
    if args.markdown {
        return Err("--markdown goes with `list`: loadgen scenario list --markdown".into());
    }
    let chosen = if args.all {
        all.clone()
    } else if args.selectors.is_empty() {
        return Err("name scenarios to run (IDs, aliases or globs), or use --all; `loadgen scenario list` shows them".into());
    } else {
        suite::select(&all, &args.selectors)?
    };
    let target = match (&args.target_url, &args.target_cmd) {
        (Some(url), _) => TargetSpec::Url(url.clone()),
        (None, Some(cmd)) => TargetSpec::Command(cmd.clone()),
        (None, None) => TargetSpec::Named(args.target.clone()),
    };
    let options = Options {
        slack: args.slack,
        workers: args.workers,
        repeat: args.repeat,
        fault: args.fault.clone(),
        target,
    };
    let ctx = suite::context(&options)?;
    let parallel = if args.serial {
        1
    } else {
        args.parallel.unwrap_or(DEFAULT_PARALLEL)
    };
    if parallel == 0 || parallel > 64 {
        return Err(format!(
            "--parallel {parallel} is out of range: use 1 to 64 (or --serial)"
        ));
    }
    let expectations = match &args.expect {
        Some(p) => Some(suite::load_expectations(p, &all)?),
        None => None,
    };
    let json_out = OutputFile::create_writable_opt("--json", &args.json)?;
    let junit_out = OutputFile::create_writable_opt("--junit", &args.junit)?;
    if ctx.target.name() != "reference" {
        println!("target: {}", ctx.target.name());
    }
    let plan = Plan {
        chosen,
        ctx,
        repeat: args.repeat,
        parallel,
        expectations,
    };
    let done = suite::run(&plan, |r| print!("{}", export::suite::record(r)));
    print!(
        "{}",
        export::suite::totals(&done.totals, done.wall, args.repeat)
    );
    if let Some(e) = &plan.expectations {
        let runs = args.repeat as usize;
        print!(
            "{}",
            export::suite::differences(&e.file, &done.differences, runs)
        );
    }
    let meta = export::scenarios::Meta::new(&options, &plan, &done);
    if let Some(file) = json_out {
        let doc = export::scenarios::document(&done.records, done.totals.clone(), meta.clone());
        let text =
            export::json(&doc).map_err(|e| format!("--json: cannot serialise the results: {e}"))?;
        file.write(&text)?;
    }
    if let Some(file) = junit_out {
        file.write(export::junit::report(&done.records, &meta)?.as_bytes())?;
    }
    Ok(done.exit_code)
}

//! `loadgen scenario`: select scenarios, run them, print verdicts with Requirement /
//! Expected / Actual for failures, and map the results to an exit code.

use std::time::Instant;

use scenarios::{registry, Ctx, Level, Outcome, Scenario, Verdict};

use crate::cli::ScenarioArgs;
use crate::{EXIT_CONFORMANCE, EXIT_OK, EXIT_USAGE};

/// `*` matches any run of characters; everything else literally.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(p) => rest = &rest[p + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// The scenarios `selectors` name (IDs, aliases, globs), in registry order.
pub fn select(all: &[Scenario], selectors: &[String]) -> Result<Vec<Scenario>, String> {
    let mut chosen = vec![false; all.len()];
    for sel in selectors {
        let mut hit = false;
        for (i, s) in all.iter().enumerate() {
            if s.clause.id == sel
                || s.aliases.contains(&sel.as_str())
                || glob_match(sel, s.clause.id)
            {
                chosen[i] = true;
                hit = true;
            }
        }
        if !hit {
            return Err(format!(
                "no scenario matches {sel:?}: run `loadgen scenario list` for IDs and aliases"
            ));
        }
    }
    Ok(all
        .iter()
        .zip(chosen)
        .filter(|(_, c)| *c)
        .map(|(s, _)| *s)
        .collect())
}

fn list(all: &[Scenario]) {
    println!("{:<30} {:<6} {:<28} clause", "ID", "LEVEL", "ALIASES");
    for s in all {
        println!(
            "{:<30} {:<6} {:<28} {}",
            s.clause.id,
            s.clause.level,
            s.aliases.join(","),
            s.clause.text
        );
    }
}

fn context(args: &ScenarioArgs) -> Result<Ctx, String> {
    if !(args.slack.is_finite() && args.slack > 0.0 && args.slack <= 100.0) {
        return Err(format!(
            "--slack {} is out of range: use a factor in (0, 100]",
            args.slack
        ));
    }
    if args.workers == 0 || args.workers > 64 {
        return Err(format!(
            "--workers {} is out of range: use 1 to 64",
            args.workers
        ));
    }
    if args.repeat == 0 {
        return Err("--repeat 0 runs nothing: use 1 or more".into());
    }
    #[allow(unused_mut)]
    let mut ctx = Ctx::new(args.slack, args.workers);
    if let Some(name) = &args.fault {
        #[cfg(feature = "faults")]
        {
            let f = engine::faults::Fault::from_name(name).ok_or_else(|| {
                let names: Vec<String> = engine::faults::Fault::ALL
                    .iter()
                    .map(|f| f.name())
                    .collect();
                format!("unknown fault {name:?}: use one of {}", names.join(", "))
            })?;
            ctx.fault = Some(f);
        }
        #[cfg(not(feature = "faults"))]
        return Err(format!(
            "--fault {name} needs the faults build: cargo run -p loadgen --features faults -- scenario ..."
        ));
    }
    Ok(ctx)
}

fn print_failure(s: &Scenario, o: &Outcome) {
    println!("    Requirement: {}", s.clause.text);
    for e in &o.expected {
        println!("    Expected:    {e}");
    }
    for a in &o.actual {
        println!("    Actual:      {a}");
    }
    for f in &o.failures {
        println!("    Mismatch:    {f}");
    }
}

/// Runs the subcommand; returns the exit code.
pub fn run(args: ScenarioArgs) -> Result<u8, String> {
    let all = registry();
    if args.selectors.first().map(String::as_str) == Some("list") {
        list(&all);
        return Ok(EXIT_OK);
    }
    let chosen = if args.all {
        all.clone()
    } else if args.selectors.is_empty() {
        return Err("name scenarios to run (IDs, aliases or globs), or use --all; `loadgen scenario list` shows them".into());
    } else {
        select(&all, &args.selectors)?
    };
    let ctx = context(&args)?;
    let started = Instant::now();
    let (mut must_failed, mut errors, mut flaky) = (0, 0, 0);
    let mut counts = [0usize; 5];
    for s in &chosen {
        let mut verdicts = Vec::new();
        let mut last_bad: Option<Outcome> = None;
        let t0 = Instant::now();
        for _ in 0..args.repeat {
            let o = s.run(&ctx);
            if o.verdict != Verdict::Pass {
                last_bad = Some(o.clone());
            }
            verdicts.push(o.verdict);
        }
        let dt = t0.elapsed();
        let worst = verdicts
            .iter()
            .max_by_key(|v| severity(v))
            .cloned()
            .unwrap_or(Verdict::Pass);
        let passes = verdicts.iter().filter(|v| **v == Verdict::Pass).count();
        let flake = passes > 0 && passes < verdicts.len();
        flaky += usize::from(flake);
        let label = match &worst {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::NonStrict => "NON-STRICT",
            Verdict::Skipped(_) => "SKIP",
            Verdict::Error(_) => "ERROR",
        };
        counts[severity(&worst) as usize] += 1;
        let repeat_note = if args.repeat > 1 {
            format!(
                "  {passes}/{} passed{}",
                verdicts.len(),
                if flake { " (FLAKY)" } else { "" }
            )
        } else {
            String::new()
        };
        println!(
            "{label:<10} {:<30} {:<6} {:>7.0} ms{repeat_note}",
            s.clause.id,
            s.clause.level.to_string(),
            dt.as_secs_f64() * 1000.0 / f64::from(args.repeat)
        );
        match &worst {
            Verdict::Skipped(r) | Verdict::Error(r) => println!("    Reason:      {r}"),
            _ => {}
        }
        if let Some(o) = &last_bad {
            if matches!(o.verdict, Verdict::Fail | Verdict::NonStrict) {
                print_failure(s, o);
            }
        }
        match worst {
            Verdict::Fail if s.clause.level == Level::Must => must_failed += 1,
            Verdict::Error(_) => errors += 1,
            _ => {}
        }
    }
    println!(
        "\n{} scenarios in {:.1} s: {} passed, {} failed, {} non-strict, {} skipped, {} errors{}",
        chosen.len(),
        started.elapsed().as_secs_f64(),
        counts[0],
        counts[4],
        counts[1],
        counts[2],
        counts[3],
        if args.repeat > 1 {
            format!(", {flaky} flaky")
        } else {
            String::new()
        }
    );
    Ok(if errors > 0 {
        EXIT_USAGE
    } else if must_failed > 0 {
        EXIT_CONFORMANCE
    } else {
        EXIT_OK
    })
}

fn severity(v: &Verdict) -> u8 {
    match v {
        Verdict::Pass => 0,
        Verdict::NonStrict => 1,
        Verdict::Skipped(_) => 2,
        Verdict::Error(_) => 3,
        Verdict::Fail => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("accept.*", "accept.pause.sync"));
        assert!(glob_match("*.sync", "accept.pause.sync"));
        assert!(glob_match("a*p*c", "accept.pause.sync"));
        assert!(!glob_match("worker.*", "accept.pause.sync"));
        assert!(glob_match("engine.type", "engine.type"));
    }

    #[test]
    fn aliases_and_globs_select_in_registry_order() {
        let all = registry();
        let pa = select(&all, &["pause-accept".to_string()]).unwrap();
        assert!(!pa.is_empty());
        assert!(pa.iter().all(|s| s.clause.id.starts_with("accept.")));
        let q = select(&all, &["queue-full".to_string()]).unwrap();
        let ids: Vec<_> = q.iter().map(|s| s.clause.id).collect();
        assert_eq!(ids, ["driver.write.queue-full", "driver.write.no-loss"]);
        assert!(select(&all, &["nope".to_string()])
            .unwrap_err()
            .contains("loadgen scenario list"));
    }
}

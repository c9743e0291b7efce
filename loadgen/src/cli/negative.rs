//! Our one line for a negative number after a flag, in place of clap's advice.

/// Our one line for a negative number clap refused: clap reads `-d -1s` as the flag
/// `-1` and advises `-- -1`, which is wrong here (no command takes a negative number).
/// `args` is the command line, program name included; `None` when no negative value
/// follows a flag, so clap's own message stands.
pub fn negative_value(args: &[String], err: &clap::Error) -> Option<String> {
    use clap::error::ErrorKind;
    if !matches!(
        err.kind(),
        ErrorKind::UnknownArgument | ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return None;
    }
    let negative = |v: &str| {
        v.strip_prefix('-')
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit() || c == '.'))
    };
    let command = args.get(1).filter(|a| !a.starts_with('-'));
    let help = command.map_or("loadgen --help".to_string(), |c| {
        format!("loadgen {c} --help")
    });
    let found = args
        .iter()
        .skip(1)
        .zip(args.iter().skip(2))
        .find_map(|(flag, value)| {
            if let Some((f, v)) = flag
                .split_once('=')
                .filter(|(f, v)| f.starts_with("--") && negative(v))
            {
                return Some((f.to_string(), v.to_string()));
            }
            (flag.starts_with('-') && flag.len() > 1 && !negative(flag) && negative(value))
                .then(|| (flag.clone(), value.clone()))
        });
    let (flag, value) = found.or_else(|| {
        let last = args.last()?;
        let (f, v) = last.split_once('=')?;
        (f.starts_with("--") && negative(v)).then(|| (f.to_string(), v.to_string()))
    })?;
    Some(format!(
        "{flag}: {value} is negative: give a value of 0 or more (see {help})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn line(args: &[&str]) -> Option<String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let err = Cli::try_parse_from(&args).expect_err("clap refuses it");
        negative_value(&args, &err)
    }

    #[test]
    fn a_negative_value_gets_our_line_not_clap_advice() {
        assert_eq!(
            line(&["loadgen", "bench", "-d", "-1s"]).unwrap(),
            "-d: -1s is negative: give a value of 0 or more (see loadgen bench --help)"
        );
        assert_eq!(
            line(&[
                "loadgen",
                "sweep",
                "http://127.0.0.1:1/",
                "--slo",
                "10ms",
                "--refine",
                "-2"
            ])
            .unwrap(),
            "--refine: -2 is negative: give a value of 0 or more (see loadgen sweep --help)"
        );
        assert_eq!(
            line(&["loadgen", "scenario", "--repeat=-3", "accept.*"]).unwrap(),
            "--repeat: -3 is negative: give a value of 0 or more (see loadgen scenario --help)"
        );
    }

    #[test]
    fn other_errors_keep_clap_message() {
        assert_eq!(line(&["loadgen", "bench", "--no-such-flag"]), None);
        assert_eq!(line(&["loadgen", "scenario", "--repeat", "many"]), None);
    }
}

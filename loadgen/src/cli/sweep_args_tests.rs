//! `loadgen sweep`'s flags: bad input is refused in one line naming the flag.

use super::*;

fn args(extra: &[&str]) -> SweepArgs {
    use clap::Parser;
    #[derive(Parser)]
    struct Top {
        #[command(flatten)]
        a: SweepArgs,
    }
    let mut v = vec!["sweep", "http://127.0.0.1:1/"];
    v.extend_from_slice(extra);
    Top::try_parse_from(v).unwrap().a
}

#[test]
fn bad_input_is_one_line_naming_the_flag() {
    let cases: [(&[&str], &str); 10] = [
        (&["--slo", "fast"], "--slo \"fast\""),
        (&["--slo", "0ms"], "--slo \"0ms\""),
        (&["--slo", "10ms", "--start", "0"], "--start 0"),
        (&["--slo", "10ms", "--start", "NaN"], "--start NaN"),
        (&["--slo", "10ms", "--max", "10"], "--max 10"),
        (&["--slo", "10ms", "--step", "fast"], "--step \"fast\""),
        (&["--slo", "10ms", "-d", "0s"], "--duration \"0s\""),
        (
            &["--slo", "10ms", "--arrivals", "bursty"],
            "--arrivals \"bursty\"",
        ),
        (&["--slo", "10ms", "-c", "0"], "--connections 0"),
        (
            &["--slo", "10ms", "--header", "nocolon"],
            "--header \"nocolon\"",
        ),
    ];
    for (extra, want) in cases {
        let e = settings(&args(extra)).expect_err("refused");
        assert!(e.contains(want) && !e.contains('\n'), "{extra:?}: {e}");
    }
    let e = settings(&SweepArgs {
        url: "ftp://x/".into(),
        ..args(&["--slo", "1ms"])
    })
    .unwrap_err();
    assert!(e.contains("http://"), "{e}");
    let ok = settings(&args(&["--slo", "2.5ms", "--step", "300"])).unwrap();
    assert_eq!(ok.slo_us, 2500);
    assert_eq!(ok.plan.growth, Growth::Add(300.0));
    assert_eq!(crate::export::sweep::slo_text(ok.slo_us), "2.5ms");
}

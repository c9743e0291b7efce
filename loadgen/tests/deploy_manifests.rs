//! The deployment files of sharded runs (`deploy/`): the Kubernetes manifests pass a
//! schema validator (`kubernetes-validate --strict`, Kubernetes' published OpenAPI
//! schemas, offline; skipped with the reason when it is not installed: `pip install
//! kubernetes-validate`), a damaged manifest fails it, and the Job, the merge step,
//! the image and the ssh example agree on the shards.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{deploy_dir, pod_args};

fn manifests() -> Vec<PathBuf> {
    let dir = deploy_dir().join("kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir:?}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "no manifests in {dir:?}");
    files
}

/// `kubernetes-validate --strict FILES`: `None` when the tool is not installed.
fn validate(files: &[PathBuf]) -> Option<std::process::Output> {
    match Command::new("kubernetes-validate")
        .arg("--strict")
        .args(files)
        .output()
    {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("kubernetes-validate: {e}"),
    }
}

#[test]
fn the_manifests_pass_the_kubernetes_schemas_and_a_damaged_one_does_not() {
    let files = manifests();
    let Some(out) = validate(&files) else {
        // In CI a missing validator is a missing install step, not a pass.
        assert!(
            std::env::var_os("CI").is_none(),
            "kubernetes-validate is not installed and CI is set: .ci/run must install it (pip install kubernetes-validate)"
        );
        println!("SKIPPED: kubernetes-validate is not installed (pip install kubernetes-validate)");
        return;
    };
    assert!(
        out.status.success(),
        "kubernetes-validate --strict rejects the manifests:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The validator is not a rubber stamp: a misspelt field and a count that is
    // not a number are rejected.
    let job = std::fs::read_to_string(deploy_dir().join("kubernetes/job.yaml")).unwrap();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    for (name, damaged) in [
        (
            "misspelt",
            job.replace("  parallelism: 3", "  paralelism: 3"),
        ),
        (
            "not-a-number",
            job.replace("completions: 3", "completions: three"),
        ),
    ] {
        assert_ne!(damaged, job, "{name}: the damage did not apply");
        let path = dir.join(format!("job-{name}-{}.yaml", std::process::id()));
        std::fs::write(&path, damaged).unwrap();
        let out = validate(std::slice::from_ref(&path)).unwrap();
        assert!(!out.status.success(), "{name}: a damaged Job passes");
        let _ = std::fs::remove_file(&path);
    }
}

fn field(text: &str, name: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(name))
        .unwrap_or_else(|| panic!("no {name} in the manifest"))
        .trim()
        .to_string()
}

#[test]
fn the_job_runs_one_pod_per_shard_and_the_merge_takes_every_shard() {
    let job = std::fs::read_to_string(deploy_dir().join("kubernetes/job.yaml")).unwrap();
    assert_eq!(field(&job, "completionMode:"), "Indexed");
    let args = pod_args("job.yaml", &[]);
    let after = |flag: &str| {
        let i = args.iter().position(|a| a == flag);
        args[i.unwrap_or_else(|| panic!("job.yaml: no {flag}")) + 1].clone()
    };
    let n = after("--shards");
    assert_eq!(field(&job, "completions:"), n, "completions != --shards");
    assert_eq!(field(&job, "parallelism:"), n, "parallelism != --shards");
    assert_eq!(after("--start-at"), "$(START_AT)");
    assert_eq!(after("--run-id"), "$(RUN_ID)");
    assert!(after("-o").contains("$(JOB_COMPLETION_INDEX)"));
    assert_eq!(args[0], "run");

    let merge = pod_args("merge-job.yaml", &[]);
    assert_eq!(merge[0], "merge");
    let n: usize = n.parse().unwrap();
    let want: Vec<String> = (0..n).map(|i| format!("/results/shard-{i}.json")).collect();
    assert_eq!(
        merge[1..=n],
        want[..],
        "the merge step must list every shard"
    );
}

#[test]
fn the_image_is_multi_stage_and_runs_as_a_user() {
    let text = std::fs::read_to_string(deploy_dir().join("Dockerfile")).unwrap();
    let froms = text.lines().filter(|l| l.starts_with("FROM ")).count();
    assert!(froms >= 2, "the Dockerfile is not multi-stage");
    let user = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the Dockerfile sets no USER");
    assert!(
        !user.starts_with("root") && !user.starts_with('0'),
        "runs as {user}"
    );
}

#[test]
fn the_ssh_example_is_a_valid_shell_script() {
    let path = deploy_dir().join("ssh-example.sh");
    let out = Command::new("sh").arg("-n").arg(&path).output().unwrap();
    assert!(
        out.status.success(),
        "{path:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("--shards $n") && text.contains("JOB_COMPLETION_INDEX=$i"));
}

#[test]
fn the_pod_command_line_is_one_loadgen_takes() {
    let url = format!("http://127.0.0.1:{}/", common::unused_port());
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let out_file = dir.join("pod-args-shard-$(JOB_COMPLETION_INDEX).json");
    let args = pod_args(
        "job.yaml",
        &[
            ("TARGET_URL", &url),
            ("START_AT", "2100-01-01T00:00:00Z"),
            ("RUN_ID", "pod-args"),
        ],
    );
    let args: Vec<String> = args
        .into_iter()
        .map(|a| {
            if a.starts_with("/results/") {
                out_file
                    .display()
                    .to_string()
                    .replace("$(JOB_COMPLETION_INDEX)", "2")
            } else {
                a
            }
        })
        .collect();
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(&args)
        .env("JOB_COMPLETION_INDEX", "2")
        .output()
        .unwrap();
    // Every flag is taken: what stops it is the server nobody runs.
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot connect"), "{args:?}: {err}");
    // Without the index the Job sets, the shard says what is missing.
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(&args)
        .env_remove("JOB_COMPLETION_INDEX")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("JOB_COMPLETION_INDEX is not set"), "{err}");
}

//! Well-kept outside tools on what the repository ships:
//!
//! - `checkov` (PyPI), the Kubernetes policy scanner, on `cmmd manifests`: every failed check must
//!   be listed, with its reason, in `packaging/k8s/checkov-accepted.txt`, and every listed check
//!   must still fail (the list stays true).
//! - `promql-parser` (PyPI), through `tests/tools/promql_selectors.py`, on every PromQL expression
//!   of the Grafana dashboard and the alert rules: each parses, and names only metrics, labels
//!   and label values that a running cmmd exports (plus the target labels Prometheus adds).
//!
//! `tests/run.sh` installs both into a virtual environment, `/opt/cmmd-test-tools` by default
//! (`CMMD_TEST_TOOLS` names another); a tool missing there is looked up on `PATH`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cmmd_tests::daemon::Daemon;
use cmmd_tests::http::{self, METRICS};
use cmmd_tests::netns::{Netns, require_root};
use serde_yaml_ng::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml(path: &Path) -> Value {
    // JSON is YAML: the dashboard and checkov's report parse the same way.
    serde_yaml_ng::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The program `name` of the test tools' virtual environment, or from `PATH`.
fn tool(name: &str) -> PathBuf {
    let venv = std::env::var_os("CMMD_TEST_TOOLS").unwrap_or_else(|| "/opt/cmmd-test-tools".into());
    let candidate = Path::new(&venv).join("bin").join(name);
    if candidate.is_file() {
        return candidate;
    }
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file()));
    on_path.flatten().unwrap_or_else(|| {
        panic!(
            "{name} is missing: run tests/run.sh (it installs checkov and promql-parser into {})",
            Path::new(&venv).display()
        )
    })
}

fn accepted_checks() -> BTreeMap<String, String> {
    read(&root().join("packaging/k8s/checkov-accepted.txt"))
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (id, reason) = l.split_once(' ').expect("CHECK_ID reason");
            assert!(!reason.trim().is_empty(), "{id} has no reason");
            (id.to_owned(), reason.trim().to_owned())
        })
        .collect()
}

#[test]
fn checkov_fails_only_the_checks_the_job_needs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifests = dir.path().join("manifests.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_cmmd-test")).arg("manifests").output().unwrap();
    assert!(out.status.success());
    std::fs::write(&manifests, &out.stdout).unwrap();
    let report = Command::new(tool("checkov"))
        .args(["--framework", "kubernetes", "--output", "json", "--quiet", "--compact"])
        .arg("--skip-download") // no network: checks only, no guideline links
        .arg("--file")
        .arg(&manifests)
        .env("HOME", dir.path())
        .output()
        .expect("checkov runs");
    let text = String::from_utf8_lossy(&report.stdout);
    let value: Value = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| {
        panic!("checkov's report: {e}\n{text}\n{}", String::from_utf8_lossy(&report.stderr))
    });
    let reports = match value {
        Value::Sequence(list) => list,
        one => vec![one],
    };
    let mut failed = BTreeMap::<String, BTreeSet<String>>::new();
    let mut passed = 0;
    for r in &reports {
        passed += r["summary"]["passed"].as_u64().unwrap_or(0);
        for check in r["results"]["failed_checks"].as_sequence().into_iter().flatten() {
            let id = check["check_id"].as_str().expect("check_id").to_owned();
            let what = format!(
                "{} ({})",
                check["resource"].as_str().unwrap_or("?"),
                check["check_name"].as_str().unwrap_or("?")
            );
            failed.entry(id).or_default().insert(what);
        }
    }
    assert!(passed > 50, "checkov ran its Kubernetes checks: {passed} passed\n{text}");
    let accepted = accepted_checks();
    let unexpected: BTreeMap<_, _> =
        failed.iter().filter(|(id, _)| !accepted.contains_key(*id)).collect();
    assert!(
        unexpected.is_empty(),
        "fix these, or list them with the reason the job needs them in packaging/k8s/checkov-accepted.txt: {unexpected:#?}"
    );
    let stale: Vec<&String> = accepted.keys().filter(|id| !failed.contains_key(*id)).collect();
    assert!(stale.is_empty(), "listed as accepted but passing now: remove {stale:?}");
}

/// Grafana's variables replaced by values PromQL takes.
fn without_grafana_variables(expr: &str) -> String {
    let mut text = expr.to_owned();
    for duration in ["$__rate_interval", "$__interval", "$__range"] {
        text = text.replace(duration, "5m");
    }
    text.replace("$node", ".*")
}

/// Every PromQL expression of the dashboard and the rules, with where it comes from.
fn expressions() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let dashboard = yaml(&root().join("packaging/monitoring/grafana-dashboard.json"));
    for panel in dashboard["panels"].as_sequence().expect("panels") {
        let title = panel["title"].as_str().expect("title");
        for target in panel["targets"].as_sequence().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            out.push((format!("dashboard panel {title:?}"), without_grafana_variables(expr)));
        }
    }
    let rules = yaml(&root().join("packaging/monitoring/cmmd.rules.yaml"));
    for group in rules["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            let name = rule["alert"].as_str().expect("alert");
            out.push((format!("alert {name}"), rule["expr"].as_str().expect("expr").to_owned()));
        }
    }
    out
}

/// Metric names, and per metric the label names and values, of a running daemon's /metrics.
fn exported() -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    require_root();
    let netns = Netns::new("obs").expect("namespace");
    let _daemon =
        Daemon::start(Path::new(env!("CARGO_BIN_EXE_cmmd-test")), &netns, &["--backend", "sim"])
            .expect("daemon");
    let answer =
        http::get(&netns, METRICS.parse().expect("address"), "/metrics").expect("/metrics");
    let mut metrics = BTreeMap::<String, BTreeMap<String, BTreeSet<String>>>::new();
    for series in http::samples(&answer).keys() {
        let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
        let entry = metrics.entry(name.to_owned()).or_default();
        for pair in labels.trim_end_matches('}').split(',').filter(|p| !p.is_empty()) {
            let (label, value) = pair.split_once('=').expect("label=value");
            entry.entry(label.to_owned()).or_default().insert(value.trim_matches('"').to_owned());
        }
    }
    metrics
}

/// Labels Prometheus attaches to every series of a target (the PodMonitor adds `node`).
const TARGET_LABELS: [&str; 5] = ["node", "namespace", "pod", "instance", "job"];

#[test]
fn dashboard_and_alert_expressions_parse_and_name_only_what_cmmd_exports() {
    let exported = exported();
    let expressions = expressions();
    let mut python = Command::new(tool("python3"))
        .arg(root().join("tests/tools/promql_selectors.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let input: Vec<&str> = expressions.iter().map(|(_, e)| e.as_str()).collect();
    python.stdin.take().unwrap().write_all(input.join("\0").as_bytes()).unwrap();
    let out = python.wait_with_output().unwrap();
    assert!(out.status.success(), "promql_selectors.py failed (is promql-parser installed?)");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_yaml_ng::from_str(l).expect("one JSON object per expression"))
        .collect();
    assert_eq!(lines.len(), expressions.len());
    let all_labels: BTreeSet<&str> =
        exported.values().flat_map(|labels| labels.keys().map(String::as_str)).collect();
    let mut problems = Vec::new();
    for ((source, expr), parsed) in expressions.iter().zip(&lines) {
        if let Some(error) = parsed["error"].as_str() {
            problems.push(format!("{source}: does not parse ({error}): {expr}"));
            continue;
        }
        for selector in parsed["selectors"].as_sequence().expect("selectors") {
            let Some(name) = selector["name"].as_str() else {
                problems.push(format!("{source}: a selector without a metric name: {expr}"));
                continue;
            };
            let Some(labels) = exported.get(name) else {
                problems.push(format!("{source}: cmmd exports no metric {name}"));
                continue;
            };
            for matcher in selector["matchers"].as_sequence().expect("matchers") {
                let (label, op, value) = (
                    matcher[0].as_str().unwrap_or(""),
                    matcher[1].as_str().unwrap_or(""),
                    matcher[2].as_str().unwrap_or(""),
                );
                if TARGET_LABELS.contains(&label) {
                    continue;
                }
                let Some(values) = labels.get(label) else {
                    problems.push(format!("{source}: {name} has no label {label}"));
                    continue;
                };
                // Equality and plain alternations name values the exposition must have.
                let wanted: Vec<&str> = match op {
                    "=" | "!=" => vec![value],
                    _ if value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '|') =>
                    {
                        value.split('|').collect()
                    }
                    _ => vec![],
                };
                for v in wanted.into_iter().filter(|v| !values.contains(*v)) {
                    problems.push(format!("{source}: {name}{{{label}=\"{v}\"}} is never exported"));
                }
            }
        }
        for label in parsed["grouping"].as_sequence().expect("grouping") {
            let label = label.as_str().unwrap_or("");
            if !TARGET_LABELS.contains(&label) && !all_labels.contains(label) {
                problems.push(format!("{source}: groups by {label}, which cmmd never exports"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    // The dashboard's node variable reads the same labels.
    let dashboard = yaml(&root().join("packaging/monitoring/grafana-dashboard.json"));
    let variable = &dashboard["templating"]["list"][1];
    assert_eq!(variable["definition"].as_str(), Some("label_values(cmmd_ready, node)"));
    assert!(exported.contains_key("cmmd_ready"));
}

#[test]
fn the_dashboard_and_the_rules_cover_what_operators_watch() {
    let titles: Vec<String> = expressions().into_iter().map(|(source, _)| source).collect();
    for wanted in [
        "dashboard panel \"Offloaded connections\"",
        "dashboard panel \"Conntrack events/s\"",
        "dashboard panel \"Overruns and resyncs\"",
        "dashboard panel \"Hardware commands/s by result\"",
        "dashboard panel \"Connections not offloaded, by reason\"",
        "dashboard panel \"Refusal decisions/s, by reason\"",
        "dashboard panel \"Programming latency\"",
        "alert CmmdEventOverruns",
        "alert CmmdHardwareErrors",
        "alert CmmdTableAlmostFull",
        "alert CmmdNotReady",
    ] {
        assert!(titles.iter().any(|t| t == wanted), "missing {wanted}: {titles:#?}");
    }
    let rules = yaml(&root().join("packaging/monitoring/cmmd.rules.yaml"));
    let operator = yaml(&root().join("packaging/k8s/monitoring/prometheusrule.yaml"));
    assert_eq!(operator["kind"].as_str(), Some("PrometheusRule"));
    assert_eq!(
        operator["spec"]["groups"], rules["groups"],
        "the PrometheusRule holds the rules file's groups"
    );
    let not_ready = rules["groups"][0]["rules"]
        .as_sequence()
        .and_then(|r| r.iter().find(|r| r["alert"].as_str() == Some("CmmdNotReady")))
        .expect("CmmdNotReady");
    assert_eq!(not_ready["for"].as_str(), Some("5m"));
    let monitor = yaml(&root().join("packaging/k8s/monitoring/podmonitor.yaml"));
    assert_eq!(monitor["kind"].as_str(), Some("PodMonitor"));
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"].as_str(),
        Some("cmm")
    );
    assert_eq!(monitor["spec"]["podMetricsEndpoints"][0]["port"].as_str(), Some("metrics"));
    let kustomization = yaml(&root().join("packaging/k8s/monitoring/kustomization.yaml"));
    let resources: Vec<&str> = kustomization["resources"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(resources, ["podmonitor.yaml", "prometheusrule.yaml"]);
}

//! Packaging: the Kubernetes manifests deserialize into the Kubernetes API types and carry the fields
//! the deployment relies on; the DPA wrapper and init script behave as documented; the example and
//! cluster configurations load.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, PodSpec, Secret, ServiceAccount,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

const NAMESPACE: &str = "mono-system";
const IMAGE: &str = "ghcr.io/monok8s/cmmd:latest";
const PROFILE: &str = "ls1046a-rdb";
const PROFILE_LABEL: &str = "monok8s.io/hardware-profile";
const DPA_FILES: [&str; 4] = ["cdx_cfg.xml", "cdx_pcd.xml", "hxs_pdl_v3.xml", "cdx_sp.xml"];

fn packaging() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging")
}

fn base() -> PathBuf {
    packaging().join("k8s/base")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Writes `contents` to `relative` inside `dir`, creating parent directories.
fn write_file(dir: &tempfile::TempDir, relative: &str, contents: &str) -> PathBuf {
    let path = dir.path().join(relative);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, contents).expect("write");
    path
}

/// Parses a manifest into its Kubernetes type and checks that nothing was lost on the way: a
/// misspelled or misplaced field would be dropped by the typed model, so re-serializing would differ.
fn typed<T: DeserializeOwned + Serialize>(file: &str) -> T {
    let text = read(&base().join(file));
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("valid YAML");
    let object: T = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    let again = serde_yaml_ng::to_value(&object).expect("serializes");
    let mut lost = Vec::new();
    differences(&value, &again, String::new(), &mut lost);
    assert!(lost.is_empty(), "{file}: not part of the Kubernetes type or changed by it: {lost:?}");
    object
}

/// Paths where `original` holds something `again` does not hold identically.
fn differences(
    original: &serde_yaml_ng::Value,
    again: &serde_yaml_ng::Value,
    path: String,
    out: &mut Vec<String>,
) {
    use serde_yaml_ng::Value;
    match (original, again) {
        (Value::Mapping(left), Value::Mapping(right)) => {
            for (key, value) in left {
                let name = format!("{path}.{}", key.as_str().unwrap_or("?"));
                match right.get(key) {
                    Some(other) => differences(value, other, name, out),
                    None => out.push(name),
                }
            }
        }
        (Value::Sequence(left), Value::Sequence(right)) if left.len() == right.len() => {
            for (index, (value, other)) in left.iter().zip(right).enumerate() {
                differences(value, other, format!("{path}[{index}]"), out);
            }
        }
        (left, right) if left == right => {}
        _ => out.push(path),
    }
}

fn kustomization() -> serde_yaml_ng::Value {
    serde_yaml_ng::from_str(&read(&base().join("kustomization.yaml")))
        .expect("kustomization parses")
}

fn resources() -> Vec<String> {
    kustomization()["resources"]
        .as_sequence()
        .expect("resources")
        .iter()
        .map(|r| r.as_str().expect("string").to_owned())
        .collect()
}

fn daemonset() -> DaemonSet {
    typed("daemonset.yaml")
}

fn pod_spec() -> PodSpec {
    daemonset().spec.and_then(|spec| spec.template.spec).expect("pod spec")
}

fn container<'a>(containers: &'a [Container], name: &str) -> &'a Container {
    containers.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("container {name}"))
}

fn env_value(container: &Container, name: &str) -> Option<String> {
    container.env.as_ref()?.iter().find(|e| e.name == name)?.value.clone()
}

fn env_field_path(container: &Container, name: &str) -> Option<String> {
    let var = container.env.as_ref()?.iter().find(|e| e.name == name)?;
    Some(var.value_from.as_ref()?.field_ref.as_ref()?.field_path.clone())
}

fn config_map(file: &str) -> BTreeMap<String, String> {
    let map: ConfigMap = typed(file);
    assert_eq!(map.metadata.namespace.as_deref(), Some(NAMESPACE), "{file}");
    map.data.expect("data")
}

#[test]
fn kustomization_lists_every_manifest_and_the_namespace() {
    assert_eq!(kustomization()["namespace"].as_str(), Some(NAMESPACE));
    let mut listed = resources();
    listed.sort();
    let mut present: Vec<String> = std::fs::read_dir(base())
        .expect("base dir")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml") && name != "kustomization.yaml")
        .collect();
    present.sort();
    assert_eq!(listed, present);
}

#[test]
fn manifests_are_kubernetes_objects_of_the_expected_kinds() {
    let mut kinds = BTreeMap::<String, usize>::new();
    for file in resources() {
        let value: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&read(&base().join(&file))).expect("YAML");
        let kind = value["kind"].as_str().expect("kind").to_owned();
        match kind.as_str() {
            "Namespace" => drop(typed::<Namespace>(&file)),
            "ServiceAccount" => drop(typed::<ServiceAccount>(&file)),
            "ConfigMap" => drop(typed::<ConfigMap>(&file)),
            "Secret" => drop(typed::<Secret>(&file)),
            "DaemonSet" => drop(typed::<DaemonSet>(&file)),
            other => {
                panic!("{file}: unexpected kind {other} (no Service or LoadBalancer for the CLI)")
            }
        }
        *kinds.entry(kind).or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = [
        ("ConfigMap", 3),
        ("DaemonSet", 1),
        ("Namespace", 1),
        ("Secret", 1),
        ("ServiceAccount", 1),
    ]
    .into_iter()
    .map(|(kind, count)| (kind.to_owned(), count))
    .collect();
    assert_eq!(kinds, expected);
    let namespace: Namespace = typed("namespace.yaml");
    assert_eq!(namespace.metadata.name.as_deref(), Some(NAMESPACE));
    let account: ServiceAccount = typed("serviceaccount.yaml");
    assert_eq!(account.automount_service_account_token, Some(false));
}

#[test]
fn daemonset_runs_cmm_on_the_host_network_of_profiled_nodes_only() {
    let ds = daemonset();
    assert_eq!(ds.metadata.name.as_deref(), Some("cmm"));
    assert_eq!(ds.metadata.namespace.as_deref(), Some(NAMESPACE));
    let spec = ds.spec.as_ref().expect("spec");
    let selector = spec.selector.match_labels.clone().expect("selector");
    assert_eq!(selector.get("app.kubernetes.io/name").map(String::as_str), Some("cmm"));
    let pod_labels =
        spec.template.metadata.as_ref().and_then(|m| m.labels.clone()).expect("labels");
    for (key, value) in &selector {
        assert_eq!(pod_labels.get(key), Some(value), "the selector matches the pod template");
    }
    let pod = pod_spec();
    assert_eq!(pod.host_network, Some(true));
    assert_eq!(pod.dns_policy.as_deref(), Some("ClusterFirstWithHostNet"));
    assert_eq!(pod.service_account_name.as_deref(), Some("cmm"));
    let node_selector = pod.node_selector.clone().expect("nodeSelector");
    assert_eq!(node_selector.get(PROFILE_LABEL).map(String::as_str), Some(PROFILE));
    // The shutdown path takes < 5 s; the grace period covers it without stalling rollouts.
    let grace = pod.termination_grace_period_seconds.expect("grace period");
    assert!((5..=30).contains(&grace), "terminationGracePeriodSeconds {grace}");
}

#[test]
fn cmmd_container_has_net_admin_only_and_probes_the_health_endpoints() {
    let pod = pod_spec();
    assert_eq!(pod.containers.len(), 1);
    let cmmd = container(&pod.containers, "cmmd");
    assert_eq!(cmmd.image.as_deref(), Some(IMAGE));
    let security = cmmd.security_context.as_ref().expect("securityContext");
    assert_eq!(security.privileged, None, "cmmd is not privileged");
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    let caps = security.capabilities.as_ref().expect("capabilities");
    assert_eq!(caps.add.as_deref(), Some(&["NET_ADMIN".to_owned()][..]));
    assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_owned()][..]));
    assert_eq!(env_field_path(cmmd, "NODE_NAME").as_deref(), Some("spec.nodeName"));
    for (probe, path) in [(&cmmd.liveness_probe, "/healthz"), (&cmmd.readiness_probe, "/readyz")] {
        let get = probe.as_ref().and_then(|p| p.http_get.as_ref()).expect("httpGet probe");
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(get.host.as_deref(), Some("127.0.0.1"));
        assert_eq!(
            get.port,
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i32::from(
                config::defaults::METRICS_PORT
            )),
            "probes reach the default metrics.listen"
        );
    }
    let resources = cmmd.resources.as_ref().expect("resources");
    let quantity =
        |map: &Option<
            BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
        >,
         key: &str| { map.as_ref().and_then(|m| m.get(key)).map(|q| q.0.clone()) };
    assert_eq!(quantity(&resources.requests, "memory").as_deref(), Some("64Mi"));
    assert_eq!(quantity(&resources.limits, "memory").as_deref(), Some("128Mi"));
    assert_eq!(
        quantity(&resources.limits, "cpu"),
        None,
        "no CPU limit: throttling would stall the event loop"
    );
}

#[test]
fn configuration_and_cli_secret_are_mounted_where_cmmd_looks() {
    let pod = pod_spec();
    let cmmd = container(&pod.containers, "cmmd");
    let mount = cmmd
        .volume_mounts
        .as_ref()
        .and_then(|m| m.iter().find(|m| m.name == "config"))
        .expect("config mount");
    assert_eq!(mount.sub_path, None, "no subPath, so edits reach the pod for SIGHUP");
    let volume = pod
        .volumes
        .as_ref()
        .and_then(|v| v.iter().find(|v| v.name == "config"))
        .expect("config volume");
    let sources =
        volume.projected.as_ref().and_then(|p| p.sources.clone()).expect("projected sources");
    let config_item = sources
        .iter()
        .find_map(|s| s.config_map.as_ref())
        .filter(|c| c.name == "cmm-config")
        .and_then(|c| c.items.as_ref()?.first().cloned())
        .expect("cmm-config item");
    assert_eq!(
        Path::new(&mount.mount_path).join(&config_item.path),
        Path::new(config::defaults::CONFIG_PATH),
        "the ConfigMap lands on the default configuration path"
    );
    let secret_item = sources
        .iter()
        .find_map(|s| s.secret.as_ref())
        .filter(|s| s.name == "cmm-cli-users")
        .and_then(|s| s.items.as_ref()?.first().cloned())
        .expect("cmm-cli-users item");
    assert_eq!(secret_item.mode, Some(0o400));
    assert_eq!(
        env_value(cmmd, "CMM_CLI_PASSWORD_FILE").map(PathBuf::from),
        Some(Path::new(&mount.mount_path).join(&secret_item.path))
    );
    let secret: Secret = typed("secret-cli-users.yaml");
    let users =
        secret.string_data.as_ref().and_then(|d| d.get(&secret_item.key)).expect("cli-users key");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write_file(&dir, "cli-users", users);
    assert_eq!(config::read_password_file(&file).expect("the shipped Secret parses"), Vec::new());
}

#[test]
fn dpa_init_container_runs_the_wrapper_with_the_device_and_the_profile() {
    let pod = pod_spec();
    let inits = pod.init_containers.as_deref().expect("init containers");
    let names: Vec<&str> = inits.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["dpa-app", "conntrack-events"]);
    let dpa = container(inits, "dpa-app");
    assert_eq!(
        dpa.command.as_deref(),
        Some(&["/bin/sh".to_owned(), "/usr/lib/cmm/select-dpa-config.sh".to_owned()][..])
    );
    assert_eq!(
        env_value(dpa, "CMM_HW_PROFILE").as_deref(),
        Some(PROFILE),
        "profile env matches the nodeSelector"
    );
    assert_eq!(env_field_path(dpa, "NODE_NAME").as_deref(), Some("spec.nodeName"));
    let mounts: BTreeMap<String, String> = dpa
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| (m.name.clone(), m.mount_path.clone()))
        .collect();
    assert_eq!(mounts.get("cdx-ctrl").map(String::as_str), Some("/dev/cdx_ctrl"));
    assert_eq!(mounts.get("dpa-wrapper").map(String::as_str), Some("/usr/lib/cmm"));
    assert_eq!(mounts.get("dpa-xml"), env_value(dpa, "DPA_CONFIG_ROOT").as_ref());
    let volumes = pod.volumes.clone().expect("volumes");
    let volume = |name: &str| {
        volumes.iter().find(|v| v.name == name).unwrap_or_else(|| panic!("volume {name}")).clone()
    };
    let device = volume("cdx-ctrl").host_path.expect("hostPath");
    assert_eq!(
        (device.path.as_str(), device.type_.as_deref()),
        ("/dev/cdx_ctrl", Some("CharDevice"))
    );
    assert_eq!(volume("dpa-wrapper").config_map.and_then(|c| c.default_mode), Some(0o555));
    // The four XML keys of the profile exist in the ConfigMap and land in profiles/<profile>/.
    let items = volume("dpa-xml").config_map.and_then(|c| c.items).expect("dpa-xml items");
    let xml = config_map("configmap-dpa-xml.yaml");
    let mapped: BTreeSet<(String, String)> =
        items.iter().map(|i| (i.key.clone(), i.path.clone())).collect();
    let expected: BTreeSet<(String, String)> = DPA_FILES
        .iter()
        .map(|file| (format!("{PROFILE}.{file}"), format!("profiles/{PROFILE}/{file}")))
        .collect();
    assert_eq!(mapped, expected);
    for (key, _) in &expected {
        assert!(xml.contains_key(key), "cmm-dpa-xml lacks {key}");
    }
    let events = container(inits, "conntrack-events");
    assert_eq!(events.image.as_deref(), Some(IMAGE));
    assert!(
        events
            .command
            .iter()
            .flatten()
            .any(|arg| arg.contains("/proc/sys/net/netfilter/nf_conntrack_events"))
    );
}

#[test]
fn wrapper_configmap_holds_the_scripts_verbatim() {
    let data = config_map("configmap-dpa-wrapper.yaml");
    for script in ["select-dpa-config.sh", "dpa-init.sh"] {
        assert_eq!(
            data.get(script),
            Some(&read(&packaging().join("node").join(script))),
            "regenerate with packaging/node/render-configmap.sh > packaging/k8s/base/configmap-dpa-wrapper.yaml"
        );
    }
}

fn load_config(path: &Path) -> config::Loaded {
    let env = |_: &str| None;
    let overrides = config::Overrides {
        config: Some(path.display().to_string()),
        ..config::Overrides::default()
    };
    config::Config::load(&config::LoadOptions::new(&env, overrides))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_example_and_the_cluster_configurations_load() {
    let example = load_config(&packaging().join("cmmd.toml"));
    assert_eq!(example.config, config::Config::default());
    let data = config_map("configmap-cmmd.yaml");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_file(&dir, "cmmd.toml", data.get("cmmd.toml").expect("cmmd.toml key"));
    let cluster = load_config(&path).config;
    assert!(
        !cluster.netlink.enable_events_sysctl,
        "the conntrack-events init container sets the sysctl"
    );
    assert_eq!(cluster.log.format, config::LogFormat::Json);
    assert_eq!(
        cluster.metrics.listen,
        Some(std::net::SocketAddr::from(([127, 0, 0, 1], config::defaults::METRICS_PORT)))
    );
    let vendor = config::read_fastforward(&packaging().join("fastforward.vendor.orig"))
        .expect("vendor file");
    assert_eq!(vendor.rules.len(), 12);
}

#[test]
fn containerfile_copies_files_that_exist() {
    let text = read(&packaging().join("Containerfile"));
    let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "multi-stage: build and runtime");
    assert!(text.contains("cargo build --release --locked -p cmmd"));
    assert!(text.contains("CARGO_PROFILE_RELEASE_STRIP=symbols"));
    assert!(text.contains("ENTRYPOINT [\"/usr/bin/cmmd\"]"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut copied = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("COPY ") && !l.contains("--from=")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let sources = &words[1..words.len() - 1];
        for source in sources.iter().filter(|s| **s != ".") {
            assert!(root.join(source).is_file(), "Containerfile copies missing {source}");
            copied.push(*source);
        }
    }
    for required in [
        "packaging/node/select-dpa-config.sh",
        "packaging/cmmd.toml",
        "packaging/fastforward.vendor.orig",
    ] {
        assert!(copied.contains(&required), "image lacks {required}");
    }
}

/// A DPA configuration tree with a fake init script that prints what it was given.
struct DpaTree {
    dir: tempfile::TempDir,
}

impl DpaTree {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        write_file(
            &dir,
            "fake-init.sh",
            "#!/bin/sh\necho \"init: CDX_CFG_FILE=$CDX_CFG_FILE\"\necho \"init: CDX_PCD_FILE=$CDX_PCD_FILE\"\n\
             echo \"init: CDX_PDL_FILE=$CDX_PDL_FILE\"\necho \"init: CDX_SP_FILE=$CDX_SP_FILE\"\n",
        );
        Self { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("dpa")
    }

    fn add_set(&self, relative: &str) {
        for file in DPA_FILES {
            write_file(&self.dir, &format!("dpa/{relative}/{file}"), &format!("<{file}/>\n"));
        }
    }

    fn run(&self, env: &[(&str, &str)]) -> Output {
        let mut command = Command::new("bash");
        command
            .arg(packaging().join("node/select-dpa-config.sh"))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("DPA_CONFIG_ROOT", self.root())
            .env("DPA_INIT", self.dir.path().join("fake-init.sh"));
        for (key, value) in env {
            command.env(key, value);
        }
        command.output().expect("bash runs")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn wrapper_selects_the_profile_prints_and_exports_the_four_paths() {
    let tree = DpaTree::new();
    tree.add_set("profiles/ls1046a-rdb");
    let out = tree.run(&[("CMM_HW_PROFILE", "ls1046a-rdb"), ("NODE_NAME", "node-7")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dir = tree.root().join("profiles/ls1046a-rdb");
    let d = dir.display();
    assert_eq!(
        text(&out.stdout),
        format!(
            "select-dpa-config: using {d} (hardware profile ls1046a-rdb)\n\
             CDX_CFG_FILE={d}/cdx_cfg.xml\nCDX_PCD_FILE={d}/cdx_pcd.xml\nCDX_PDL_FILE={d}/hxs_pdl_v3.xml\nCDX_SP_FILE={d}/cdx_sp.xml\n\
             init: CDX_CFG_FILE={d}/cdx_cfg.xml\ninit: CDX_PCD_FILE={d}/cdx_pcd.xml\n\
             init: CDX_PDL_FILE={d}/hxs_pdl_v3.xml\ninit: CDX_SP_FILE={d}/cdx_sp.xml\n"
        )
    );
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn wrapper_prefers_a_node_directory_for_bring_up() {
    let tree = DpaTree::new();
    tree.add_set("profiles/ls1046a-rdb");
    tree.add_set("nodes/board-3");
    let out = tree.run(&[("CMM_HW_PROFILE", "ls1046a-rdb"), ("NODE_NAME", "board-3")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dir = tree.root().join("nodes/board-3");
    assert!(
        text(&out.stdout)
            .starts_with(&format!("select-dpa-config: using {} (node board-3)\n", dir.display()))
    );
    assert!(
        text(&out.stdout).contains(&format!("init: CDX_SP_FILE={}/cdx_sp.xml\n", dir.display()))
    );
    // Without a profile, the node directory alone is enough.
    let out = tree.run(&[("NODE_NAME", "board-3")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn wrapper_fails_clearly_on_a_missing_directory() {
    let tree = DpaTree::new();
    tree.add_set("profiles/ls1046a-rdb");
    let out = tree.run(&[("CMM_HW_PROFILE", "ls1043a-rdb"), ("NODE_NAME", "node-7")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        format!(
            "select-dpa-config: no DPA configuration for hardware profile \"ls1043a-rdb\": directory {}/profiles/ls1043a-rdb \
             does not exist (and there is no {}/nodes/node-7)\n",
            tree.root().display(),
            tree.root().display()
        )
    );
    let out = tree.run(&[("NODE_NAME", "node-7")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "select-dpa-config: CMM_HW_PROFILE is not set and there is no {}/nodes/node-7: cannot choose a DPA configuration\n",
            tree.root().display()
        )
    );
    let out = tree.run(&[("CMM_HW_PROFILE", "../../etc")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "select-dpa-config: CMM_HW_PROFILE \"../../etc\" is not a valid directory name\n"
    );
}

#[test]
fn wrapper_fails_clearly_on_missing_or_empty_files() {
    let tree = DpaTree::new();
    tree.add_set("profiles/ls1046a-rdb");
    let dir = tree.root().join("profiles/ls1046a-rdb");
    std::fs::remove_file(dir.join("cdx_pcd.xml")).expect("remove");
    std::fs::write(dir.join("cdx_sp.xml"), "").expect("truncate");
    let out = tree.run(&[("CMM_HW_PROFILE", "ls1046a-rdb")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "", "the init script never runs");
    let d = dir.display();
    assert_eq!(
        text(&out.stderr),
        format!(
            "select-dpa-config: {d}/cdx_pcd.xml is missing\nselect-dpa-config: {d}/cdx_sp.xml is empty\n\
             select-dpa-config: 2 of the four DPA XML files in {d} are missing or empty; put the board's XML set \
             there (ConfigMap cmm-dpa-xml)\n"
        )
    );
}

#[test]
fn dpa_init_installs_the_files_at_the_fixed_paths_and_runs_dpa_app_once_per_boot() {
    let tree = DpaTree::new();
    tree.add_set("profiles/p");
    let set = tree.root().join("profiles/p");
    let fake_root = tree.dir.path().join("root");
    let log = tree.dir.path().join("dpa_app.log");
    let app = write_file(
        &tree.dir,
        "dpa_app",
        &format!(
            "#!/bin/sh\ncat {r}/etc/cdx_cfg.xml {r}/etc/cdx_pcd.xml {r}/etc/cdx_sp.xml {r}/etc/fmc/config/hxs_pdl_v3.xml >> {l}\n",
            r = fake_root.display(),
            l = log.display()
        ),
    );
    std::fs::set_permissions(&app, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let done = tree.dir.path().join("run/cmm/dpa-app.done");
    let run = || {
        Command::new("bash")
            .arg(packaging().join("node/dpa-init.sh"))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("CDX_CFG_FILE", set.join("cdx_cfg.xml"))
            .env("CDX_PCD_FILE", set.join("cdx_pcd.xml"))
            .env("CDX_PDL_FILE", set.join("hxs_pdl_v3.xml"))
            .env("CDX_SP_FILE", set.join("cdx_sp.xml"))
            .env("DPA_APP", &app)
            .env("DPA_ROOT", &fake_root)
            .env("DPA_DONE_FILE", &done)
            .output()
            .expect("bash runs")
    };
    let out = run();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(read(&log), "<cdx_cfg.xml/>\n<cdx_pcd.xml/>\n<cdx_sp.xml/>\n<hxs_pdl_v3.xml/>\n");
    assert!(text(&out.stdout).contains(&format!("dpa-init: created {}\n", done.display())));
    assert!(done.exists());
    // A second start in the same boot skips dpa_app (the marker says it ran).
    let again = run();
    assert!(again.status.success());
    assert_eq!(
        text(&again.stdout),
        format!(
            "dpa-init: {} exists: the FMan was programmed since boot, dpa_app not run again\n",
            done.display()
        )
    );
    assert_eq!(read(&log).lines().count(), 4, "dpa_app ran once");
}

#[test]
fn dpa_init_refuses_to_run_without_the_wrapper_variables() {
    let out = Command::new("bash")
        .arg(packaging().join("node/dpa-init.sh"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("bash runs");
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("CDX_CFG_FILE: is not set: run select-dpa-config.sh"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn cmmd_manifests_prints_the_base_with_the_requested_substitutions() {
    let binary = env!("CARGO_BIN_EXE_cmmd-test");
    let default = Command::new(binary).arg("manifests").output().expect("cmmd manifests runs");
    assert!(default.status.success(), "{}", text(&default.stderr));
    let stream = text(&default.stdout);
    let documents: Vec<serde_yaml_ng::Value> = serde_yaml_ng::Deserializer::from_str(&stream)
        .map(|d| serde_yaml_ng::Value::deserialize(d).expect("each document is YAML"))
        .collect();
    let kinds: Vec<&str> = documents.iter().filter_map(|d| d.get("kind")?.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "ServiceAccount",
            "ConfigMap",
            "ConfigMap",
            "ConfigMap",
            "Secret",
            "DaemonSet"
        ],
        "every base resource, in the kustomization's order"
    );
    for (document, resource) in documents.iter().zip(resources()) {
        let file: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&read(&base().join(&resource))).unwrap();
        assert_eq!(document, &file, "{resource} printed as it is shipped");
    }

    let custom = Command::new(binary)
        .args([
            "manifests",
            "--namespace",
            "edge",
            "--image",
            "registry.local/cmmd:1.0",
            "--profile",
            "ls1043a-rdb",
        ])
        .output()
        .unwrap();
    assert!(custom.status.success());
    let stream = text(&custom.stdout);
    let daemonset = serde_yaml_ng::Deserializer::from_str(&stream)
        .map(|d| serde_yaml_ng::Value::deserialize(d).unwrap())
        .find(|d| d.get("kind").and_then(|k| k.as_str()) == Some("DaemonSet"))
        .unwrap();
    let daemonset: DaemonSet = serde_yaml_ng::from_value(daemonset).expect("a DaemonSet");
    assert_eq!(daemonset.metadata.namespace.as_deref(), Some("edge"));
    let spec = daemonset.spec.unwrap().template.spec.unwrap();
    assert_eq!(
        spec.node_selector.unwrap().get(PROFILE_LABEL).map(String::as_str),
        Some("ls1043a-rdb")
    );
    assert_eq!(
        container(&spec.containers, "cmmd").image.as_deref(),
        Some("registry.local/cmmd:1.0")
    );
    assert!(!stream.contains(NAMESPACE) && !stream.contains(IMAGE) && !stream.contains(PROFILE));

    let bad =
        Command::new(binary).args(["manifests", "--namespace", "Not_A_Label"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(text(&bad.stderr).lines().count(), 1, "one error line");
}

//! Packaging: the Kubernetes manifests deserialize into the Kubernetes API types and carry the fields
//! the deployment relies on (the monok8s CMM document's names, paths and image; resources from the
//! measured memory; hardening); the example and cluster configurations load; `cmmd manifests`
//! prints the base. The node scripts are tested in `dpa_wrapper.rs`, the scanners in
//! `external_checks.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, PodSpec, ResourceRequirements, Secret, ServiceAccount,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

const NAMESPACE: &str = "mono-system";
const IMAGE: &str = "localhost/monok8s/cmm:dev";
const PROFILE: &str = "ls1046a-rdb";
const PROFILE_LABEL: &str = "monok8s.io/hardware-profile";
pub(crate) const DPA_FILES: [&str; 4] =
    ["cdx_cfg.xml", "cdx_pcd.xml", "hxs_pdl_v3.xml", "cdx_sp.xml"];

pub(crate) fn packaging() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging")
}

fn base() -> PathBuf {
    packaging().join("k8s/base")
}

pub(crate) fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Writes `contents` to `relative` inside `dir`, creating parent directories.
pub(crate) fn write_file(dir: &tempfile::TempDir, relative: &str, contents: &str) -> PathBuf {
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

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
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

/// The second profile's overlay patches the base by name (strategic merge): every container,
/// variable and volume it names exists in the base, and it moves every place the base names the
/// profile. (`kubectl kustomize` itself is not on the test machines.)
#[test]
fn the_second_profile_overlay_patches_what_the_base_has() {
    let overlay: serde_yaml_ng::Value = serde_yaml_ng::from_str(&read(
        &packaging().join("k8s/overlays/ls1043a-rdb/kustomization.yaml"),
    ))
    .expect("overlay parses");
    let patch_text = overlay["patches"]
        .as_sequence()
        .expect("patches")
        .iter()
        .find(|p| p["target"]["kind"].as_str() == Some("DaemonSet"))
        .and_then(|p| p["patch"].as_str())
        .expect("DaemonSet patch");
    let patch: DaemonSet = serde_yaml_ng::from_str(patch_text).expect("a DaemonSet patch");
    let patched = patch.spec.and_then(|s| s.template.spec).expect("pod spec patch");
    let original = pod_spec();
    let base_inits = original.init_containers.clone().unwrap_or_default();
    for (patched, base) in [
        (patched.init_containers.clone().unwrap_or_default(), base_inits),
        (patched.containers.clone(), original.containers.clone()),
    ] {
        for c in &patched {
            let original = container(&base, &c.name);
            for var in c.env.iter().flatten() {
                assert!(
                    env_value(original, &var.name).is_some(),
                    "{}: {} not in the base",
                    c.name,
                    var.name
                );
                assert_eq!(var.value.as_deref(), Some("ls1043a-rdb"));
            }
        }
    }
    let volumes = original.volumes.clone().unwrap_or_default();
    for v in patched.volumes.iter().flatten() {
        assert!(volumes.iter().any(|b| b.name == v.name), "volume {} not in the base", v.name);
        for item in v.config_map.iter().flat_map(|c| c.items.iter().flatten()) {
            assert!(item.key.starts_with("_profiles.ls1043a-rdb."), "{}", item.key);
            assert_eq!(item.path, item.key.replacen('.', "/", 2));
        }
    }
    // Every place the base's DaemonSet names its profile, the patch names the other one.
    let base_text = read(&base().join("daemonset.yaml"));
    let places = base_text.matches(PROFILE).count();
    assert_eq!(patch_text.matches("ls1043a-rdb").count(), places, "{patch_text}");
}

fn quantity(resources: &ResourceRequirements, limits: bool, key: &str) -> Option<String> {
    let map = if limits { &resources.limits } else { &resources.requests };
    map.as_ref().and_then(|m| m.get(key)).map(|q| q.0.clone())
}

#[test]
fn cmmd_container_has_net_admin_only_and_probes_the_health_endpoints_on_the_node() {
    let pod = pod_spec();
    assert_eq!(pod.containers.len(), 1);
    let cmmd = container(&pod.containers, "cmmd");
    let security = cmmd.security_context.as_ref().expect("securityContext");
    assert_eq!(security.privileged, None, "cmmd is not privileged");
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    let caps = security.capabilities.as_ref().expect("capabilities");
    assert_eq!(caps.add.as_deref(), Some(&["NET_ADMIN".to_owned()][..]));
    assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_owned()][..]));
    assert_eq!(env_field_path(cmmd, "NODE_NAME").as_deref(), Some("spec.nodeName"));
    // /metrics and the probes on the node's address; a host-network pod's IP is the node's, so
    // the kubelet's probes (no host) and a PodMonitor (port "metrics") reach the same socket.
    assert_eq!(env_field_path(cmmd, "HOST_IP").as_deref(), Some("status.hostIP"));
    assert_eq!(
        env_value(cmmd, "CMM_METRICS_LISTEN").as_deref(),
        Some(format!("[$(HOST_IP)]:{}", config::defaults::METRICS_PORT).as_str())
    );
    let names: Vec<&str> = cmmd.env.iter().flatten().map(|e| e.name.as_str()).collect();
    let position = |name: &str| names.iter().position(|n| *n == name).expect(name);
    assert!(
        position("HOST_IP") < position("CMM_METRICS_LISTEN"),
        "$(HOST_IP) is defined before use"
    );
    let port = cmmd.ports.as_deref().and_then(|p| p.first()).expect("container port");
    assert_eq!(port.name.as_deref(), Some("metrics"));
    assert_eq!(port.container_port, i32::from(config::defaults::METRICS_PORT));
    assert_eq!(port.host_port, None, "hostNetwork implies it");
    for (probe, path) in [(&cmmd.liveness_probe, "/healthz"), (&cmmd.readiness_probe, "/readyz")] {
        let get = probe.as_ref().and_then(|p| p.http_get.as_ref()).expect("httpGet probe");
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(get.host, None, "the pod's IP, which is the node's");
        assert_eq!(get.port, IntOrString::String("metrics".into()));
    }
}

#[test]
fn every_container_runs_the_documents_image_with_limits_and_the_pod_has_a_seccomp_profile() {
    let pod = pod_spec();
    let seccomp = pod.security_context.as_ref().and_then(|s| s.seccomp_profile.as_ref());
    assert_eq!(seccomp.map(|p| p.type_.as_str()), Some("RuntimeDefault"));
    let all = pod.init_containers.iter().flatten().chain(&pod.containers);
    for c in all {
        assert_eq!(c.image.as_deref(), Some(IMAGE), "{}: one image for every container", c.name);
        assert_eq!(
            c.image_pull_policy.as_deref(),
            Some("Never"),
            "{}: images ship on the node",
            c.name
        );
        let resources = c.resources.as_ref().unwrap_or_else(|| panic!("{}: resources", c.name));
        for limits in [false, true] {
            for key in ["cpu", "memory"] {
                assert!(
                    quantity(resources, limits, key).is_some(),
                    "{}: {key} (limits: {limits})",
                    c.name
                );
            }
        }
        let privileged = c.security_context.as_ref().and_then(|s| s.privileged) == Some(true);
        let read_only = c.security_context.as_ref().and_then(|s| s.read_only_root_filesystem);
        // Read-only wherever it works: only dpa_app writes under /etc (its fixed input paths).
        assert_eq!(read_only, Some(c.name != "dpa-app"), "{}: readOnlyRootFilesystem", c.name);
        assert_eq!(privileged, c.name != "cmmd", "{}: privileged", c.name);
    }
    let text = read(&base().join("daemonset.yaml"));
    assert!(!text.contains(":latest"));
}

/// The memory request and limit follow the rule stated in the manifest (the measured footprint
/// at `CMM_MAX_CONNECTIONS`, and twice it), and CMM_MAX_CONNECTIONS is the default.
#[test]
fn cmmd_resources_are_sized_for_max_connections() {
    let pod = pod_spec();
    let cmmd = container(&pod.containers, "cmmd");
    let default = config::defaults::MAX_CONNECTIONS.get();
    assert_eq!(env_value(cmmd, "CMM_MAX_CONNECTIONS"), Some(default.to_string()));
    let request = cmmd::cmd::manifests::memory_mib(default);
    let resources = cmmd.resources.as_ref().expect("resources");
    assert_eq!(quantity(resources, false, "memory"), Some(format!("{request}Mi")));
    assert_eq!(quantity(resources, true, "memory"), Some(format!("{}Mi", 2 * request)));
    // Above every figure measured at 131072 (32.0-32.4 MiB peak RSS) and stated in the manifest.
    assert!(request >= 33, "{request}");
    let text = read(&base().join("daemonset.yaml"));
    assert!(text.contains("9 MiB + 200 B per connection"), "the rule is in the manifest");
    assert_eq!(cmmd::cmd::manifests::MEMORY_BASE_BYTES, 9 << 20);
    assert_eq!(cmmd::cmd::manifests::MEMORY_PER_CONNECTION_BYTES, 200);
    assert_eq!(quantity(resources, true, "cpu").as_deref(), Some("2"));
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
fn dpa_init_container_runs_the_wrapper_of_the_document_with_the_device_and_the_profile() {
    let pod = pod_spec();
    let inits = pod.init_containers.as_deref().expect("init containers");
    let names: Vec<&str> = inits.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["dpa-app", "conntrack-events"]);
    let dpa = container(inits, "dpa-app");
    assert_eq!(dpa.command.as_deref(), Some(&["/node-config/select-dpa-config.sh".to_owned()][..]));
    assert_eq!(
        env_value(dpa, "CMM_HW_PROFILE").as_deref(),
        Some(PROFILE),
        "profile env matches the nodeSelector"
    );
    assert_eq!(env_field_path(dpa, "NODE_NAME").as_deref(), Some("spec.nodeName"));
    assert_eq!(env_value(dpa, "DPA_INIT").as_deref(), Some("/bin/init_dpa.sh"));
    let mounts: BTreeMap<String, String> = dpa
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| (m.name.clone(), m.mount_path.clone()))
        .collect();
    assert_eq!(mounts.get("cdx-ctrl").map(String::as_str), Some("/dev/cdx_ctrl"));
    assert_eq!(mounts.get("node-config-wrapper").map(String::as_str), Some("/node-config"));
    assert_eq!(mounts.get("dpa-configs").map(String::as_str), Some("/etc/monok8s/dpa-configs"));
    assert_eq!(mounts.get("dpa-configs"), env_value(dpa, "DPA_CONFIG_ROOT").as_ref());
    let volumes = pod.volumes.clone().expect("volumes");
    let volume = |name: &str| {
        volumes.iter().find(|v| v.name == name).unwrap_or_else(|| panic!("volume {name}")).clone()
    };
    let device = volume("cdx-ctrl").host_path.expect("hostPath");
    assert_eq!(
        (device.path.as_str(), device.type_.as_deref()),
        ("/dev/cdx_ctrl", Some("CharDevice"))
    );
    let wrapper = volume("node-config-wrapper").config_map.expect("configMap");
    assert_eq!(wrapper.name, "cmm-node-config-wrapper");
    assert_eq!(wrapper.default_mode, Some(0o755));
    // The profile's four keys exist in cmm-dpa-configs and land in _profiles/<profile>/, a
    // directory no node name can take.
    let configs = volume("dpa-configs").config_map.expect("configMap");
    assert_eq!(configs.name, "cmm-dpa-configs");
    let mapped: BTreeSet<(String, String)> =
        configs.items.iter().flatten().map(|i| (i.key.clone(), i.path.clone())).collect();
    let expected: BTreeSet<(String, String)> = DPA_FILES
        .iter()
        .map(|file| (format!("_profiles.{PROFILE}.{file}"), format!("_profiles/{PROFILE}/{file}")))
        .collect();
    assert_eq!(mapped, expected);
    let xml = config_map("configmap-dpa-configs.yaml");
    for (key, _) in &expected {
        assert_eq!(xml.get(key).map(String::as_str), Some(""), "cmm-dpa-configs ships {key} empty");
    }
    let events = container(inits, "conntrack-events");
    assert!(
        events
            .command
            .iter()
            .flatten()
            .any(|arg| arg.contains("/proc/sys/net/netfilter/nf_conntrack_events"))
    );
}

#[test]
fn wrapper_configmap_holds_the_script_verbatim() {
    let map: ConfigMap = typed("configmap-node-config-wrapper.yaml");
    assert_eq!(map.metadata.name.as_deref(), Some("cmm-node-config-wrapper"));
    let data = config_map("configmap-node-config-wrapper.yaml");
    assert_eq!(data.keys().collect::<Vec<_>>(), ["select-dpa-config.sh"]);
    assert_eq!(
        data.get("select-dpa-config.sh"),
        Some(&read(&packaging().join("node/select-dpa-config.sh"))),
        "regenerate with packaging/node/render-configmap.sh > packaging/k8s/base/configmap-node-config-wrapper.yaml"
    );
}

fn load_config(path: &Path) -> config::Loaded {
    load_config_with_env(path, &BTreeMap::new())
}

fn load_config_with_env(path: &Path, vars: &BTreeMap<String, String>) -> config::Loaded {
    let env = |name: &str| vars.get(name).cloned();
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
    // The cmmd container's environment, as the kubelet expands it on a node at 10.0.0.5 (and at
    // fd00::5), on top of the cluster file.
    let cmmd = container(&pod_spec().containers, "cmmd").clone();
    let users = write_file(&dir, "cli-users", "");
    for (host_ip, listen) in [("10.0.0.5", "10.0.0.5:9103"), ("fd00::5", "[fd00::5]:9103")] {
        let vars: BTreeMap<String, String> = cmmd
            .env
            .iter()
            .flatten()
            .filter_map(|e| Some((e.name.clone(), e.value.clone()?.replace("$(HOST_IP)", host_ip))))
            .map(|(name, value)| match name.as_str() {
                // The mounted Secret, at a path of the test's own.
                "CMM_CLI_PASSWORD_FILE" => (name, users.display().to_string()),
                _ => (name, value),
            })
            .collect();
        let loaded = load_config_with_env(&path, &vars).config;
        assert_eq!(loaded.metrics.listen, Some(listen.parse().expect("address")));
        assert_eq!(
            loaded.cli.listen,
            Some(config::defaults::CLI_LISTEN),
            "the CLI stays on loopback"
        );
        assert_eq!(loaded.max_connections, config::defaults::MAX_CONNECTIONS);
    }
    let vendor = config::read_fastforward(&packaging().join("fastforward.vendor.orig"))
        .expect("vendor file");
    assert_eq!(vendor.rules.len(), 12);
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
            "--max-connections",
            "1000000",
        ])
        .output()
        .unwrap();
    assert!(custom.status.success(), "{}", text(&custom.stderr));
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
    for c in spec.init_containers.iter().flatten().chain(&spec.containers) {
        assert_eq!(c.image.as_deref(), Some("registry.local/cmmd:1.0"), "{}", c.name);
    }
    // The table and the memory for it move together (9 MiB + 200 B per connection: 200 MiB).
    let cmmd = container(&spec.containers, "cmmd");
    assert_eq!(env_value(cmmd, "CMM_MAX_CONNECTIONS").as_deref(), Some("1000000"));
    let resources = cmmd.resources.as_ref().expect("resources");
    assert_eq!(quantity(resources, false, "memory").as_deref(), Some("200Mi"));
    assert_eq!(quantity(resources, true, "memory").as_deref(), Some("400Mi"));
    assert!(!stream.contains(NAMESPACE) && !stream.contains(IMAGE) && !stream.contains(PROFILE));

    for bad in [&["--namespace", "Not_A_Label"][..], &["--max-connections", "0"][..]] {
        let out = Command::new(binary).arg("manifests").args(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert_eq!(text(&out.stderr).lines().count(), 1, "one error line");
    }
}

//! `cmmd manifests`: the Kubernetes manifests of `packaging/k8s/base`, as one YAML stream.
//!
//! The files are compiled in, so what the binary prints is exactly what the repository ships;
//! the namespace, the image and the hardware profile written literally in them are replaced,
//! and `--max-connections N` sets `CMM_MAX_CONNECTIONS` with the cmmd container's memory
//! request and limit sized for it by [`memory_mib`].

use crate::cmd::args::ManifestArgs;

/// The base, in the order `kustomization.yaml` lists it.
const BASE: &[(&str, &str)] = &[
    ("namespace.yaml", include_str!("../../../packaging/k8s/base/namespace.yaml")),
    ("serviceaccount.yaml", include_str!("../../../packaging/k8s/base/serviceaccount.yaml")),
    ("configmap-cmmd.yaml", include_str!("../../../packaging/k8s/base/configmap-cmmd.yaml")),
    (
        "configmap-node-config-wrapper.yaml",
        include_str!("../../../packaging/k8s/base/configmap-node-config-wrapper.yaml"),
    ),
    (
        "configmap-dpa-configs.yaml",
        include_str!("../../../packaging/k8s/base/configmap-dpa-configs.yaml"),
    ),
    ("secret-cli-users.yaml", include_str!("../../../packaging/k8s/base/secret-cli-users.yaml")),
    ("daemonset.yaml", include_str!("../../../packaging/k8s/base/daemonset.yaml")),
];

const NAMESPACE: &str = "mono-system";
const IMAGE: &str = "localhost/monok8s/cmm:dev";
const PROFILE: &str = "ls1046a-rdb";

/// Fixed part of cmmd's memory, bytes (above every measurement; packaging/README.md).
pub const MEMORY_BASE_BYTES: u64 = 9 << 20;
/// Memory per connection of `CMM_MAX_CONNECTIONS`, bytes (measured 186-199).
pub const MEMORY_PER_CONNECTION_BYTES: u64 = 200;

/// The cmmd container's memory request in MiB for `max_connections`: the measured footprint,
/// [`MEMORY_BASE_BYTES`] + [`MEMORY_PER_CONNECTION_BYTES`] per connection, rounded up. The
/// limit is twice it.
pub fn memory_mib(max_connections: u32) -> u64 {
    let bytes = MEMORY_BASE_BYTES + MEMORY_PER_CONNECTION_BYTES * u64::from(max_connections);
    bytes.div_ceil(1 << 20)
}

/// The lines of the DaemonSet that `--max-connections` rewrites, as shipped.
fn sized_lines(max_connections: u32) -> [String; 3] {
    let request = memory_mib(max_connections);
    [
        format!("              value: \"{max_connections}\"\n"),
        format!("              memory: {request}Mi\n"),
        format!("              memory: {}Mi\n", 2 * request),
    ]
}

/// The DaemonSet with the lines sized for `shipped` rewritten for `wanted`, each once, in one
/// pass (so a rewritten line is never taken for another shipped one).
fn resize(text: &str, shipped: u32, wanted: u32) -> String {
    let mut pending: Vec<(String, String)> =
        sized_lines(shipped).into_iter().zip(sized_lines(wanted)).collect();
    text.split_inclusive('\n')
        .map(|line| match pending.iter().position(|(old, _)| old == line) {
            Some(i) => pending.swap_remove(i).1,
            None => line.to_owned(),
        })
        .collect()
}

fn valid_label(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 63
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
        && value.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
}

/// Render the stream, or a one-line error for a bad value.
pub fn render(args: &ManifestArgs) -> Result<String, String> {
    let namespace = args.namespace.as_deref().unwrap_or(NAMESPACE);
    let image = args.image.as_deref().unwrap_or(IMAGE);
    let profile = args.profile.as_deref().unwrap_or(PROFILE);
    if !valid_label(namespace) || namespace.contains(['.', '_']) {
        return Err(format!("--namespace {namespace:?}: expected a DNS label (a-z, 0-9, '-')"));
    }
    if !valid_label(profile) {
        return Err(format!(
            "--profile {profile:?}: expected a label value (a-z, 0-9, '-', '.', '_')"
        ));
    }
    if image.is_empty() || image.contains(char::is_whitespace) {
        return Err(format!("--image {image:?}: expected an image reference"));
    }
    let default_connections = config::defaults::MAX_CONNECTIONS.get();
    let max_connections = match args.max_connections.as_deref() {
        None => default_connections,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=config::defaults::MAX_CONNECTIONS_LIMIT).contains(n))
            .ok_or_else(|| {
                format!(
                    "--max-connections {text:?}: expected a positive integer in 1..={}",
                    config::defaults::MAX_CONNECTIONS_LIMIT
                )
            })?,
    };
    let mut out = String::new();
    for (name, text) in BASE {
        out.push_str(&format!("---\n# Source: packaging/k8s/base/{name}\n"));
        let mut text =
            text.replace(IMAGE, image).replace(PROFILE, profile).replace(NAMESPACE, namespace);
        if *name == "daemonset.yaml" && max_connections != default_connections {
            text = resize(&text, default_connections, max_connections);
        }
        out.push_str(&text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daemonset() -> &'static str {
        BASE.iter().find(|(name, _)| *name == "daemonset.yaml").map(|(_, text)| *text).unwrap()
    }

    #[test]
    fn substitutions_apply_everywhere() {
        let args = ManifestArgs {
            namespace: Some("edge".into()),
            image: Some("registry.local/cmmd:1.2".into()),
            profile: Some("ls1043a-rdb".into()),
            max_connections: None,
        };
        let text = render(&args).unwrap();
        assert!(!text.contains(NAMESPACE) && !text.contains(IMAGE) && !text.contains(PROFILE));
        assert!(text.contains("namespace: edge"));
        assert_eq!(text.matches("image: registry.local/cmmd:1.2\n").count(), 3, "every container");
        assert!(text.contains("monok8s.io/hardware-profile: ls1043a-rdb"));
        assert_eq!(text.matches("\n---\n").count() + 1, BASE.len());
    }

    #[test]
    fn the_shipped_memory_follows_the_rule_and_scales_with_max_connections() {
        assert_eq!(memory_mib(131_072), 34);
        assert_eq!(memory_mib(1), 10);
        assert_eq!(memory_mib(1_000_000), 200);
        for line in sized_lines(131_072) {
            assert_eq!(daemonset().matches(&line).count(), 1, "the base ships {line:?} once");
        }
        let args =
            ManifestArgs { max_connections: Some("1000000".into()), ..ManifestArgs::default() };
        let text = render(&args).unwrap();
        for line in sized_lines(1_000_000) {
            assert_eq!(text.matches(&line).count(), 1, "{line:?}");
        }
        assert!(!text.contains("\"131072\"") && !text.contains("34Mi") && !text.contains("68Mi"));
        // A request equal to the shipped limit is not rewritten twice.
        let n =
            u32::try_from(((68 << 20) - MEMORY_BASE_BYTES) / MEMORY_PER_CONNECTION_BYTES).unwrap();
        assert_eq!(memory_mib(n), 68);
        let resized = resize(daemonset(), 131_072, n);
        assert!(resized.contains("memory: 68Mi\n") && resized.contains("memory: 136Mi\n"));
    }

    #[test]
    fn bad_values_are_one_line_errors() {
        for args in [
            ManifestArgs { namespace: Some("Bad_NS".into()), ..Default::default() },
            ManifestArgs { profile: Some("".into()), ..Default::default() },
            ManifestArgs { image: Some("a b".into()), ..Default::default() },
            ManifestArgs { max_connections: Some("0".into()), ..Default::default() },
            ManifestArgs { max_connections: Some("16777217".into()), ..Default::default() },
        ] {
            let e = render(&args).unwrap_err();
            assert!(!e.contains('\n'));
        }
    }
}

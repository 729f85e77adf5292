//! `cmmd manifests`: the Kubernetes manifests of `packaging/k8s/base`, as one YAML stream.
//!
//! The files are compiled in, so what the binary prints is exactly what the repository ships;
//! the namespace, the image and the hardware profile written literally in them are replaced.

use crate::cmd::args::ManifestArgs;

/// The base, in the order `kustomization.yaml` lists it.
const BASE: &[(&str, &str)] = &[
    ("namespace.yaml", include_str!("../../../packaging/k8s/base/namespace.yaml")),
    ("serviceaccount.yaml", include_str!("../../../packaging/k8s/base/serviceaccount.yaml")),
    ("configmap-cmmd.yaml", include_str!("../../../packaging/k8s/base/configmap-cmmd.yaml")),
    (
        "configmap-dpa-wrapper.yaml",
        include_str!("../../../packaging/k8s/base/configmap-dpa-wrapper.yaml"),
    ),
    ("configmap-dpa-xml.yaml", include_str!("../../../packaging/k8s/base/configmap-dpa-xml.yaml")),
    ("secret-cli-users.yaml", include_str!("../../../packaging/k8s/base/secret-cli-users.yaml")),
    ("daemonset.yaml", include_str!("../../../packaging/k8s/base/daemonset.yaml")),
];

const NAMESPACE: &str = "mono-system";
const IMAGE: &str = "ghcr.io/monok8s/cmmd:latest";
const PROFILE: &str = "ls1046a-rdb";

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
    let mut out = String::new();
    for (name, text) in BASE {
        out.push_str(&format!("---\n# Source: packaging/k8s/base/{name}\n"));
        let text =
            text.replace(IMAGE, image).replace(PROFILE, profile).replace(NAMESPACE, namespace);
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

    #[test]
    fn substitutions_apply_everywhere() {
        let args = ManifestArgs {
            namespace: Some("edge".into()),
            image: Some("registry.local/cmmd:1.2".into()),
            profile: Some("ls1043a-rdb".into()),
        };
        let text = render(&args).unwrap();
        assert!(!text.contains(NAMESPACE) && !text.contains(IMAGE) && !text.contains(PROFILE));
        assert!(text.contains("namespace: edge"));
        assert!(text.contains("image: registry.local/cmmd:1.2"));
        assert!(text.contains("monok8s.io/hardware-profile: ls1043a-rdb"));
        assert_eq!(text.matches("\n---\n").count() + 1, BASE.len());
    }

    #[test]
    fn bad_values_are_one_line_errors() {
        for args in [
            ManifestArgs { namespace: Some("Bad_NS".into()), ..Default::default() },
            ManifestArgs { profile: Some("".into()), ..Default::default() },
            ManifestArgs { image: Some("a b".into()), ..Default::default() },
        ] {
            let e = render(&args).unwrap_err();
            assert!(!e.contains('\n'));
        }
    }
}

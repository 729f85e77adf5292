//! The node side of the image: the DPA wrapper (`select-dpa-config.sh`, ConfigMap
//! `cmm-node-config-wrapper`) and the DPA init (`/bin/init_dpa.sh`), run with the system's
//! `sh` against temporary trees laid out as the ConfigMap `cmm-dpa-configs` is mounted; and the
//! Containerfile's inputs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::packaging::{DPA_FILES, packaging, read, text, write_file};

/// A DPA configuration tree (the mounted `cmm-dpa-configs`) with a fake init that prints what
/// it was given.
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
        self.dir.path().join("dpa-configs")
    }

    /// The four files in `relative` (a node name, or `_profiles/<profile>`).
    fn add_set(&self, relative: &str) -> PathBuf {
        for file in DPA_FILES {
            write_file(
                &self.dir,
                &format!("dpa-configs/{relative}/{file}"),
                &format!("<{file}/>\n"),
            );
        }
        self.root().join(relative)
    }

    fn run(&self, env: &[(&str, &str)]) -> Output {
        let mut command = Command::new("sh");
        command
            .arg(packaging().join("node/select-dpa-config.sh"))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("DPA_CONFIG_ROOT", self.root())
            .env("DPA_INIT", self.dir.path().join("fake-init.sh"));
        for (key, value) in env {
            command.env(key, value);
        }
        command.output().expect("sh runs")
    }

    /// Runs the wrapper and expects it to succeed with `dir` chosen for `reason`: the directory
    /// line, the four paths, and the init started with the four variables.
    fn expect_chosen(&self, env: &[(&str, &str)], dir: &Path, reason: &str) {
        let out = self.run(env);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let d = dir.display();
        assert_eq!(
            text(&out.stdout),
            format!(
                "select-dpa-config: using {d} ({reason})\n\
                 CDX_CFG_FILE={d}/cdx_cfg.xml\nCDX_PCD_FILE={d}/cdx_pcd.xml\nCDX_PDL_FILE={d}/hxs_pdl_v3.xml\nCDX_SP_FILE={d}/cdx_sp.xml\n\
                 init: CDX_CFG_FILE={d}/cdx_cfg.xml\ninit: CDX_PCD_FILE={d}/cdx_pcd.xml\n\
                 init: CDX_PDL_FILE={d}/hxs_pdl_v3.xml\ninit: CDX_SP_FILE={d}/cdx_sp.xml\n"
            )
        );
        assert_eq!(text(&out.stderr), "");
    }

    /// Runs the wrapper and expects exit status 1, nothing on stdout, and `stderr`.
    fn expect_failure(&self, env: &[(&str, &str)], stderr: &str) {
        let out = self.run(env);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
        assert_eq!(text(&out.stdout), "", "the init never runs");
        assert_eq!(text(&out.stderr), stderr);
    }
}

#[test]
fn wrapper_takes_the_node_directory_of_the_monok8s_layout() {
    let tree = DpaTree::new();
    let dir = tree.add_set("board-7.lab");
    tree.expect_chosen(&[("NODE_NAME", "board-7.lab")], &dir, "node board-7.lab");
    // With a profile too, the node's own directory wins (one board overriding its profile).
    tree.add_set("_profiles/ls1046a-rdb");
    tree.expect_chosen(
        &[("NODE_NAME", "board-7.lab"), ("CMM_HW_PROFILE", "ls1046a-rdb")],
        &dir,
        "node board-7.lab",
    );
}

#[test]
fn wrapper_takes_the_profile_directory_when_the_node_has_none() {
    let tree = DpaTree::new();
    let dir = tree.add_set("_profiles/ls1046a-rdb");
    tree.add_set("other-node");
    tree.expect_chosen(
        &[("NODE_NAME", "node-7"), ("CMM_HW_PROFILE", "ls1046a-rdb")],
        &dir,
        "hardware profile ls1046a-rdb",
    );
    tree.expect_chosen(&[("CMM_HW_PROFILE", "ls1046a-rdb")], &dir, "hardware profile ls1046a-rdb");
}

#[test]
fn wrapper_names_the_missing_directories() {
    let tree = DpaTree::new();
    tree.add_set("_profiles/ls1046a-rdb");
    let r = tree.root();
    let r = r.display();
    tree.expect_failure(
        &[("NODE_NAME", "node-7"), ("CMM_HW_PROFILE", "ls1043a-rdb")],
        &format!(
            "select-dpa-config: no DPA configuration for node \"node-7\" or hardware profile \"ls1043a-rdb\": \
             neither {r}/node-7 nor {r}/_profiles/ls1043a-rdb exists\n"
        ),
    );
    tree.expect_failure(
        &[("NODE_NAME", "node-7")],
        &format!(
            "select-dpa-config: no DPA configuration for node \"node-7\": directory {r}/node-7 does not exist \
             (and CMM_HW_PROFILE is not set)\n"
        ),
    );
    tree.expect_failure(
        &[("CMM_HW_PROFILE", "ls1043a-rdb")],
        &format!(
            "select-dpa-config: no DPA configuration for hardware profile \"ls1043a-rdb\": directory \
             {r}/_profiles/ls1043a-rdb does not exist (and NODE_NAME is not set)\n"
        ),
    );
    tree.expect_failure(
        &[],
        "select-dpa-config: neither NODE_NAME nor CMM_HW_PROFILE is set: cannot choose a DPA configuration\n",
    );
}

#[test]
fn wrapper_refuses_names_that_could_leave_the_root_or_reach_the_profiles() {
    let tree = DpaTree::new();
    tree.add_set("_profiles/ls1046a-rdb");
    for node in ["_profiles", "..", "../etc", "Node-7", "-x"] {
        tree.expect_failure(
            &[("NODE_NAME", node), ("CMM_HW_PROFILE", "ls1046a-rdb")],
            &format!("select-dpa-config: NODE_NAME \"{node}\" is not a valid node name\n"),
        );
    }
    for profile in ["..", "../../etc", "a/b", "_x"] {
        tree.expect_failure(
            &[("CMM_HW_PROFILE", profile)],
            &format!(
                "select-dpa-config: CMM_HW_PROFILE \"{profile}\" is not a valid label value\n"
            ),
        );
    }
}

#[test]
fn wrapper_names_missing_and_empty_files_in_either_layout() {
    for set in ["node-7", "_profiles/ls1046a-rdb"] {
        let tree = DpaTree::new();
        let dir = tree.add_set(set);
        std::fs::remove_file(dir.join("cdx_pcd.xml")).expect("remove");
        std::fs::write(dir.join("cdx_sp.xml"), "").expect("truncate");
        let d = dir.display();
        tree.expect_failure(
            &[("NODE_NAME", "node-7"), ("CMM_HW_PROFILE", "ls1046a-rdb")],
            &format!(
                "select-dpa-config: {d}/cdx_pcd.xml is missing\nselect-dpa-config: {d}/cdx_sp.xml is empty\n\
                 select-dpa-config: 2 of the four DPA XML files in {d} are missing or empty; put the board's XML set \
                 there (ConfigMap cmm-dpa-configs)\n"
            ),
        );
    }
}

#[test]
fn wrapper_names_a_missing_init() {
    let tree = DpaTree::new();
    tree.add_set("node-7");
    let missing = tree.dir.path().join("no-such-init.sh");
    let out = tree.run(&[("NODE_NAME", "node-7"), ("DPA_INIT", missing.to_str().expect("utf-8"))]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "select-dpa-config: DPA init {} does not exist (set DPA_INIT)\n",
            missing.display()
        )
    );
}

#[test]
fn wrapper_defaults_are_the_documents_paths() {
    let script = read(&packaging().join("node/select-dpa-config.sh"));
    assert!(script.contains("root=\"${DPA_CONFIG_ROOT:-/etc/monok8s/dpa-configs}\"\n"));
    assert!(script.contains("init=\"${DPA_INIT:-/bin/init_dpa.sh}\"\n"));
    assert!(script.contains("\n    exec \"$init\"\n"));
}

fn run_init(set: &Path, app: &Path, fake_root: &Path, done: &Path) -> Output {
    Command::new("sh")
        .arg(packaging().join("node/init_dpa.sh"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("CDX_CFG_FILE", set.join("cdx_cfg.xml"))
        .env("CDX_PCD_FILE", set.join("cdx_pcd.xml"))
        .env("CDX_PDL_FILE", set.join("hxs_pdl_v3.xml"))
        .env("CDX_SP_FILE", set.join("cdx_sp.xml"))
        .env("DPA_APP", app)
        .env("DPA_ROOT", fake_root)
        .env("DPA_DONE_FILE", done)
        .output()
        .expect("sh runs")
}

#[test]
fn init_dpa_installs_the_files_at_the_fixed_paths_and_runs_dpa_app_once_per_boot() {
    let tree = DpaTree::new();
    let set = tree.add_set("_profiles/p");
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
    let out = run_init(&set, &app, &fake_root, &done);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(read(&log), "<cdx_cfg.xml/>\n<cdx_pcd.xml/>\n<cdx_sp.xml/>\n<hxs_pdl_v3.xml/>\n");
    assert!(text(&out.stdout).contains(&format!("init_dpa: created {}\n", done.display())));
    assert!(done.exists());
    // A second start in the same boot skips dpa_app (the marker says it ran).
    let again = run_init(&set, &app, &fake_root, &done);
    assert!(again.status.success());
    assert_eq!(
        text(&again.stdout),
        format!(
            "init_dpa: {} exists: the FMan was programmed since boot, dpa_app not run again\n",
            done.display()
        )
    );
    assert_eq!(read(&log).lines().count(), 4, "dpa_app ran once");
}

#[test]
fn init_dpa_names_a_missing_dpa_app_and_missing_variables() {
    let tree = DpaTree::new();
    let set = tree.add_set("node-7");
    let fake_root = tree.dir.path().join("root");
    let app = tree.dir.path().join("no-dpa_app");
    let done = tree.dir.path().join("done");
    let out = run_init(&set, &app, &fake_root, &done);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!("init_dpa: {} is missing or not executable (set DPA_APP)\n", app.display())
    );
    assert!(!done.exists(), "no marker without a successful run");
    let out = Command::new("sh")
        .arg(packaging().join("node/init_dpa.sh"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("sh runs");
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("CDX_CFG_FILE: is not set: run select-dpa-config.sh"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn containerfile_builds_the_documents_image_from_files_that_exist() {
    let text = read(&packaging().join("Containerfile"));
    let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "multi-stage: build and runtime");
    assert!(text.contains("-t localhost/monok8s/cmm:dev ."), "the tag the DaemonSet names");
    assert!(text.contains("cargo build --release --locked -p cmmd"));
    assert!(text.contains("CARGO_PROFILE_RELEASE_STRIP=symbols"));
    assert!(text.contains("ENTRYPOINT [\"/usr/bin/cmmd\"]"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut copied = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("COPY ") && !l.contains("--from=")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (destination, sources) = words[1..].split_last().expect("COPY SRC... DEST");
        for source in sources.iter().filter(|s| **s != ".") {
            assert!(root.join(source).exists(), "Containerfile copies missing {source}");
            copied.push((*source, *destination));
        }
    }
    for required in [
        ("packaging/node/init_dpa.sh", "/bin/init_dpa.sh"),
        ("packaging/fastforward.vendor.orig", "/etc/config/fastforward.vendor.orig"),
        ("packaging/cmmd.toml", "/usr/share/cmm/cmmd.toml.example"),
        ("packaging/board-files/", "/"),
    ] {
        assert!(copied.contains(&required), "image lacks {required:?}: {copied:?}");
    }
    let ignored = read(&packaging().join("Containerfile.dockerignore"));
    assert!(ignored.lines().any(|l| l == "packaging/board-files/README.md"));
}

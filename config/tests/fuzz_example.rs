//! Bounded fuzzing seeded with the shipped example configuration (`packaging/cmmd.toml`, every
//! key at its default): lines deleted, duplicated, cut short or given other values. Whatever
//! the text, loading it either succeeds or fails with one line that names the file; and when it
//! succeeds, what `cmmd check-config` prints loads back to the same configuration.

use std::path::Path;

use config::{Config, LoadOptions, Loaded, Overrides};
use proptest::prelude::*;

const EXAMPLE: &str = include_str!("../../packaging/cmmd.toml");

/// Values that are valid for some keys and wrong for others.
const VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "4294967296",
    "\"\"",
    "\"sim\"",
    "\"cdx\"",
    "\"tcp\"",
    "[\"tcp\"]",
    "[\"udp\", \"icp\"]",
    "[]",
    "true",
    "\"500ms\"",
    "\"0s\"",
    "\"25h\"",
    "\"16KiB\"",
    "\"1GiB\"",
    "\"3MB\"",
    "\"127.0.0.1:0\"",
    "\"off\"",
    "\"[::1]:1\"",
    "\"10.0.0.0/8\"",
    "0xffffffff",
    "[{ proto = \"tcp\", port = 21 }]",
    "[{ addr = \"10.0.0.0/33\" }]",
    "{ a = 1 }",
    "\"info,cmmd=debug\"",
    "\"json\"",
    "\"confirmed\"",
    "\"expire\"",
];

#[derive(Clone, Debug)]
enum Edit {
    Delete(usize),
    Duplicate(usize),
    /// Give line `n`'s key another value (lines without `=` are left alone).
    Revalue(usize, &'static str),
    /// Cut line `n` after `k` bytes.
    Cut(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Duplicate),
        (any::<usize>(), prop::sample::select(VALUES)).prop_map(|(n, v)| Edit::Revalue(n, v)),
        (any::<usize>(), 0usize..40).prop_map(|(n, k)| Edit::Cut(n, k)),
    ]
}

/// The example with the edits applied (line numbers taken modulo the current length).
fn mutate(edits: &[Edit]) -> String {
    let mut lines: Vec<String> = EXAMPLE.lines().map(str::to_owned).collect();
    for edit in edits {
        let len = lines.len().max(1);
        match *edit {
            Edit::Delete(n) if !lines.is_empty() => {
                lines.remove(n % len);
            }
            Edit::Duplicate(n) if !lines.is_empty() => {
                let line = lines[n % len].clone();
                lines.insert(n % len, line);
            }
            Edit::Revalue(n, value) if !lines.is_empty() => {
                let line = &mut lines[n % len];
                if let Some((key, _)) = line.split_once('=') {
                    *line = format!("{key}= {value}");
                }
            }
            Edit::Cut(n, k) if !lines.is_empty() => {
                let line = &mut lines[n % len];
                let cut = line.char_indices().map(|(i, _)| i).nth(k).unwrap_or(line.len());
                line.truncate(cut);
            }
            _ => {}
        }
    }
    lines.join("\n")
}

/// Cases per property: 512 in CI, `CMM_FUZZ_CASES` for longer runs.
fn cases() -> u32 {
    std::env::var("CMM_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512)
}

fn load(path: &Path) -> Result<Loaded, String> {
    let lookup = |_: &str| None;
    let overrides = Overrides { config: Some(path.display().to_string()), ..Overrides::default() };
    Config::load(&LoadOptions::new(&lookup, overrides)).map_err(|e| e.to_string())
}

fn load_text(dir: &Path, name: &str, text: &str) -> Result<Loaded, String> {
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    load(&path)
}

#[test]
fn the_example_loads_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = load_text(dir.path(), "cmmd.toml", EXAMPLE).expect("the shipped example loads");
    let again = load_text(dir.path(), "effective.toml", &loaded.render_effective()).unwrap();
    assert_eq!(again.config, loaded.config);
    assert_eq!(
        loaded.config,
        load_text(dir.path(), "empty.toml", "").unwrap().config,
        "every key at its default"
    );
}

/// Fuzz finding: a key naming a file that cannot be read (`password_file = "sim"`) failed
/// with "sim: cannot read: …", naming neither the key nor where it was set.
#[test]
fn an_unreadable_file_named_by_a_key_names_the_key_and_where_it_was_set() {
    let dir = tempfile::tempdir().unwrap();
    for (table, key) in [("offload", "fastforward_file"), ("cli", "password_file")] {
        let text = format!("[{table}]\n{key} = \"missing\"\n");
        let error = load_text(dir.path(), "cmmd.toml", &text).err().unwrap();
        let file = dir.path().join("cmmd.toml");
        assert_eq!(
            error,
            format!(
                "{}:2: key \"{table}.{key}\" value \"missing\": cannot read the file: No such file or directory (os error 2)",
                file.display()
            )
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn edited_examples_load_or_fail_with_one_line_naming_the_file(edits in prop::collection::vec(edit(), 1..8)) {
        let dir = tempfile::tempdir().unwrap();
        match load_text(dir.path(), "cmmd.toml", &mutate(&edits)) {
            Ok(_) => {}
            Err(message) => {
                prop_assert!(!message.contains('\n'), "one line: {message:?}");
                prop_assert!(message.contains("cmmd.toml"), "names the file: {message:?}");
            }
        }
    }

    #[test]
    fn what_check_config_prints_loads_back_to_the_same_configuration(edits in prop::collection::vec(edit(), 1..8)) {
        let dir = tempfile::tempdir().unwrap();
        if let Ok(loaded) = load_text(dir.path(), "cmmd.toml", &mutate(&edits)) {
            let rendered = loaded.render_effective();
            let again = load_text(dir.path(), "effective.toml", &rendered);
            prop_assert!(again.is_ok(), "{:?}\n{rendered}", again.err());
            prop_assert_eq!(again.map(|l| l.config).ok(), Some(loaded.config));
        }
    }
}

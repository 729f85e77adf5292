//! The configuration file: any text loaded as `cmmd.toml` either loads or fails with one line;
//! a loaded one renders (`cmmd check-config`) to a file that loads back to the same values.
//! Seeds: `packaging/cmmd.toml`.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use config::{Config, LoadOptions, Loaded, Overrides};
use libfuzzer_sys::fuzz_target;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("cmmd-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        dir
    })
}

fn load(name: &str, text: &[u8]) -> Result<Loaded, String> {
    let path = dir().join(name);
    std::fs::write(&path, text).expect("scratch file written");
    let lookup = |_: &str| None;
    let overrides = Overrides { config: Some(path.display().to_string()), ..Overrides::default() };
    Config::load(&LoadOptions::new(&lookup, overrides)).map_err(|e| e.to_string())
}

fuzz_target!(|data: &[u8]| {
    match load("cmmd.toml", data) {
        Err(message) => assert!(!message.contains('\n'), "one line: {message:?}"),
        Ok(loaded) => {
            let again = load("effective.toml", loaded.render_effective().as_bytes());
            assert_eq!(
                again.map(|l| l.config).ok(),
                Some(loaded.config),
                "check-config round trip"
            );
        }
    }
});

//! Commands run inside a QEMU virtual machine that boots Debian's kernel, for the kernel features
//! the host's kernel lacks (802.1Q VLANs, PPP and PPPoE on the CI machines).
//!
//! # What the guest is
//!
//! - **Kernel.** Debian's `linux-image-amd64` (bookworm: 6.1), fetched with `apt-get download`
//!   and unpacked, not installed, by `tests/vm/prepare-kernel.sh` into a cache directory
//!   (`target/vm`, or `CMMD_VM_CACHE`; not under `/tmp`, `/run` or `/var/tmp`, which the guest
//!   hides, unless it is in a workspace there, which is then shared on its own). The first use in a process runs the script; it downloads only when the cache holds
//!   no kernel, so later runs start at once. Every module of the kernel loads, by `modprobe` or by
//!   the kernel's own autoloading: `8021q`, `ppp_generic`, `pppoe`, `pppox`, `ppp_async`,
//!   `nf_conntrack`, `nf_tables`, `nft_masq`, `veth`, `bridge`…
//! - **Root filesystem.** The host's `/`, shared read-only over virtio 9p: the guest runs the
//!   host's binaries at their host paths (the test binary, `target/debug/cmmd-test`, `ip`, `nft`,
//!   `conntrack`, `pppd`, `pppoe-server`), except what the host keeps under `/tmp`, `/run` or
//!   `/var/tmp`. `/etc`, `/var` and `/usr/lib` are writable overlays
//!   whose writes stay in the guest; `/run`, `/tmp` and `/var/tmp` are empty tmpfs.
//! - **Scratch.** A host temporary directory, shared read-write and mounted at the same path in
//!   the guest; the command finds it in `CMMD_VM_SCRATCH`. Its output (standard output and error
//!   together) and exit status come back through it, and so does any file the command writes
//!   there ([`VmRun::scratch_file`]).
//! - **Machine.** TCG emulation (`-cpu max`), or KVM when `/dev/kvm` actually runs a guest (a
//!   probe boots the kernel for up to 5 s, once per host boot, its answer kept in the cache as
//!   `accel`; nested KVM on the CI machines opens but never runs, so they use TCG);
//!   `CMMD_VM_ACCEL=tcg|kvm` skips the probe. No network
//!   device: tests build their own network from namespaces and veth pairs inside the guest.
//! - **Time.** The guest kills the command after [`VmCommand::timeout`]; the host kills QEMU
//!   [`BOOT_ALLOWANCE`] later if the guest has not powered off by then. A test process runs one
//!   VM at a time (others wait their turn). Booting to the command takes about 3 s of guest
//!   time, 5 s of wall time, under TCG on the CI machines.
//!
//! Boot sequence: QEMU loads the kernel and the cached initramfs (a static busybox, the 9p and
//! overlay modules, a first-stage `/init`), which mounts the host's root and hands PID 1 to
//! `tests/vm/guest-init.sh` on it; that script prepares the mounts above, runs
//! `$CMMD_VM_SCRATCH/command.sh` (written by [`VmCommand::run`]) and powers off.
//!
//! # Writing a VM test
//!
//! The same `#[test]` function holds the host part and the guest part. On the host it calls
//! [`run_test_in_vm`] with its own name; that boots the VM and runs the integration-test binary
//! inside it, filtered to that one test, with [`IN_VM_ENV`] set. Inside the VM, [`in_vm`] is true
//! and the function runs its body, asserting as any kernel test does; a failed assertion fails
//! the host test with the guest's output. The helpers of this crate work unchanged inside the
//! guest ([`Netns`](crate::Netns), [`traffic`](crate::traffic),
//! [`conntrack_cli`](crate::conntrack_cli), [`daemon`](crate::daemon)):
//!
//! ```no_run
//! use cmmd_tests::{require_root, vm};
//!
//! #[test]
//! fn offloads_through_a_vlan() {
//!     if !vm::in_vm() {
//!         require_root();
//!         vm::run_test_in_vm("vlan::offloads_through_a_vlan"); // the path libtest prints
//!         return;
//!     }
//!     // In the guest, as root, with the 8021q module available:
//!     // let wan = cmmd_tests::wan::PppoeOverVlan::new().unwrap(); // client, router, server
//!     // let daemon = cmmd_tests::daemon::Daemon::start(
//!     //     std::path::Path::new(env!("CARGO_BIN_EXE_cmmd-test")), // a host binary
//!     //     &wan.router,
//!     //     &["--backend", "sim", "--ports", "r0,r1"],
//!     // ).unwrap();
//!     // … real TCP from wan.client, then assert on daemon.ctl("show sim") and
//!     // conntrack_cli::list(&wan.router), exactly as the namespace tests on the host do.
//! }
//! ```
//!
//! cmmd with the software cdx (`--backend sim`) is an ordinary host binary: inside the guest it
//! is started in the router namespace like on the host, and the test reads results back through
//! its own interfaces (`cmmd ctl show sim`, `show connections`, `show counters`), the kernel's
//! (`conntrack -L`, `/proc/net/pppoe`, `/proc/net/dev` in the namespace) and, for figures the
//! host should see, files in [`scratch`]. Each VM test costs a boot; put what shares a
//! topology into one test rather than one VM per assertion.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// Set (to `1`) in the environment of a command run inside the VM.
pub const IN_VM_ENV: &str = "CMMD_IN_VM";
/// The scratch directory's path, in the environment of a command run inside the VM.
pub const SCRATCH_ENV: &str = "CMMD_VM_SCRATCH";
/// Overrides the kernel cache directory (default: the workspace's `target/vm`).
pub const CACHE_ENV: &str = "CMMD_VM_CACHE";
/// `tcg` or `kvm`: skips the KVM probe.
pub const ACCEL_ENV: &str = "CMMD_VM_ACCEL";
/// How long the host waits, beyond the command's timeout, for the guest to boot and power off.
pub const BOOT_ALLOWANCE: Duration = Duration::from_secs(120);

/// Holds the test process's one VM turn: while the guard lives, no VM runs in this process.
/// A VM takes it for its whole run; a test that measures the machine's throughput (the soak)
/// takes it so that an emulated guest does not take the cores it measures.
pub fn no_vm_meanwhile() -> MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether this process runs inside the test VM.
pub fn in_vm() -> bool {
    std::env::var_os(IN_VM_ENV).is_some()
}

/// Inside the VM: the scratch directory shared with the host.
pub fn scratch() -> Option<PathBuf> {
    std::env::var_os(SCRATCH_ENV).map(PathBuf::from)
}

/// The unpacked kernel, as `tests/vm/prepare-kernel.sh` left it in the cache.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// `uname -r` in the guest.
    pub release: String,
    /// The image QEMU boots: the ELF vmlinux (PVH entry), or the vmlinuz if it could not be
    /// unpacked.
    pub image: PathBuf,
    /// Its modules directory (`…/lib/modules/RELEASE`, with `depmod` run).
    pub modules: PathBuf,
    /// The first-stage initramfs.
    pub initramfs: PathBuf,
}

fn tests_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The cache directory: `CMMD_VM_CACHE`, or the workspace's `target/vm`.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os(CACHE_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => tests_dir().parent().unwrap_or(tests_dir()).join("target").join("vm"),
    }
}

/// The kernel, prepared once per process (downloaded only if the cache has none).
pub fn kernel() -> io::Result<&'static Kernel> {
    static KERNEL: OnceLock<Result<Kernel, String>> = OnceLock::new();
    KERNEL
        .get_or_init(|| prepare_kernel(&cache_dir()))
        .as_ref()
        .map_err(|e| io::Error::other(e.clone()))
}

/// The host directories the guest hides under its own tmpfs.
const HIDDEN: [&str; 3] = ["/tmp", "/run", "/var/tmp"];

/// The workspace, when the guest would hide it (a clone under `/tmp`): it is then shared with
/// the guest on its own and mounted at the same path, so the guest finds the test binaries,
/// the scripts and a cache under `target/vm` where the host has them.
fn hidden_workspace() -> Option<&'static Path> {
    let workspace = tests_dir().parent()?;
    HIDDEN.iter().any(|hidden| workspace.starts_with(hidden)).then_some(workspace)
}

fn prepare_kernel(cache: &Path) -> Result<Kernel, String> {
    let shared = hidden_workspace().is_some_and(|workspace| cache.starts_with(workspace));
    for hidden in HIDDEN {
        if cache.starts_with(hidden) && !shared {
            return Err(format!(
                "{CACHE_ENV}={}: the guest mounts its own {hidden}, so the cache must live elsewhere",
                cache.display()
            ));
        }
    }
    let script = tests_dir().join("vm/prepare-kernel.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg(cache)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", script.display()))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!(
            "{} {} failed ({}): {}",
            script.display(),
            cache.display(),
            output.status,
            stderr.trim()
        ));
    }
    eprint!("{stderr}");
    let env_file = cache.join("kernel.env");
    let text = fs::read_to_string(&env_file).map_err(|e| format!("{}: {e}", env_file.display()))?;
    let value = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_owned)
            .ok_or_else(|| format!("{}: no {key}", env_file.display()))
    };
    Ok(Kernel {
        release: value("CMMD_VM_KERNEL_RELEASE")?,
        image: value("CMMD_VM_KERNEL")?.into(),
        modules: value("CMMD_VM_MODULES")?.into(),
        initramfs: value("CMMD_VM_INITRAMFS")?.into(),
    })
}

/// The QEMU accelerator: `kvm` if `/dev/kvm` runs a guest, else `tcg`. Decided once per host
/// boot: the probe's answer is kept in the cache with the kernel's boot id.
pub fn accelerator(kernel: &Kernel) -> &'static str {
    static ACCEL: OnceLock<&'static str> = OnceLock::new();
    ACCEL.get_or_init(|| match std::env::var(ACCEL_ENV).as_deref() {
        Ok("kvm") => "kvm",
        Ok("tcg") => "tcg",
        _ => {
            let boot_id = fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
            let record = cache_dir().join("accel");
            let known = fs::read_to_string(&record).ok().and_then(|text| {
                let (id, accel) = text.trim().split_once(' ')?;
                (id == boot_id.trim()).then(|| if accel == "kvm" { "kvm" } else { "tcg" })
            });
            known.unwrap_or_else(|| {
                let accel = if kvm_runs_a_guest(kernel) { "kvm" } else { "tcg" };
                let _ = fs::write(&record, format!("{} {accel}\n", boot_id.trim()));
                accel
            })
        }
    })
}

/// Boots the kernel under KVM for at most 5 s and looks for its first console line. (Opening
/// `/dev/kvm` is not enough: nested KVM opens and then runs nothing.)
fn kvm_runs_a_guest(kernel: &Kernel) -> bool {
    if fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_err() {
        return false;
    }
    let Ok(dir) = tempfile::tempdir() else { return false };
    let console = dir.path().join("console.log");
    let spawned = Command::new("qemu-system-x86_64")
        .args(["-accel", "kvm", "-cpu", "host", "-m", "256", "-display", "none", "-nodefaults"])
        .args(["-no-reboot", "-kernel"])
        .arg(&kernel.image)
        .args(["-append", "console=ttyS0 earlyprintk=serial,ttyS0 panic=-1", "-serial"])
        .arg(format!("file:{}", console.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = spawned else { return false };
    let booted =
        crate::traffic::wait_for(Duration::from_secs(5), Duration::from_millis(100), || {
            fs::read_to_string(&console).ok().filter(|log| log.contains("Linux version"))
        })
        .is_some();
    let _ = child.kill();
    let _ = child.wait();
    booted
}

/// A command to run inside a fresh VM.
#[derive(Debug, Clone)]
pub struct VmCommand {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: PathBuf,
    timeout: Duration,
    memory_mib: u32,
    cpus: u32,
}

/// What a VM run returned.
#[derive(Debug)]
pub struct VmRun {
    /// The command's exit status (143, SIGTERM's, when the guest's timeout killed it).
    pub status: i32,
    /// Its standard output and error, interleaved as written.
    pub output: String,
    /// The guest's serial console (kernel messages and the init scripts' lines).
    pub console: String,
    /// `tcg` or `kvm`.
    pub accel: &'static str,
    /// From starting QEMU until the guest was ready to run the command (host clock).
    pub boot: Duration,
    /// From starting QEMU until it exited.
    pub elapsed: Duration,
    dir: tempfile::TempDir,
}

impl VmRun {
    /// A file the command wrote into its scratch directory.
    pub fn scratch_file(&self, name: &str) -> io::Result<String> {
        fs::read_to_string(self.dir.path().join("share").join(name))
    }
}

impl VmCommand {
    /// `program` (a host path, as the guest sees the host's root), run as root in the current
    /// directory with `PATH` and `RUST_BACKTRACE` from this process, 1 GiB, 2 vCPUs, 5 minutes.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        let mut env = vec![(IN_VM_ENV.to_owned(), "1".to_owned())];
        for key in ["PATH", "RUST_BACKTRACE"] {
            if let Ok(value) = std::env::var(key) {
                env.push((key.to_owned(), value));
            }
        }
        Self {
            program: program.into(),
            args: Vec::new(),
            env,
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            timeout: Duration::from_secs(300),
            memory_mib: 1024,
            cpus: 2,
        }
    }

    /// Adds arguments.
    pub fn args<S: AsRef<str>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable for the command.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The directory the command starts in (a host path).
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = dir.into();
        self
    }

    /// How long the command may run in the guest (the boot is not counted).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The guest's memory.
    pub fn memory_mib(mut self, mib: u32) -> Self {
        self.memory_mib = mib;
        self
    }

    /// The guest's vCPUs.
    pub fn cpus(mut self, cpus: u32) -> Self {
        self.cpus = cpus;
        self
    }

    /// The script the guest runs: the environment, the directory, then the program.
    fn script(&self, scratch: &Path) -> String {
        let mut script = String::from("#!/bin/sh\n");
        let scratch = scratch.to_string_lossy();
        for (key, value) in
            self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).chain([(SCRATCH_ENV, &*scratch)])
        {
            let _ = writeln!(script, "export {key}={}", shell_quote(value));
        }
        let _ = writeln!(script, "cd {} || exit 125", shell_quote(&self.cwd.to_string_lossy()));
        script.push_str("exec");
        for word in
            std::iter::once(self.program.to_string_lossy().into_owned()).chain(self.args.clone())
        {
            script.push(' ');
            script.push_str(&shell_quote(&word));
        }
        script.push('\n');
        script
    }

    /// Boots a VM, runs the command in it, and returns once the guest has powered off. An error
    /// means the VM itself failed (it did not boot, or overran its time), not the command.
    pub fn run(&self) -> io::Result<VmRun> {
        // One VM at a time per test process: emulated CPUs are slow enough without sharing the
        // machine's two cores among several guests and the rest of the suite.
        let _turn = no_vm_meanwhile();
        let kernel = kernel()?;
        let accel = accelerator(kernel);
        let dir = tempfile::Builder::new().prefix("cmmd-vm-").tempdir()?;
        let share = dir.path().join("share");
        fs::create_dir(&share)?;
        fs::write(share.join("command.sh"), self.script(&share))?;
        let console = dir.path().join("console.log");
        let qemu_log = fs::File::create(dir.path().join("qemu.log"))?;
        let stage2 = tests_dir().join("vm/guest-init.sh");
        let append = format!(
            "console=ttyS0 quiet panic=-1 CMMD_VM_STAGE2={} {SCRATCH_ENV}={} CMMD_VM_MODULES={} CMMD_VM_TIMEOUT={}",
            stage2.display(),
            share.display(),
            kernel.modules.display(),
            self.timeout.as_secs().max(1),
        );
        let mut append = append;
        let mut workspace_share = None;
        if let Some(workspace) = hidden_workspace() {
            let _ = write!(append, " CMMD_VM_WORKSPACE={}", workspace.display());
            workspace_share = Some(format!(
                "local,path={},mount_tag=workspace,security_model=none,readonly=on,multidevs=remap",
                workspace.display()
            ));
        }
        let started = Instant::now();
        let mut command = Command::new("qemu-system-x86_64");
        command
            .args(["-accel", accel, "-cpu", if accel == "kvm" { "host" } else { "max" }])
            .args(["-m", &self.memory_mib.to_string(), "-smp", &self.cpus.to_string()])
            .args(["-display", "none", "-nodefaults", "-no-reboot"])
            .arg("-kernel")
            .arg(&kernel.image)
            .arg("-initrd")
            .arg(&kernel.initramfs)
            .args(["-append", &append])
            .args([
                "-virtfs",
                "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
            ])
            .arg("-virtfs")
            .arg(format!(
                "local,path={},mount_tag=scratch,security_model=none,multidevs=remap",
                share.display()
            ))
            .args(workspace_share.iter().flat_map(|share| ["-virtfs", share.as_str()]))
            .arg("-serial")
            .arg(format!("file:{}", console.display()))
            .stdin(Stdio::null())
            .stdout(qemu_log.try_clone()?)
            .stderr(qemu_log);
        let child =
            command.spawn().map_err(|e| io::Error::other(format!("qemu-system-x86_64: {e}")))?;
        let (exit, boot) = wait_for_guest(child, &share, self.timeout + BOOT_ALLOWANCE);
        let elapsed = started.elapsed();
        let console_text = fs::read_to_string(&console).unwrap_or_default();
        let status =
            fs::read_to_string(share.join("status")).ok().and_then(|s| s.trim().parse().ok());
        let Some(status) = status else {
            let qemu_text = fs::read_to_string(dir.path().join("qemu.log")).unwrap_or_default();
            return Err(io::Error::other(format!(
                "the VM returned no exit status ({exit}, after {elapsed:.1?}); qemu said: {}\nconsole:\n{}",
                qemu_text.trim(),
                tail(&console_text, 60)
            )));
        };
        let output = fs::read_to_string(share.join("output")).unwrap_or_default();
        Ok(VmRun {
            status,
            output,
            console: console_text,
            accel,
            boot: boot.unwrap_or(elapsed),
            elapsed,
            dir,
        })
    }
}

/// Waits for QEMU to exit, killing it at `limit`; notes when the guest reported ready.
fn wait_for_guest(mut child: Child, share: &Path, limit: Duration) -> (String, Option<Duration>) {
    let started = Instant::now();
    let mut boot = None;
    loop {
        if boot.is_none() && share.join("ready").exists() {
            boot = Some(started.elapsed());
        }
        match child.try_wait() {
            Ok(Some(status)) => return (format!("qemu exited with {status}"), boot),
            Ok(None) if started.elapsed() < limit => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return (format!("killed after {limit:?}"), boot);
            }
            Err(error) => return (format!("waiting for qemu: {error}"), boot),
        }
    }
}

fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs the integration-test binary (this process's executable) inside a VM, filtered to the
/// one test `name` (the path libtest prints, e.g. `vm::pppoe_over_vlan`), with [`IN_VM_ENV`]
/// set. Prints the guest's output and the boot and run times, and fails the calling test unless
/// the guest ran exactly that test and it passed.
pub fn run_test_in_vm(name: &str) -> VmRun {
    let exe = std::env::current_exe().expect("the test binary's path");
    let run = VmCommand::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .run()
        .unwrap_or_else(|error| panic!("VM run of {name}: {error}"));
    eprintln!(
        "---- {name} in the VM ({}) ----\n{}---- end of {name} in the VM ----",
        run.accel, run.output
    );
    eprintln!(
        "VM {name}: accel={} boot_s={:.1} total_s={:.1}",
        run.accel,
        run.boot.as_secs_f64(),
        run.elapsed.as_secs_f64()
    );
    assert_eq!(
        run.status,
        0,
        "{name} failed in the VM (status {}); console:\n{}",
        run.status,
        tail(&run.console, 40)
    );
    assert!(
        run.output.contains("test result: ok. 1 passed"),
        "the VM ran no test named {name} (exit 0 but not `1 passed`)"
    );
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guest_script_quotes_every_word_and_exports_the_scratch_path() {
        let command = VmCommand::new("/bin/echo")
            .args(["it's", "a b"])
            .env("K", "v'1")
            .current_dir("/work dir");
        let script = command.script(Path::new("/tmp/x"));
        assert!(script.contains("export CMMD_IN_VM='1'\n"), "{script}");
        assert!(script.contains("export K='v'\\''1'\n"), "{script}");
        assert!(script.contains("export CMMD_VM_SCRATCH='/tmp/x'\n"), "{script}");
        assert!(script.contains("cd '/work dir' || exit 125\n"), "{script}");
        assert!(script.ends_with("exec '/bin/echo' 'it'\\''s' 'a b'\n"), "{script}");
    }

    #[test]
    fn a_cache_the_guest_would_hide_is_refused() {
        let error = prepare_kernel(Path::new("/tmp/cache")).unwrap_err();
        assert!(error.contains("the guest mounts its own /tmp"), "{error}");
    }
}

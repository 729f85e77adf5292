//! Integration tests, one binary (one link step). Kernel tests create and remove their own
//! network namespaces; they need root and run in CI.

mod cli; // the telnet CLI of the running daemon: every command, telnet/expect, ncat, ctl, abuse and security
mod cli_vendor; // the CLI byte for byte as libcli and cmm print it; the vendor's command line
mod config_errors; // bad configuration: exit 2 and one precise line; check-config sources; SIGHUP reload
mod conntrack_kernel; // the conntrack crate against the real kernel: events, dump, update, delete, overrun
mod faults; // fault injection: event storms, rtnetlink overrun, hardware faults, kernel changes, SIGKILL
mod offload;
mod packaging;
mod policy_routing; // two uplinks chosen by ip rule on source and mark: route objects follow the kernel // Kubernetes manifests, the DPA wrapper script, the example configuration // cmmd end to end: real flows through a router namespace programmed into the software cdx
mod privilege; // least privilege: exit 1 naming CAP_NET_ADMIN without it; nobody with only it runs and offloads
mod soak; // load and soak: churn plus real traffic; memory, event loss, leaks, latency (CMM_SOAK_SECS)
mod vm; // the VM harness proven: VLAN, PPPoE over it, masquerade and conntrack in Debian's kernel under QEMU

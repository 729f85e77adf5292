//! Integration tests, one binary (one link step). Kernel tests create and remove their own
//! network namespaces; they need root and run in CI.

mod bridge; // a LAN bridge: member ports as cdx's ports, a missing forwarding entry, a host moving ports
mod cdx; // the cdx cmmd finds: either ABI, the flowtable owner, unknown interfaces, 70k flows on one gateway, /dev/cdx_ctrl
mod cli; // the telnet CLI of the running daemon: every command, telnet/expect, ncat, ctl, abuse and security
mod cli_vendor; // the CLI byte for byte as libcli and cmm print it; the vendor's command line
mod config_errors; // bad configuration: exit 2 and one precise line; check-config sources; SIGHUP reload
mod conntrack_kernel; // the conntrack crate against the real kernel: events, dump, update, delete, overrun
mod dpa_wrapper; // the DPA wrapper and init of the image, run with sh; the Containerfile's inputs
mod external_checks; // checkov on `cmmd manifests`; PromQL of the dashboard and alert rules
mod faults; // fault injection: event storms, rtnetlink overrun, hardware faults, kernel changes, SIGKILL
mod metrics; // /metrics: gauges that count connections, decisions; the probes under a connection flood
mod offload; // cmmd end to end: real flows through a router namespace programmed into the software cdx
mod packaging; // Kubernetes manifests, the DPA wrapper script, the example configuration
mod policy_routing; // two uplinks chosen by ip rule on source and mark: route objects follow the kernel
mod privilege; // least privilege: exit 1 naming CAP_NET_ADMIN without it; nobody with only it runs and offloads
mod soak; // load and soak: churn plus real traffic; memory, event loss, leaks, latency (CMM_SOAK_SECS)
mod vm; // the VM harness proven: VLAN, PPPoE over it, masquerade and conntrack in Debian's kernel under QEMU
mod wan_offload; // in the VM: LAN bridge to a WAN VLAN, and to PPPoE over it, offloaded through path faults

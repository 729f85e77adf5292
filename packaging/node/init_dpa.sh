#!/bin/sh
# init_dpa.sh - the DPA init the image ships as /bin/init_dpa.sh, started by select-dpa-config.sh.
#
# The vendor dpa_app has fixed input paths and no options: /etc/cdx_cfg.xml, /etc/cdx_pcd.xml,
# /etc/cdx_sp.xml and /etc/fmc/config/hxs_pdl_v3.xml. This script copies the four files chosen by the
# wrapper (CDX_CFG_FILE, CDX_PCD_FILE, CDX_PDL_FILE, CDX_SP_FILE) to those paths and runs dpa_app,
# which opens /dev/cdx_ctrl (exclusively), programs the FMan and hands the table handles to cdx.
# It copies rather than links: ConfigMap files are themselves links that change on update.
#
# dpa_app programs the FMan once per boot. When DPA_DONE_FILE is set (the DaemonSet points it at a
# hostPath under /run, which a reboot clears), a successful run creates that file and later pod starts
# (rolling updates, restarts) skip dpa_app, so the hardware flows cdx holds are not disturbed.
#
# Environment:
#   DPA_APP        default /usr/bin/dpa_app
#   DPA_ROOT       prefix of the fixed paths, default empty (the container's /)
#   DPA_DONE_FILE  marker of a successful run since boot, default empty (always run)
set -eu

app="${DPA_APP:-/usr/bin/dpa_app}"
root="${DPA_ROOT:-}"
done_file="${DPA_DONE_FILE:-}"

if [ -n "$done_file" ] && [ -e "$done_file" ]; then
    echo "init_dpa: $done_file exists: the FMan was programmed since boot, dpa_app not run again"
    exit 0
fi

install_file() {
    src="$1"
    dst="$root$2"
    mkdir -p "${dst%/*}"
    cp "$src" "$dst"
    echo "init_dpa: $src -> $dst"
}

install_file "${CDX_CFG_FILE:?is not set: run select-dpa-config.sh}" /etc/cdx_cfg.xml
install_file "${CDX_PCD_FILE:?is not set: run select-dpa-config.sh}" /etc/cdx_pcd.xml
install_file "${CDX_SP_FILE:?is not set: run select-dpa-config.sh}" /etc/cdx_sp.xml
install_file "${CDX_PDL_FILE:?is not set: run select-dpa-config.sh}" /etc/fmc/config/hxs_pdl_v3.xml

[ -x "$app" ] || {
    echo "init_dpa: $app is missing or not executable (set DPA_APP)" >&2
    exit 1
}
echo "init_dpa: running $app"
"$app"
if [ -n "$done_file" ]; then
    mkdir -p "${done_file%/*}"
    : >"$done_file"
    echo "init_dpa: created $done_file"
fi

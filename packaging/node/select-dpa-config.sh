#!/bin/sh
# select-dpa-config.sh - choose this node's DPA XML set, export it, and start the DPA init.
#
# dpa_app (the vendor FMan loader) reads four XML files. This wrapper picks the directory holding them:
#   1. $DPA_CONFIG_ROOT/nodes/$NODE_NAME      if it exists (bring-up of one board), else
#   2. $DPA_CONFIG_ROOT/profiles/$CMM_HW_PROFILE
# checks that cdx_cfg.xml, cdx_pcd.xml, hxs_pdl_v3.xml and cdx_sp.xml are there and not empty, prints
# the directory and the four paths, exports CDX_CFG_FILE, CDX_PCD_FILE, CDX_PDL_FILE, CDX_SP_FILE and
# execs the DPA init script. Any problem ends with a message on stderr and exit status 1.
#
# Environment:
#   CMM_HW_PROFILE   hardware profile, e.g. ls1046a-rdb (the DaemonSet of that profile sets it; it
#                    matches the node label monok8s.io/hardware-profile)
#   NODE_NAME        this node's name (downward API spec.nodeName)
#   DPA_CONFIG_ROOT  default /etc/cmm/dpa
#   DPA_INIT         default /usr/lib/cmm/dpa-init.sh
set -eu

root="${DPA_CONFIG_ROOT:-/etc/cmm/dpa}"
init="${DPA_INIT:-/usr/lib/cmm/dpa-init.sh}"
profile="${CMM_HW_PROFILE:-}"
node="${NODE_NAME:-}"

fail() {
    echo "select-dpa-config: $*" >&2
    exit 1
}

# A name becomes one path component: refuse anything that could leave $root.
check_name() {
    case "$2" in
        "" | . | .. | */*) fail "$1 \"$2\" is not a valid directory name" ;;
    esac
}

if [ -n "$node" ] && check_name NODE_NAME "$node" && [ -d "$root/nodes/$node" ]; then
    dir="$root/nodes/$node"
    reason="node $node"
elif [ -n "$profile" ]; then
    check_name CMM_HW_PROFILE "$profile"
    dir="$root/profiles/$profile"
    reason="hardware profile $profile"
    [ -d "$dir" ] || fail "no DPA configuration for hardware profile \"$profile\": directory $dir does not exist (and there is no $root/nodes/${node:-<NODE_NAME>})"
else
    fail "CMM_HW_PROFILE is not set and there is no $root/nodes/${node:-<NODE_NAME>}: cannot choose a DPA configuration"
fi

problems=0
for file in cdx_cfg.xml cdx_pcd.xml hxs_pdl_v3.xml cdx_sp.xml; do
    if [ ! -f "$dir/$file" ]; then
        echo "select-dpa-config: $dir/$file is missing" >&2
        problems=$((problems + 1))
    elif [ ! -s "$dir/$file" ]; then
        echo "select-dpa-config: $dir/$file is empty" >&2
        problems=$((problems + 1))
    fi
done
[ "$problems" -eq 0 ] || fail "$problems of the four DPA XML files in $dir are missing or empty; put the board's XML set there (ConfigMap cmm-dpa-xml)"

CDX_CFG_FILE="$dir/cdx_cfg.xml"
CDX_PCD_FILE="$dir/cdx_pcd.xml"
CDX_PDL_FILE="$dir/hxs_pdl_v3.xml"
CDX_SP_FILE="$dir/cdx_sp.xml"
export CDX_CFG_FILE CDX_PCD_FILE CDX_PDL_FILE CDX_SP_FILE

echo "select-dpa-config: using $dir ($reason)"
echo "CDX_CFG_FILE=$CDX_CFG_FILE"
echo "CDX_PCD_FILE=$CDX_PCD_FILE"
echo "CDX_PDL_FILE=$CDX_PDL_FILE"
echo "CDX_SP_FILE=$CDX_SP_FILE"

[ -f "$init" ] || fail "DPA init script $init does not exist (set DPA_INIT)"
if [ -x "$init" ]; then
    exec "$init"
fi
exec /bin/sh "$init"

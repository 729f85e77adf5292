#!/bin/sh
# select-dpa-config.sh - choose this node's DPA XML set, export it, and start the DPA init.
#
# dpa_app (the vendor FMan loader) reads four XML files. This wrapper picks the directory that
# holds them, the first of:
#   1. $DPA_CONFIG_ROOT/$NODE_NAME                  one node, as the monok8s CMM document lays it
#                                                   out (also how one board overrides its profile)
#   2. $DPA_CONFIG_ROOT/_profiles/$CMM_HW_PROFILE   every node of a hardware profile (production)
# "_profiles" can never be a node name (node names are lower-case DNS names: a-z, 0-9, '-', '.'),
# so both layouts share one root without colliding. It checks that cdx_cfg.xml, cdx_pcd.xml,
# hxs_pdl_v3.xml and cdx_sp.xml are there and not empty, prints the directory and the four paths,
# exports CDX_CFG_FILE, CDX_PCD_FILE, CDX_PDL_FILE, CDX_SP_FILE and execs the DPA init. Any
# problem ends with a message on stderr and exit status 1.
#
# Environment:
#   NODE_NAME        this node's name (downward API spec.nodeName)
#   CMM_HW_PROFILE   hardware profile, e.g. ls1046a-rdb (the DaemonSet of that profile sets it; it
#                    matches the node label monok8s.io/hardware-profile)
#   DPA_CONFIG_ROOT  default /etc/monok8s/dpa-configs (ConfigMap cmm-dpa-configs)
#   DPA_INIT         default /bin/init_dpa.sh
set -eu

root="${DPA_CONFIG_ROOT:-/etc/monok8s/dpa-configs}"
init="${DPA_INIT:-/bin/init_dpa.sh}"
node="${NODE_NAME:-}"
profile="${CMM_HW_PROFILE:-}"

fail() {
    echo "select-dpa-config: $*" >&2
    exit 1
}

# Each name becomes one path component: refuse anything that is not what Kubernetes allows.
case "$node" in
    *[!a-z0-9.-]* | [.-]* | *[.-]) fail "NODE_NAME \"$node\" is not a valid node name" ;;
esac
case "$profile" in
    *[!A-Za-z0-9._-]* | [._-]* | *[._-]) fail "CMM_HW_PROFILE \"$profile\" is not a valid label value" ;;
esac

if [ -n "$node" ] && [ -d "$root/$node" ]; then
    dir="$root/$node"
    reason="node $node"
elif [ -n "$profile" ] && [ -d "$root/_profiles/$profile" ]; then
    dir="$root/_profiles/$profile"
    reason="hardware profile $profile"
elif [ -z "$node" ] && [ -z "$profile" ]; then
    fail "neither NODE_NAME nor CMM_HW_PROFILE is set: cannot choose a DPA configuration"
elif [ -z "$profile" ]; then
    fail "no DPA configuration for node \"$node\": directory $root/$node does not exist (and CMM_HW_PROFILE is not set)"
elif [ -z "$node" ]; then
    fail "no DPA configuration for hardware profile \"$profile\": directory $root/_profiles/$profile does not exist (and NODE_NAME is not set)"
else
    fail "no DPA configuration for node \"$node\" or hardware profile \"$profile\": neither $root/$node nor $root/_profiles/$profile exists"
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
[ "$problems" -eq 0 ] || fail "$problems of the four DPA XML files in $dir are missing or empty; put the board's XML set there (ConfigMap cmm-dpa-configs)"

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

[ -f "$init" ] || fail "DPA init $init does not exist (set DPA_INIT)"
if [ -x "$init" ]; then
    exec "$init"
fi
exec /bin/sh "$init"

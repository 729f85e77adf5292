#!/bin/sh
# Seed the cargo-fuzz corpora (fuzz/corpus/<target>/) from what the project captured or ships:
# the kernel's conntrack messages (conntrack/fixtures/*.hex), the kernel's rtnetlink dumps of
# this machine (captured now; needs no privilege), the example configuration and the vendor
# fastforward file, CLI sessions with telnet negotiation, and FPP payloads of every exact size.
# Run from anywhere; existing corpus files are kept (libFuzzer merges).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
corpus="$here/corpus"
mkdir -p "$corpus/ctnetlink" "$corpus/rtnl" "$corpus/fpp" "$corpus/cli_session" \
    "$corpus/config_toml" "$corpus/fastforward"

for hex in "$root"/conntrack/fixtures/*.hex; do
    grep -v '^#' "$hex" | xxd -r -p > "$corpus/ctnetlink/$(basename "$hex" .hex)"
done

# rtnetlink dumps (links, addresses, neighbours, routes), one file per datagram.
python3 - "$corpus/rtnl" <<'PY'
import socket, struct, sys
out = sys.argv[1]
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
s.bind((0, 0))
for seq, (name, kind, fixed) in enumerate(
        [("links", 18, 16), ("addresses", 22, 8), ("neighbours", 30, 12), ("routes", 26, 12)], 1):
    body = bytes(fixed)
    s.send(struct.pack("=IHHII", 16 + len(body), kind, 0x301, seq, 0) + body)
    part, done = 0, False
    while not done and part < 64:
        data = s.recv(1 << 16)
        with open(f"{out}/{name}-{part}", "wb") as f:
            f.write(data)
        part += 1
        offset = 0
        while offset + 16 <= len(data):
            length, mtype = struct.unpack_from("=IH", data, offset)
            done |= mtype in (2, 3)
            offset += max((length + 3) & ~3, 16)
PY

# FPP payloads: every exact size a decoder accepts, zero-filled, behind each decoder selector.
for size in 4 12 36 44 72 84 86 92 120; do
    for selector in 1 2; do
        { printf "\\$(printf '%03o' "$selector")"; head -c "$size" /dev/zero; } \
            > "$corpus/fpp/size$size-sel$selector"
    done
done

printf 'admin\r\nadmin\r\nshow counters\r\nenable\r\nshow connections | include tcp\r\n?\r\nsh\tco\t\r\nquit\r\n' \
    > "$corpus/cli_session/login-and-commands"
printf '\377\375\001\377\375\037\377\373\030\377\372\037\000\120\000\030\377\360admin\r\0admin\r\n' \
    > "$corpus/cli_session/telnet-negotiation"
printf 'admin\nadmin\n\033[A\033[B\033[D\177show ver\b\bsion\n' > "$corpus/cli_session/editing-keys"

cp "$root/packaging/cmmd.toml" "$corpus/config_toml/cmmd.toml"
cp "$root/packaging/fastforward.vendor.orig" "$corpus/fastforward/vendor"
for d in "$corpus"/*/; do echo "$(ls "$d" | wc -l) seeds in $d"; done

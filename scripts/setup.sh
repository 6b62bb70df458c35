#!/usr/bin/env bash
# Installs ascend-console on a fresh Debian/Ubuntu machine (as root) into ./.venv.
#   scripts/setup.sh          the console alone (it never needs MindSpore itself)
#   scripts/setup.sh --local  plus MindSpore, so this machine's two local "nodes" can train (the demo)
#   scripts/setup.sh --test   plus the test tools and the packages the test cluster needs
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
debs=(python3 python3-venv python3-pip openssh-client rsync)
if [[ "${1:-}" == "--local" ]]; then
    extras="[local]"
elif [[ "${1:-}" == "--test" ]]; then
    extras="[test,local]"  # the suite trains real MindSpore ranks
    # the test cluster: sshd per namespace host, pdsh for the fan-out benchmark,
    # tmux for driving the TUI, iproute2/util-linux for namespaces, faketime for a node whose
    # clock reads minutes off (tests/faults/test_clock_skew.py)
    debs+=(openssh-server openssh-sftp-server iproute2 util-linux procps pdsh tmux faketime)
fi

missing=()
for deb in "${debs[@]}"; do
    dpkg-query -W -f='${Status}' "$deb" 2>/dev/null | grep -q "install ok installed" || missing+=("$deb")
done
if ((${#missing[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

python=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".${extras}"

#!/usr/bin/env bash
# Installs every Debian package heaptap's build, tests, demo and benchmarks need.
#
# libbpf >= 1.3 (uprobe_multi, BPF_UPROBE helpers), bpftool 7.x and elfutils 0.19x come
# from bookworm-backports.  The suite is enabled from the mirror this machine's apt is
# already configured with: we read the URI out of the existing sources and never name a
# host ourselves.  Idempotent: a second run only checks.
set -euo pipefail

[ "$(id -u)" = 0 ] || { echo "install-deps: must run as root (apt-get)" >&2; exit 1; }

BUILD_PKGS=(make gcc g++ clang llvm pkg-config libbpf-dev bpftool libelf-dev libdw-dev
            elfutils zlib1g-dev libcapstone-dev)
TEST_PKGS=(python3 binutils procps coreutils util-linux golang-go chromium libclang-rt-14-dev
           libjemalloc2 libtcmalloc-minimal4 heaptrack)
BENCH_PKGS=(bpftrace)

want=("${BUILD_PKGS[@]}")
case "${1:-all}" in
build) ;;
all) want+=("${TEST_PKGS[@]}" "${BENCH_PKGS[@]}") ;;
*) echo "usage: $0 [build|all]" >&2; exit 2 ;;
esac

backports_enabled() {
	grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/
}

# The URI of the main Debian archive this machine already uses (deb822 or one-line form).
mirror_uri() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)/ {print u; exit}' "$f"
	done
	if [ -f /etc/apt/sources.list ]; then
		awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list
	fi
	return 0
}

enable_backports() {
	local uri
	uri=$(mirror_uri | grep -v security | head -n1 || true)
	[ -n "$uri" ] || { echo "install-deps: cannot find the bookworm mirror in apt sources" >&2; exit 1; }
	cat >/etc/apt/sources.list.d/heaptap-backports.sources <<SRC
Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	# Prefer backports only for the packages that need it.
	cat >/etc/apt/preferences.d/heaptap-backports <<PREF
Package: libbpf-dev libbpf1 bpftool libelf-dev libelf1 libdw-dev libdw1 elfutils libdebuginfod1 libdebuginfod-common libasm1
Pin: release n=bookworm-backports
Pin-Priority: 600
PREF
}

missing() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || echo "$p"
	done
}

libbpf_new_enough() {
	local v
	v=$(dpkg-query -W -f='${Version}' libbpf-dev 2>/dev/null) || return 1
	dpkg --compare-versions "$v" ge 1:1.3
}

need=$(missing "${want[@]}")
if [ -z "$need" ] && libbpf_new_enough; then
	exit 0
fi
backports_enabled || enable_backports
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends "${want[@]}" >/dev/null
libbpf_new_enough || { echo "install-deps: libbpf-dev >= 1.3 not installed" >&2; exit 1; }
echo "install-deps: ok (libbpf $(dpkg-query -W -f='${Version}' libbpf-dev))"

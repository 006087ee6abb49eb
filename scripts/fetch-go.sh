#!/usr/bin/env bash
# fetch-go.sh VERSION DEST — a Go toolchain from a later Debian suite, unpacked into a cache
# directory and never installed system-wide.  Prints the toolchain's GOROOT on stdout
# (DEST/go-VERSION/usr/lib/go-VERSION; its bin/go runs from there as is).
#
#   scripts/fetch-go.sh 1.27 build/go-toolchains
#
# VERSION is a Debian source version line such as 1.23, 1.24 or 1.27: the packages fetched
# are golang-VERSION-go and golang-VERSION-src (the compiler needs its std sources).
#
# How the mirror is found: the URI of the Debian archive this machine's apt already uses
# is read, at run time, from the deb822 stanza in /etc/apt/sources.list.d/*.sources (or
# the one-line /etc/apt/sources.list entry) whose suite is this release's codename (from
# /etc/os-release), so no host name is written here.  A private apt state under DEST/apt
# (its own sources.list, lists, cache and an empty dpkg status) points that URI at the
# suites in HEAPTAP_GO_SUITES (default: bookworm-backports trixie forky sid; apt's
# candidate, the highest version among them, wins) and runs `apt-get update` and
# `apt-get download` there: the system's package lists and dpkg status are neither read
# nor changed.  Signatures are checked against
# /usr/share/keyrings/debian-archive-keyring.gpg as for any apt source.  The packages are
# unpacked with `dpkg -x`.
#
# A second call finds DEST/go-VERSION complete and only prints its GOROOT.  Exit 1, with
# one line on stderr, when the version cannot be had (no network, no such package).
set -euo pipefail

die() { echo "fetch-go: $*" >&2; exit 1; }

[ $# -eq 2 ] || { echo "usage: $0 VERSION DEST   (e.g. $0 1.27 build/go-toolchains)" >&2; exit 2; }
ver=$1
if ! [[ $ver =~ ^1\.[0-9]+$ ]]; then
	echo "fetch-go: VERSION must look like 1.27, not '$ver'" >&2
	exit 2
fi
suites=${HEAPTAP_GO_SUITES:-bookworm-backports trixie forky sid}
mkdir -p "$2"
dest=$(cd "$2" && pwd)
root="$dest/go-$ver"
goroot="$root/usr/lib/go-$ver"

if [ -f "$root/.complete" ] && [ -x "$goroot/bin/go" ]; then
	echo "$goroot"
	exit 0
fi

# One fetch at a time per cache directory (the unit tests of build/ and build-san/ share it).
exec 9>"$dest/.lock"
flock 9
if [ -f "$root/.complete" ] && [ -x "$goroot/bin/go" ]; then
	echo "$goroot"
	exit 0
fi

# The archive URI of this release's main suite, from the apt sources already configured.
mirror_uri() {
	local codename f
	# shellcheck disable=SC1091
	codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	[ -n "$codename" ] || return 0
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		# deb822: paragraphs separated by blank lines; the first URI of the one whose
		# Suites field names the codename itself (not -security or -updates).
		awk -v c="$codename" '
			BEGIN { RS = ""; FS = "\n" }
			{
				uri = ""; hit = 0
				for (i = 1; i <= NF; i++) {
					if ($i ~ /^URIs:/) { split($i, w, /[ \t]+/); uri = w[2] }
					if ($i ~ /^Suites:/) {
						n = split($i, s, /[ \t]+/)
						for (j = 2; j <= n; j++) if (s[j] == c) hit = 1
					}
				}
				if (hit && uri != "") { print uri; exit }
			}' "$f"
	done
	if [ -f /etc/apt/sources.list ]; then
		# One-line form: deb [options] URI SUITE COMPONENTS...
		awk -v c="$codename" '$1 == "deb" {
			i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
			if ($(i + 1) == c) { print $i; exit }
		}' /etc/apt/sources.list
	fi
	return 0
}

uri=$(mirror_uri | head -n1)
[ -n "$uri" ] || die "cannot find this release's Debian mirror in the apt sources"

apt_dir="$dest/apt"
mkdir -p "$apt_dir/etc/sources.list.d" "$apt_dir/etc/preferences.d" "$apt_dir/lists/partial" \
	"$apt_dir/cache/archives/partial"
: >"$apt_dir/status"
{
	for suite in $suites; do
		echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $suite main"
	done
} >"$apt_dir/etc/sources.list"

apt_opts=(
	-o "Dir::Etc=$apt_dir/etc"
	-o "Dir::Etc::SourceList=$apt_dir/etc/sources.list"
	-o "Dir::Etc::SourceParts=$apt_dir/etc/sources.list.d"
	-o "Dir::Etc::Preferences=$apt_dir/etc/preferences"
	-o "Dir::Etc::PreferencesParts=$apt_dir/etc/preferences.d"
	-o "Dir::State=$apt_dir"
	-o "Dir::State::Lists=$apt_dir/lists"
	-o "Dir::State::status=$apt_dir/status"
	-o "Dir::Cache=$apt_dir/cache"
	-o "Debug::NoLocking=1"
	-o "APT::Sandbox::User=$(id -un)"
	-o "Acquire::Retries=2"
	-o "Acquire::http::Timeout=30"
)

pkgs=("golang-$ver-go" "golang-$ver-src")
have_pkgs() {
	local p cand
	for p in "${pkgs[@]}"; do
		cand=$(apt-cache "${apt_opts[@]}" policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
		[ -n "$cand" ] && [ "$cand" != "(none)" ] || return 1
	done
}
# Lists younger than a day are reused.  A suite that does not exist (any more) only costs a
# warning in the log; what matters is whether the packages are there.
if [ -z "$(find "$apt_dir/lists" -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null)" ] ||
	! have_pkgs; then
	timeout 120 apt-get -q "${apt_opts[@]}" update >"$apt_dir/update.log" 2>&1 || true
	have_pkgs || die "no golang-$ver-go/-src in: $suites (see $apt_dir/update.log)"
fi

tmp=$(mktemp -d "$dest/.fetch-$ver.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && timeout 180 apt-get -q "${apt_opts[@]}" download "${pkgs[@]}") \
	>"$tmp/download.log" 2>&1 ||
	die "apt-get download ${pkgs[*]} failed: $(tail -n1 "$tmp/download.log")"
mkdir "$tmp/root"
for deb in "$tmp"/*.deb; do
	dpkg -x "$deb" "$tmp/root"
done
[ -x "$tmp/root/usr/lib/go-$ver/bin/go" ] || die "golang-$ver-go has no usr/lib/go-$ver/bin/go"
GOROOT="$tmp/root/usr/lib/go-$ver" GOTOOLCHAIN=local "$tmp/root/usr/lib/go-$ver/bin/go" version \
	>/dev/null || die "the unpacked go $ver does not run"
rm -rf "$root"
mv "$tmp/root" "$root"
touch "$root/.complete"
echo "$goroot"

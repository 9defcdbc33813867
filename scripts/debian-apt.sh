# SPDX-License-Identifier: Apache-2.0
# debian-apt.sh: sourced by the scripts that fetch packages from Debian's
# archive without touching the machine's apt state (kernel-fetch.sh,
# linux-source.sh).
#
#   debian_apt DIR SUITE   sets the array `apt` to apt-get/apt-cache options
#                          for arm64 packages of SUITE, with a private sources
#                          list (DIR/apt/sources.list, outside the lists
#                          folder, which `apt-get update` cleans), lists
#                          folder and package cache under DIR/apt, and runs
#                          `apt-get update` (to stderr).
#
# MIRROR (default: the one this machine's apt uses, else deb.debian.org) and
# KEYRING (default /usr/share/keyrings/debian-archive-keyring.gpg) can be set.

debian_apt() {
	local dir=$1 suite=$2
	local keyring=${KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}
	if [[ -z ${MIRROR:-} ]]; then
		MIRROR=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
			grep -v '^[[:space:]]*#' | grep -o -E 'https?://[^ ]+/debian/?( |$)' | head -n1 | tr -d ' ' || true)
		MIRROR=${MIRROR:-http://deb.debian.org/debian}
	fi
	local tool
	for tool in apt-get apt-cache dpkg-deb; do
		command -v "$tool" >/dev/null || { echo "$0: $tool not found (a Debian or Ubuntu host is needed)" >&2; return 2; }
	done
	[[ -r $keyring ]] || { echo "$0: keyring $keyring not readable (apt: debian-archive-keyring)" >&2; return 2; }
	mkdir -p "$dir/apt/lists/partial" "$dir/apt/cache/archives/partial"
	echo "deb [arch=arm64 signed-by=$keyring] $MIRROR $suite main" >"$dir/apt/sources.list"
	apt=(
		-q -oAPT::Architecture=arm64 -oAPT::Architectures=arm64
		-oDir::State::Lists="$dir/apt/lists" -oDir::Etc::SourceList="$dir/apt/sources.list"
		-oDir::Etc::SourceParts=/dev/null -oDir::Cache="$dir/apt/cache"
		-oDir::State::status=/dev/null -oAcquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
		-oAcquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false
		-oAcquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false
		-oAcquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false
		-oAcquire::Languages=none
	)
	# As root, apt would drop to _apt for downloads, which cannot write here.
	[[ $EUID -eq 0 ]] && apt+=(-oAPT::Sandbox::User=root)
	apt-get "${apt[@]}" update >&2
}

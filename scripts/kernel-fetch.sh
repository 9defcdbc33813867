#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kernel-fetch.sh CACHE SUITE
#
# Downloads Debian's arm64 kernel of SUITE (trixie: 6.12, bookworm: 6.1) in
# flavour FLAVOUR (default cloud: linux-image-cloud-arm64; generic:
# linux-image-arm64, the one a Debian arm64 machine installs; any other value
# is taken as Debian's flavour name, e.g. rt-arm64) into CACHE/SUITE and
# unpacks it, without touching the machine's apt state:
# apt-get runs for the foreign architecture arm64 with a private sources
# list, lists folder and package cache under CACHE/SUITE/apt. It fetches the
# -dbg package (vmlinux with symbols) and the -unsigned one (the modules).
# Prints the unpacked root on stdout:
#
#   ROOT/usr/lib/debug/boot/vmlinux-VERSION
#   ROOT/lib/modules/VERSION/kernel/**.ko[.xz]
#
# MIRROR (default: the one this machine's apt uses, else deb.debian.org) and
# KEYRING (default /usr/share/keyrings/debian-archive-keyring.gpg) can be set.
# A second run reuses what is there (apt checks the lists; debs are kept).
set -euo pipefail
export LC_ALL=C

if [[ $# -ne 2 ]]; then
	echo "usage: $0 CACHE SUITE" >&2
	exit 2
fi
cache=$1
suite=$2
dir=$cache/$suite
mkdir -p "$dir/debs"
dir=$(cd "$dir" && pwd)
# shellcheck source=scripts/debian-apt.sh
. "$(dirname "$0")/debian-apt.sh"
debian_apt "$dir" "$suite"

# The metapackage names the current ABI's image package; -unsigned holds the
# same kernel and its modules, -dbg the vmlinux with symbols.
case ${FLAVOUR:-cloud} in
cloud) flavour=cloud-arm64 ;;
generic) flavour=arm64 ;;
*) flavour=$FLAVOUR ;;
esac
image=$(apt-cache "${apt[@]}" depends "linux-image-$flavour" | sed -n "s/^ *Depends: \(linux-image-[^ ]*[0-9]-$flavour\)\$/\1/p" | head -n1)
[[ -n $image ]] || { echo "$0: $suite: linux-image-$flavour names no image package" >&2; exit 1; }
want=("$image-unsigned" "$image-dbg")
(
	cd "$dir/debs"
	for p in "${want[@]}"; do
		ls "$p"_*_arm64.deb >/dev/null 2>&1 || apt-get "${apt[@]}" download "$p" >&2
	done
)
root=$dir/root-${image#linux-image-}
if [[ ! -e $root/.done ]]; then
	rm -rf "$root"
	mkdir -p "$root"
	for p in "${want[@]}"; do
		dpkg-deb -x "$(ls "$dir/debs/$p"_*_arm64.deb | head -n1)" "$root"
	done
	touch "$root/.done"
fi
echo "$root"

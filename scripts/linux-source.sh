#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# linux-source.sh CACHE
#
# Fetches Debian's linux-source-6.12 (trixie; the newest version the archive
# has, VERSION=6.12.N-M to pin one) into CACHE/linux-source without touching
# the machine's apt state (scripts/debian-apt.sh), unpacks its tarball once
# and prints the source tree's path on stdout:
#
#   CACHE/linux-source/linux-VERSION/     pristine sources (never built in:
#                                         builds use O=, patch series a copy)
#
# Shared by `make kernel-build-check` and `make kernel-53-check`. A second run
# reuses what is there (apt checks the lists; the .deb and the tree are kept).
# The package is ~150 MB, the unpacked tree ~1.5 GB.
set -euo pipefail
export LC_ALL=C

if [[ $# -ne 1 ]]; then
	echo "usage: $0 CACHE" >&2
	exit 2
fi
mkdir -p "$1/linux-source/debs"
dir=$(cd "$1/linux-source" && pwd)
# shellcheck source=scripts/debian-apt.sh
. "$(dirname "$0")/debian-apt.sh"
debian_apt "$dir" trixie

pkg=linux-source-6.12
version=${VERSION:-$(apt-cache "${apt[@]}" policy "$pkg" | sed -n 's/^ *Candidate: //p')}
[[ -n $version && $version != "(none)" ]] || { echo "$0: trixie has no $pkg" >&2; exit 1; }
deb=$dir/debs/${pkg}_${version}_all.deb
if [[ ! -e $deb ]]; then
	(cd "$dir/debs" && apt-get "${apt[@]}" download "$pkg=$version" >&2)
fi
tree=$dir/linux-$version
if [[ ! -e $tree/.done ]]; then
	rm -rf "$tree" "$tree.tmp"
	mkdir -p "$tree.tmp"
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tree.tmp" --wildcards './usr/src/linux-source-*.tar.xz'
	tarball=$(ls "$tree.tmp"/usr/src/linux-source-*.tar.xz)
	mkdir -p "$tree.tmp/src"
	tar -xJf "$tarball" -C "$tree.tmp/src" --strip-components=1
	mv "$tree.tmp/src" "$tree"
	rm -rf "$tree.tmp"
	touch "$tree/.done"
fi
echo "$tree"

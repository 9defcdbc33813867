#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# deps.sh [GROUP...]: install the Debian packages ftpatch's build, tests, demo
# and bench need, and those of each GROUP named, and only those that are
# missing. Quiet and quick when all are there; runs apt-get update only when
# it has something to install; uses sudo only when not root. Debian 12
# (bookworm) is the reference system.
#
# Groups, for the opt-in targets (each is one array below; add packages to
# it, or a group as a new array named GROUP_<name with - as _>):
#   kernel-build   building Linux itself (make kernel-build-check)
#   kernel-53      the 5,3 kernels of make kernel-53-check: booting them
set -euo pipefail

PACKAGES=(
	gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu # cross compiler, readelf/objdump oracles
	gcc binutils                                     # the host compiler: cgo, and the x86-64 object of testdata/ktree
	libc6-dev-arm64-cross                            # arm64 libc headers (a gcc Recommends)
	clang lld llvm                                   # the Clang fixtures
	clang-16                                         # kCFI (-fsanitize=kcfi) fixtures and tests
	gcc libc6-dev                                    # cgo, and the bench's emulator floor (scripts/verify-floor.c)
	libunicorn-dev pkg-config                        # cgo: verify's CPU emulator
	liblzma-dev                                      # cgo: xz through liblzma (headers; dlopened at run time)
	zlib1g-dev                                       # cgo: gzip through zlib (headers; dlopened at run time)
	libzstd1                                         # zstd through libzstd (dlopened; its few declarations are in input/ftp_zstd.c)
	qemu-user                                        # running patched programs
	xz-utils zstd gzip                               # compressed modules
	time                                             # /usr/bin/time for make bench
	libxml2-utils                                    # xmllint: --junit output against the Jenkins JUnit schema
	mandoc                                           # mandoc -Tlint: the generated man pages
	zsh fish                                         # zsh -n, fish -n: the generated completions
)

# Building Linux 6.12 for arm64 out of tree (scripts/linux-build.sh): the
# host tools its build runs, Clang/LLD through LLVM=1 (the base set's clang,
# lld, llvm), and what scripts/linux-source.sh fetches the sources with.
GROUP_kernel_build=(
	make gcc libc6-dev bc flex bison libssl-dev libelf-dev # host programs of the kernel build
	cpio kmod python3 perl                                 # scripts the build runs
	debian-archive-keyring dpkg                            # linux-source.sh's apt-get download, dpkg-deb
)

# make kernel-53-check (scripts/kernel-53-check.sh), on top of kernel-build:
# clang-16's linker (LLVM=-16), applying the series, and booting the kernels.
GROUP_kernel_53=(
	lld-16 llvm-16 # LLVM=-16: ld.lld-16, llvm-nm-16, llvm-objcopy-16, ...
	patch          # applying linux/*.patch
	qemu-system-arm # qemu-system-aarch64 -M virt -cpu max
)

for group in "$@"; do
	var=GROUP_${group//-/_}
	if ! declare -p "$var" >/dev/null 2>&1; then
		echo "deps.sh: no package group '$group' (groups: $(compgen -A variable GROUP_ | sed 's/^GROUP_//; s/_/-/g' | tr '\n' ' '))" >&2
		exit 2
	fi
	declare -n members=$var
	PACKAGES+=("${members[@]}")
	unset -n members
done

missing=()
for p in "${PACKAGES[@]}"; do
	# dpkg-query prints the status even for known-but-removed packages.
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[[ $status == installed ]] || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

echo "deps.sh: installing ${missing[*]}" >&2
sudo=()
if ((EUID != 0)); then
	command -v sudo >/dev/null || { echo "deps.sh: need root or sudo to install ${missing[*]}" >&2; exit 1; }
	sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

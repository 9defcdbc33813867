#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# linux-build.sh SRC OUT FRAGMENT [MAKEVAR=VALUE...]
#
# Builds Linux out of tree, as a CI job does, once: tinyconfig, then the
# config FRAGMENT on top (olddefconfig), then
#
#   make ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- [MAKEVAR=VALUE...] vmlinux modules
#
# with O=OUT (SRC, the sources of scripts/linux-source.sh, is never written).
# Every line of FRAGMENT is a promise: `CONFIG_X=v` or `# CONFIG_X is not set`
# must be in OUT/.config verbatim after olddefconfig, or the build stops
# before compiling and names the lines Kconfig did not keep. So FRAGMENT may
# also list symbols Kconfig derives (CONFIG_DYNAMIC_FTRACE_WITH_CALL_OPS=y),
# which it cannot set, to check them.
#
# OUT/.done is written when vmlinux and the modules are built; it holds the
# stamp (sources, fragment, make variables, compiler and linker versions). A
# second run with the same stamp does nothing; a different stamp rebuilds
# (incrementally, in OUT). Compiles run under `nice -n 10` with -j JOBS
# (default: the number of CPUs). Prints the build's time and size on stderr.
#
# Sourced, it defines linux_build (same arguments) and linux_config_check
# OUT FRAGMENT for scripts that build their own configs.
set -euo pipefail

# linux_make SRC OUT MAKEVAR=VALUE... TARGET...: make in SRC with O=OUT.
linux_make() {
	local src=$1 out=$2
	shift 2
	nice -n 10 make -s -C "$src" O="$out" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- "$@"
}

# linux_config_check OUT FRAGMENT: OUT/.config keeps FRAGMENT's promises.
# `CONFIG_X=v` must be there verbatim; `# CONFIG_X is not set` means no
# `CONFIG_X=` line (Kconfig writes nothing for a derived symbol whose
# dependencies fail); `#promise LINE` is only checked, never given to
# Kconfig, and may be a bash pattern (`#promise CONFIG_GCC_VERSION=12*`).
linux_config_check() {
	local out=$1 fragment=$2 line sym bad=()
	while IFS= read -r line; do
		if [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
			sym=${BASH_REMATCH[1]}
			! grep -q "^$sym=" "$out/.config" || bad+=("$line")
		elif [[ $line =~ ^(#promise\ )?(CONFIG_[A-Za-z0-9_]+)=.*$ ]]; then
			sym=${BASH_REMATCH[2]}
			local want=${line#\#promise } have
			have=$(grep "^$sym=" "$out/.config" || true)
			# shellcheck disable=SC2053 # want is a pattern on purpose
			[[ -n $have && $have == $want ]] || bad+=("$line")
		fi
	done <"$fragment"
	if ((${#bad[@]})); then
		echo "linux-build: $out/.config does not keep what $fragment promises:" >&2
		local b
		for b in "${bad[@]}"; do
			sym=$(grep -o 'CONFIG_[A-Za-z0-9_]*' <<<"$b" | head -n1)
			echo "  want: ${b#\#promise }; .config has: $(grep -E "^$sym=|^# $sym is not set" "$out/.config" || echo "nothing (not offered: its dependencies fail)")" >&2
		done
		return 1
	fi
}

# linux_stamp SRC FRAGMENT MAKEVAR=VALUE...: what a build depends on, one
# item a line.
linux_stamp() {
	local src=$1 fragment=$2
	shift 2
	echo "sources: $src"
	echo "fragment: $(sha256sum <"$fragment" | cut -d' ' -f1)"
	echo "make: ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- $*"
	local cc=aarch64-linux-gnu-gcc ld=aarch64-linux-gnu-ld v
	for v in "$@"; do
		case $v in
		LLVM=1) cc=clang ld=ld.lld ;;
		LLVM=-*) cc=clang${v#LLVM=} ld=ld.lld${v#LLVM=} ;;
		LLVM=*/) cc=${v#LLVM=}clang ld=${v#LLVM=}ld.lld ;;
		CC=*) cc=${v#CC=} ;;
		LD=*) ld=${v#LD=} ;;
		esac
	done
	echo "cc: $("$cc" --version | head -n1)"
	echo "ld: $("$ld" --version | head -n1)"
}

# linux_build SRC OUT FRAGMENT MAKEVAR=VALUE...: see the file's head.
linux_build() {
	local src=$1 out=$2 fragment=$3
	shift 3
	[[ -f $src/Makefile && -f $src/Kconfig && -d $src/arch/arm64 ]] || { echo "linux-build: $src: not a Linux source tree (scripts/linux-source.sh unpacks one)" >&2; return 2; }
	[[ -f $fragment ]] || { echo "linux-build: $fragment: no such config fragment" >&2; return 2; }
	mkdir -p "$out"
	out=$(cd "$out" && pwd)
	# One build per tree at a time (make kernel-build-check and
	# kernel-53-check may share the cache): the second waits, then finds the
	# tree built.
	local lockfd rc=0
	exec {lockfd}>"$out.lock"
	flock "$lockfd"
	linux_build_locked "$src" "$out" "$fragment" "$@" || rc=$?
	exec {lockfd}>&-
	return $rc
}

linux_build_locked() {
	local src=$1 out=$2 fragment=$3
	shift 3
	local stamp
	stamp=$(linux_stamp "$src" "$fragment" "$@")
	if [[ -f $out/.done && $(cat "$out/.done") == "$stamp" ]]; then
		echo "linux-build: $out: built already ($(sed -n 's/^cc: //p' "$out/.done"))" >&2
		return 0
	fi
	rm -f "$out/.done"
	local t0=$EPOCHREALTIME jobs=${JOBS:-$(nproc)} wall cpu
	echo "linux-build: $out: configuring (tinyconfig + $(basename "$fragment"))" >&2
	# (Called under `||`, where set -e does not hold: each step checks.)
	linux_make "$src" "$out" "$@" tinyconfig >/dev/null || return
	cat "$fragment" >>"$out/.config" || return
	linux_make "$src" "$out" "$@" olddefconfig >"$out/config.log" 2>&1 || { cat "$out/config.log" >&2; return 1; }
	linux_config_check "$out" "$fragment" || return
	echo "linux-build: $out: building vmlinux and modules (-j$jobs)" >&2
	local timer=()
	[[ -x /usr/bin/time ]] && timer=(/usr/bin/time -f '%U %S' -o "$out/build.cpu")
	"${timer[@]}" nice -n 10 make -s -C "$src" O="$out" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- "$@" \
		-j"$jobs" vmlinux modules >"$out/build.log" 2>&1 || {
		tail -n 30 "$out/build.log" >&2
		echo "linux-build: $out: make failed (whole log: $out/build.log)" >&2
		return 1
	}
	[[ -f $out/vmlinux && -f $out/modules.order ]] || { echo "linux-build: $out: no vmlinux or modules.order after make" >&2; return 1; }
	# build.time: "WALL CPU" seconds: wall from configuring to the end, cpu
	# (user + sys) of the make of vmlinux and modules and all it ran.
	local cpu=-
	[[ -s $out/build.cpu ]] && cpu=$(awk 'END { printf "%.0f", $1 + $2 }' "$out/build.cpu")
	echo "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }') $cpu" >"$out/build.time"
	echo "$stamp" >"$out/.done"
	read -r wall cpu <"$out/build.time"
	echo "linux-build: $out: built in ${wall}s (cpu ${cpu}s, -j$jobs, load $(cut -d' ' -f1-3 /proc/loadavg)), $(du -sm "$out" | cut -f1) MB, $(wc -l <"$out/modules.order") modules" >&2
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	if [[ $# -lt 3 ]]; then
		echo "usage: $0 SRC OUT FRAGMENT [MAKEVAR=VALUE...]" >&2
		exit 2
	fi
	linux_build "$@"
fi

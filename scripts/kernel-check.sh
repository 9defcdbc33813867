#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kernel-check.sh [FTPATCH]
#
# ftpatch against Debian's real arm64 kernels (`make kernel-check`; opt-in,
# never part of `make test`): for each suite in SUITES (default "trixie
# bookworm": the cloud 6.12 kernel, built with DYNAMIC_FTRACE_WITH_CALL_OPS
# and DIRECT_CALLS, and the cloud 6.1 kernel, classic
# -fpatchable-function-entry=2), scripts/kernel-fetch.sh downloads the -dbg
# package (vmlinux with symbols) and the -unsigned one (the modules) into
# CACHE (default build/kernels, git-ignored), then this script runs and times
# the whole flow on them (FLAVOUR, default cloud, picks the kernel flavour:
# generic is Debian's linux-image-arm64; see kernel-fetch.sh):
#
#   scan --check of vmlinux and of every module (.ko.xz, as shipped)
#   init with the kernel's nop ops, enable with its list ops
#   verify --run-file-trampoline: every site through the kernel's own
#     ftrace_caller
#   6.12: enable --direct ftrace_stub_direct_tramp for a subset, verify again;
#     every site through ftrace_caller's own direct-call branch
#   verify --against (every change live-safe), disable (= init, byte for byte)
#   one module: decompressed, patched, verified the same way
#   a planted defect in the kernel's trampoline, which verify must catch
#   the floor rows: verify (ftpatch's trampoline) of vmlinux as shipped (nop
#     sites) and enabled with the kernel's list ops, against the emulator
#     floor on the same runs (scripts/floor.sh, scripts/verify-floor.c),
#     FLOOR_REPS (11) interleaved pairs, cpu per site; and verify's wall time
#     with -j 1 and -j 2, beside the floor's own on the same runs
#
# Each step says what it runs and how long it took; the script stops with a
# non-zero status at the first step that does not do what it must. The
# patched copies go to CACHE/work (several GB at most; deleted at the end
# unless KEEP=1). FTPATCH defaults to bin/ftpatch. FLOOR_ONLY=1 runs only
# init, enable and the floor rows.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")/.." && pwd)
ftpatch=${1:-$here/bin/ftpatch}
cache=${CACHE:-$here/build/kernels}
read -r -a suites <<<"${SUITES:-trixie bookworm}"
direct_funcs=${DIRECT_FUNCS:-vfs_*}
module=${MODULE:-fs/xfs/xfs}
readelf=${READELF:-}
if [[ -z $readelf ]]; then
	for r in aarch64-linux-gnu-readelf llvm-readelf readelf; do
		command -v "$r" >/dev/null && { readelf=$r; break; }
	done
fi
[[ -x $ftpatch ]] || { echo "$0: $ftpatch: not an executable (make build)" >&2; exit 2; }
# shellcheck source=scripts/floor.sh
. "$here/scripts/floor.sh"
floor_reps=${FLOOR_REPS:-11}
[[ -n $readelf ]] || { echo "$0: no readelf (apt: binutils-aarch64-linux-gnu)" >&2; exit 2; }
command -v xz >/dev/null || { echo "$0: xz not found (apt: xz-utils)" >&2; exit 2; }
# Absolute: the flow runs from inside the cache.
ftpatch=$(cd "$(dirname "$ftpatch")" && pwd)/$(basename "$ftpatch")
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
fdir=$cache/floor
floor_build "$fdir" || { echo "$0: cannot build the emulator floor (scripts/floor.sh)" >&2; exit 2; }

declare -a summary=()
log_last=$(mktemp)
trap 'rm -f "$log_last"' EXIT

# step WANT NAME CMD...: run CMD, print its output (trimmed to its last
# lines), its time, and stop unless it exits with WANT.
step() {
	local want=$1 name=$2
	shift 2
	echo "== $name"
	echo "+ ${*/#$here\//}" # as bash -x shows a command
	local t0=$EPOCHREALTIME rc=0 log rss=""
	log=$(mktemp)
	if [[ -x /usr/bin/time ]]; then
		/usr/bin/time -f '%M' -o "$log.rss" "$@" >"$log" 2>&1 || rc=$?
		rss=$(tail -n1 "$log.rss" 2>/dev/null || true)
		rm -f "$log.rss"
	else
		"$@" >"$log" 2>&1 || rc=$?
	fi
	local t1=$EPOCHREALTIME
	sed -i '/^$/d' "$log"
	local secs
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
	if (($(wc -l <"$log") > 6)); then
		head -n 3 "$log"
		echo "   ... ($(($(wc -l <"$log") - 6)) lines)"
		tail -n 3 "$log"
	else
		cat "$log"
	fi
	if [[ $rc -ne $want ]]; then
		# Everything that is not a passing file, so the cause shows.
		echo "   --- output other than ok: lines:"
		grep -v '^ok: ' "$log" | head -n 60 || true
	fi
	cp "$log" "$log_last" # for a check on the whole output
	rm -f "$log"
	local mib=""
	[[ $rss =~ ^[0-9]+$ ]] && mib=$(printf '%5d MiB' $((rss / 1024)))
	echo "   exit $rc in ${secs}s${mib:+, peak $mib}"
	summary+=("$(printf '%-9s %-64s %7ss %s' "$kver_short" "$name" "$secs" "$mib")")
	if [[ $rc -ne $want ]]; then
		echo "kernel-check: FAIL: $name: exit $rc, want $want" >&2
		exit 1
	fi
}

# check NAME CMD...: a condition that must hold (no timing).
check() {
	local name=$1
	shift
	if "$@"; then
		echo "   ok: $name"
	else
		echo "kernel-check: FAIL: $name" >&2
		exit 1
	fi
}

# addr SYM FILE: the symbol's address (hex, no 0x) from .symtab.
addr() {
	# awk reads to the end: an early exit would kill readelf with SIGPIPE,
	# which pipefail turns into a failure.
	"$readelf" -sW "$2" | awk -v s="$1" '$8 == s && $7 != "UND" && !found { print $2; found = 1 }'
}

# fileoff FILE HEXADDR: the file offset of a virtual address, through the
# section headers. Bash arithmetic, not awk: kernel addresses need all 64
# bits (awk's doubles have 53), and differences wrap correctly.
fileoff() {
	local x=$((0x$2)) line va off sz d
	while read -r line; do
		line=${line#*]}
		read -r _ typ va off sz _ <<<"$line"
		[[ $typ == NOBITS || ! $va =~ ^[0-9a-f]+$ || ! $sz =~ ^[0-9a-f]+$ ]] && continue
		((0x$va != 0)) || continue
		d=$((x - 0x$va))
		if ((d >= 0 && d < 0x$sz)); then
			echo $((0x$off + d))
			return
		fi
	done < <("$readelf" -SW "$1" | grep '^ *\[ *[0-9]')
}

# plant64 FILE HEXADDR HEXVALUE: write the 64-bit HEXVALUE at HEXADDR.
plant64() {
	local off v
	off=$(fileoff "$1" "$2")
	[[ -n $off ]] || { echo "kernel-check: $2 is in no section of $1" >&2; exit 2; }
	v=$(printf '%016x' $((0x$3)))
	printf "\\x${v:14:2}\\x${v:12:2}\\x${v:10:2}\\x${v:8:2}\\x${v:6:2}\\x${v:4:2}\\x${v:2:2}\\x${v:0:2}" | dd of="$1" bs=1 seek="$off" conv=notrunc status=none
}

# plant FILE HEXADDR WORD: write the 32-bit WORD (hex) at HEXADDR.
plant() {
	local off w=$3
	off=$(fileoff "$1" "$2")
	[[ -n $off ]] || { echo "kernel-check: $2 is in no section of $1" >&2; exit 2; }
	printf "\\x${w:6:2}\\x${w:4:2}\\x${w:2:2}\\x${w:0:2}" | dd of="$1" bs=1 seek="$off" conv=notrunc status=none
}

# word FILE HEXADDR: the 32-bit word at HEXADDR, as 8 hex digits.
word() {
	local off
	off=$(fileoff "$1" "$2")
	od -An -tx4 -j "$off" -N4 "$1" | tr -d ' '
}

# hexadd HEX N: HEX + N, in hex without 0x.
hexadd() { printf '%x' $((0x$1 + $2)); }

# floor_rows NOPIMG ENIMG: verify of each image (ftpatch's trampoline,
# every worker) against the emulator floor on the same runs, cpu per site;
# then verify's wall time on ENIMG with -j 1 and -j 2. Rows go to the
# summary; a floor that fails a site stops the check.
floor_rows() {
	local img state plan n line
	for img in "$1" "$2"; do
		state=nop
		[[ $img == "$2" ]] && state=enabled
		plan=$w/floor-$state.plan
		echo "== floor: verify vs the emulator floor, $state sites"
		floor_plan "$fdir" "$img" "$plan" || { echo "kernel-check: FAIL: floor plan of $img" >&2; exit 1; }
		line=$("$fdir/verify-floor" "$plan" "$img") || { echo "kernel-check: FAIL: the floor fails sites of $img: $line" >&2; exit 1; }
		n=$(sed -n 's/^floor: \([0-9]*\) sites.*/\1/p' <<<"$line")
		floor_compare "$fdir" "$floor_reps" "$n" "$img" "$plan" "$ftpatch" verify || { echo "kernel-check: FAIL: floor rows" >&2; exit 1; }
		summary+=("$(printf '%-9s %-64s %8s' "$kver_short" "verify vs floor, $n $state sites: $floor_us vs $floor_floor_us µs cpu/site" "${floor_ratio}x")")
	done
	# The floor's own -j 2 / -j 1 on the same runs is the yardstick for
	# verify's: what two workers gain when nothing but the emulator runs.
	# $plan is the last one made: the enabled image's.
	echo "== verify and floor wall time, -j 1 and -j 2, enabled sites"
	local i a b fa fb w1=() w2=() f1=() f2=()
	for ((i = 0; i <= floor_reps; i++)); do
		a=$(floor_cpu "$ftpatch" verify -j 1 "$2") || exit 1
		b=$(floor_cpu "$ftpatch" verify -j 2 "$2") || exit 1
		fa=$(floor_cpu "$fdir/verify-floor" -j 1 "$plan" "$2") || exit 1
		fb=$(floor_cpu "$fdir/verify-floor" -j 2 "$plan" "$2") || exit 1
		((i == 0)) && continue
		w1+=("${a#* }") w2+=("${b#* }") f1+=("${fa#* }") f2+=("${fb#* }")
	done
	a=$(printf '%s\n' "${w1[@]}" | floor_median)
	b=$(printf '%s\n' "${w2[@]}" | floor_median)
	fa=$(printf '%s\n' "${f1[@]}" | floor_median)
	fb=$(printf '%s\n' "${f2[@]}" | floor_median)
	echo "   wall: verify -j 1 ${a}s, -j 2 ${b}s; floor -j 1 ${fa}s, -j 2 ${fb}s ($floor_reps interleaved rounds, medians)"
	summary+=("$(printf '%-9s %-64s %7ss' "$kver_short" "verify -j 1, $n enabled sites (wall)" "$a")")
	summary+=("$(printf '%-9s %-64s %7ss %s' "$kver_short" "verify -j 2, $n enabled sites (wall)" "$b" "$(jratio "$a" "$b")")")
	summary+=("$(printf '%-9s %-64s %7ss %s' "$kver_short" "floor -j 2 on the same runs (wall; floor -j 1 ${fa}s)" "$fb" "$(jratio "$fa" "$fb")")")
}

# jratio A B: "B/Ax of -j 1".
jratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx of -j 1", (a > 0 ? b / a : 0) }'; }

check_callops() {
	local v=$1 mods=$2 w=$3
	if [[ ${FLOOR_ONLY:-0} != 1 ]]; then
		step 0 "scan --check vmlinux" "$ftpatch" scan --check "$v"
		# no-function records (a weak function overridden at link time;
		# Linux disables them) are findings scan reports, not errors:
		# the generic flavour's modules have two.
		step 0 "scan --check --ignore no-function modules ($(find "$mods" -name '*.ko*' | wc -l) files)" "$ftpatch" scan --check --ignore no-function "$mods"
	fi
	step 0 "init --default-ops ftrace_nop_ops" "$ftpatch" init --default-ops ftrace_nop_ops --allow-absolute -o "$w/v.init" "$v"
	step 0 "enable --ops ftrace_list_ops (every site)" "$ftpatch" enable --ops ftrace_list_ops --allow-absolute -o "$w/v.list" "$w/v.init"
	floor_rows "$v" "$w/v.list"
	[[ ${FLOOR_ONLY:-0} == 1 ]] && return
	step 0 "verify --run-file-trampoline" "$ftpatch" verify --run-file-trampoline "$w/v.list"
	step 0 "verify --against init (live-safe)" "$ftpatch" verify --run-file-trampoline --against "$w/v.init" "$w/v.list"
	step 0 "enable --direct ftrace_stub_direct_tramp --func '$direct_funcs'" \
		"$ftpatch" enable --direct ftrace_stub_direct_tramp --ops ftrace_list_ops --allow-absolute --func "$direct_funcs" -o "$w/v.direct" "$w/v.list"
	step 0 "verify --run-file-trampoline --direct" "$ftpatch" verify --run-file-trampoline --direct ftrace_stub_direct_tramp "$w/v.direct"
	step 0 "verify --against list ops -> direct (live-safe)" "$ftpatch" verify --run-file-trampoline --direct ftrace_stub_direct_tramp --against "$w/v.list" "$w/v.direct"
	step 0 "disable --default-ops ftrace_nop_ops" "$ftpatch" disable --default-ops ftrace_nop_ops --allow-absolute -o "$w/v.off" "$w/v.direct"
	check "disable gives init's bytes back (cmp)" cmp -s "$w/v.off" "$w/v.init"
	step 0 "verify --against direct -> disabled (live-safe)" "$ftpatch" verify --run-file-trampoline --direct ftrace_stub_direct_tramp --against "$w/v.direct" "$w/v.off"

	# Planted defects: the kernel's ftrace_caller restores the parent into
	# X30 from regs->lr (ldr x30, [sp, #88]); make it load regs->pc instead.
	# And the direct trampoline returns with X30 = X9 (mov x30, x9); make it
	# keep X30. verify must fail every site that runs them.
	local fc st found= w0
	fc=$(addr ftrace_caller "$v")
	for ((i = 0; i < 64; i++)); do
		w0=$(word "$w/v.list" "$(hexadd "$fc" $((4 * i)))")
		if [[ $w0 == f9402ffe ]]; then found=$(hexadd "$fc" $((4 * i))); break; fi
	done
	[[ -n $found ]] || { echo "kernel-check: ftrace_caller has no 'ldr x30, [sp, #88]' in its first 64 words" >&2; exit 1; }
	cp "$w/v.list" "$w/v.bad"
	plant "$w/v.bad" "$found" f94037fe # ldr x30, [sp, #104]
	step 1 "planted defect: ftrace_caller returns with X30 = regs->pc" "$ftpatch" verify --run-file-trampoline "$w/v.bad"
	st=$(addr ftrace_stub_direct_tramp "$v")
	[[ $(word "$w/v.direct" "$(hexadd "$st" 8)") == aa0903fe ]] || { echo "kernel-check: ftrace_stub_direct_tramp+8 is not 'mov x30, x9'" >&2; exit 1; }
	cp "$w/v.direct" "$w/v.bad"
	plant "$w/v.bad" "$(hexadd "$st" 8)" d503201f # nop: X30 stays the return into the function
	step 1 "planted defect: direct trampoline keeps X30" "$ftpatch" verify --run-file-trampoline --direct ftrace_stub_direct_tramp "$w/v.bad"
	rm -f "$w/v.bad"

	# The kernel's own direct-call path: ftrace_caller, given an op whose
	# direct_call is set, branches to it. No ops in the image has one (the
	# kernel sets it at run time), so plant it in a copy: ftrace_list_ops'
	# direct_call := ftrace_stub_direct_tramp. Every site then goes through
	# ftrace_caller's direct branch; pointing it at ftrace_stub (not a
	# direct trampoline) must fail every site.
	local lo
	lo=$(addr ftrace_list_ops "$v")
	st=$(addr ftrace_stub_direct_tramp "$v")
	cp "$w/v.list" "$w/v.viadirect"
	plant64 "$w/v.viadirect" "$(hexadd "$lo" 208)" "$st"
	step 0 "verify: every site through ftrace_caller's direct path (list ops' direct_call planted)" \
		"$ftpatch" verify --run-file-trampoline --direct ftrace_stub_direct_tramp "$w/v.viadirect"
	plant64 "$w/v.viadirect" "$(hexadd "$lo" 208)" "$(addr ftrace_stub "$v")"
	step 1 "planted defect: direct_call pointing at ftrace_stub" \
		"$ftpatch" verify --run-file-trampoline --direct ftrace_stub_direct_tramp "$w/v.viadirect"
	rm -f "$w/v.viadirect"

	# Linux's switch of a site to a direct ops: literal := the direct ops,
	# then BL := the direct trampoline. With a direct ops (here
	# ftrace_nop_ops, its direct_call planted) the state between the writes
	# goes through ftrace_caller's direct branch to the same trampoline: the
	# switch is live-safe, proven by running that state.
	local no
	no=$(addr ftrace_nop_ops "$v")
	cp "$w/v.list" "$w/v.list2"
	plant64 "$w/v.list2" "$(hexadd "$no" 208)" "$st"
	step 0 "enable --ops (direct ops) --direct, literal and BL switched" \
		"$ftpatch" enable --ops ftrace_nop_ops --direct ftrace_stub_direct_tramp --allow-absolute --func "$direct_funcs" -o "$w/v.switch" "$w/v.list2"
	step 0 "verify --against: the switch is live-safe (intermediates proven by running)" \
		"$ftpatch" verify --run-file-trampoline --direct ftrace_stub_direct_tramp --against "$w/v.list2" "$w/v.switch"
	check "every intermediate state proven" grep -q ' 0 unproven)' "$log_last"
	rm -f "$w/v.list2" "$w/v.switch"

	check_module "$mods" "$w" ftrace_nop_ops ftrace_list_ops
}

check_classic() {
	local v=$1 mods=$2 w=$3
	step 0 "scan --check --ignore no-function vmlinux" "$ftpatch" scan --check --ignore no-function "$v"
	step 1 "scan --check vmlinux (no-function is a finding)" "$ftpatch" scan --check "$v"
	step 0 "scan --check modules ($(find "$mods" -name '*.ko*' | wc -l) files)" "$ftpatch" scan --check "$mods"
	step 0 "init" "$ftpatch" init -o "$w/v.init" "$v"
	step 0 "enable (every site)" "$ftpatch" enable -o "$w/v.en" "$w/v.init"
	floor_rows "$v" "$w/v.en"
	[[ ${FLOOR_ONLY:-0} == 1 ]] && return
	step 0 "verify --run-file-trampoline" "$ftpatch" verify --run-file-trampoline "$w/v.en"
	step 0 "verify --against init (live-safe)" "$ftpatch" verify --run-file-trampoline --against "$w/v.init" "$w/v.en"
	step 0 "disable" "$ftpatch" disable -o "$w/v.off" "$w/v.en"
	check "disable gives init's bytes back (cmp)" cmp -s "$w/v.off" "$w/v.init"

	# Planted defect: the classic ftrace_caller restores the parent into X30
	# from its frame (ldr x30, [sp, #240]); make it load the saved X30
	# (the return into the function) instead.
	local fc found= w0
	fc=$(addr ftrace_caller "$v")
	for ((i = 0; i < 64; i++)); do
		w0=$(word "$w/v.en" "$(hexadd "$fc" $((4 * i)))")
		if [[ $w0 == f9407bfe ]]; then found=$(hexadd "$fc" $((4 * i))); break; fi
	done
	[[ -n $found ]] || { echo "kernel-check: the classic ftrace_caller has no 'ldr x30, [sp, #240]' in its first 64 words" >&2; exit 1; }
	cp "$w/v.en" "$w/v.bad"
	plant "$w/v.bad" "$found" f94083fe # ldr x30, [sp, #256]
	step 1 "planted defect: ftrace_caller returns with X30 = the saved X30" "$ftpatch" verify --run-file-trampoline "$w/v.bad"
	rm -f "$w/v.bad"

	check_module "$mods" "$w" "" ""
}

# check_module MODS WORK DEFAULT_OPS OPS: one module through the flow.
check_module() {
	local mods=$1 w=$2 def=$3 ops=$4 m
	m=$(find "$mods" -path "*/$module.ko" -o -path "*/$module.ko.xz" | head -n1)
	[[ -n $m ]] || { echo "kernel-check: module $module.ko[.xz] not found under $mods" >&2; exit 2; }
	case $m in
	*.xz) xz -dc "$m" >"$w/m.ko" ;;
	*) cp "$m" "$w/m.ko" ;;
	esac
	local initargs=() enargs=()
	[[ -n $def ]] && initargs=(--default-ops "$def")
	[[ -n $ops ]] && enargs=(--ops "$ops")
	step 0 "module $(basename "$module"): init" "$ftpatch" init "${initargs[@]}" -o "$w/m.init" "$w/m.ko"
	step 0 "module $(basename "$module"): enable" "$ftpatch" enable "${enargs[@]}" -o "$w/m.en" "$w/m.init"
	step 0 "module $(basename "$module"): verify --against init" "$ftpatch" verify --against "$w/m.init" "$w/m.en"
	step 0 "module $(basename "$module"): disable" "$ftpatch" disable "${initargs[@]}" -o "$w/m.off" "$w/m.en"
	step 0 "verify every module as shipped" "$ftpatch" verify "$mods"
}

for suite in "${suites[@]}"; do
	echo "=== $suite: fetching Debian's arm64 ${FLAVOUR:-cloud} kernel"
	t0=$EPOCHREALTIME
	root=$("$here/scripts/kernel-fetch.sh" "$cache" "$suite" 2>"$cache/fetch-$suite.log") || { cat "$cache/fetch-$suite.log" >&2; exit 2; }
	# Work from the cache, with paths relative to it: shorter output.
	cd "$cache"
	root=${root#"$(pwd)"/}
	echo "   fetched and unpacked in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}')s (cached after the first run)"
	v=$(ls "$root"/usr/lib/debug/boot/vmlinux-* | head -n1)
	kver=${v##*/vmlinux-}
	kver_short=${kver%%-*}
	kver_short=${kver_short%%+*}
	mods=
	for d in "$root/lib/modules/$kver/kernel" "$root/usr/lib/modules/$kver/kernel"; do
		[[ -d $d ]] && mods=$d
	done
	[[ -n $mods ]] || { echo "kernel-check: no modules folder for $kver under $root" >&2; exit 2; }
	echo "   vmlinux: $v ($(($(stat -c %s "$v") / 1048576)) MiB; in $cache)"
	w=work/$suite
	rm -rf "$w"
	mkdir -p "$w"
	t_suite=$EPOCHREALTIME
	"$ftpatch" scan --json "$v" >"$w/scan.json"
	if [[ $(grep -c '"layout":"call-ops"' "$w/scan.json") -gt 0 ]]; then
		echo "   layout: call-ops (-fpatchable-function-entry=4,2)"
		check_callops "$v" "$mods" "$w"
	else
		echo "   layout: classic (-fpatchable-function-entry=2)"
		check_classic "$v" "$mods" "$w"
	fi
	summary+=("$(printf '%-9s %-64s %7ss' "$kver_short" "whole flow" "$(awk -v a="$t_suite" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.2f", b-a}')")")
	[[ ${KEEP:-0} == 1 ]] || rm -rf "$w"
done

echo
echo "=== timings ($(nproc) CPUs; peak resident memory of each step)"
printf '%s\n' "${summary[@]}"
echo "kernel-check: OK"

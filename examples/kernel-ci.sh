#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kernel-ci.sh BUILD_DIR [FTPATCH]
#
# An example CI job for a cross-compiled arm64 kernel: scan its build tree,
# patch vmlinux and every module for tracing, prove each step on Unicorn's
# arm64 CPU (vmlinux through the kernel's own ftrace_caller), prove that the
# patch may be applied to running code, and undo it. Call-ops kernels
# (CONFIG_DYNAMIC_FTRACE_WITH_CALL_OPS, -fpatchable-function-entry=4,2 or
# 5,3) are enabled with an ops symbol; classic ones (=2) need none: the job
# tells them apart from the scan. docs/kernel-ci.md explains each step;
# testdata/script/docs-kernel-ci.txtar runs this script on the kernel-like
# build of scripts/kernel-build.sh, `make kernel-build-check` on real Linux
# build trees (scripts/linux-build-check.sh).
#
# BUILD_DIR is the folder `make ARCH=arm64 ... vmlinux modules` built in
# (O=): ftpatch reads it as a kernel tree, vmlinux and the modules
# modules.order lists. Any other folder holding vmlinux is walked for arm64
# ELF files. Compressed modules (.ko.xz/.zst/.gz) are scanned and verified,
# never patched. FTPATCH is the ftpatch binary (default: ftpatch in PATH).
# Environment:
#
#   OUT           where reports and patched copies go (default ./ftpatch-ci;
#                 keep it outside BUILD_DIR, or the next scan reads it too):
#                 OUT/init, OUT/all, OUT/traced, OUT/off hold one copy of the
#                 tree each
#   OPS           ops to enable call-ops sites with      (default ftrace_list_ops)
#   DEFAULT_OPS   idle ops for the literals               (default ftrace_nop_ops)
#   FUNCS         globs of functions to trace, in vmlinux (default 'vfs_*')
#   MODULE_FUNCS  globs of functions to trace, in modules (default none); FUNCS
#                 and MODULE_FUNCS are judged over the whole run: each must
#                 match some function of some file
#   TOLERATE      problem codes that do not fail the job  (default misaligned-literal;
#                 "none" tolerates nothing)
#
# Exit status, as ftpatch's own: 0 all good; 1 findings (a problem code not
# tolerated, a site that fails verify, a change that is not live-safe);
# 2 the job could not run (bad arguments, unreadable input, a patch refused).
set -euo pipefail

say() { echo "kernel-ci: $*"; }
die() { echo "kernel-ci: error: $*" >&2; exit 2; }
fail() { echo "kernel-ci: FAIL: $*" >&2; exit 1; }

if [[ $# -lt 1 || $# -gt 2 ]]; then
	echo "usage: $0 BUILD_DIR [FTPATCH]" >&2
	exit 2
fi
build=${1%/}
ftpatch=${2:-ftpatch}
out=${OUT:-./ftpatch-ci}
ops=${OPS:-ftrace_list_ops}
default_ops=${DEFAULT_OPS:-ftrace_nop_ops}
read -r -a funcs <<<"${FUNCS:-vfs_*}"
read -r -a module_funcs <<<"${MODULE_FUNCS:-}"
read -r -a tolerate <<<"${TOLERATE:-misaligned-literal}"

[[ -d $build ]] || die "$build: no such build folder"
[[ -f $build/vmlinux ]] || die "$build: no vmlinux"
command -v "$ftpatch" >/dev/null || die "$ftpatch: not found"
rm -rf "$out/init" "$out/all" "$out/traced" "$out/off"
mkdir -p "$out/init" "$out/all" "$out/traced" "$out/off"

# Patch commands write plain files only: leave compressed modules out.
plain=(--exclude-path '**/*.ko.xz' --exclude-path '**/*.ko.zst' --exclude-path '**/*.ko.gz')

# run NAME LABEL ARGS...: `ftpatch ARGS...` over many files (output in
# OUT/NAME.out and .err). Any failure is
# exit 2 for a patch command (input error or refusal; the failed file is
# left untouched) and a finding (1) or an error (2) for verify. Prints the
# run's summary line; sites a patch command skipped are listed.
run() {
	local name=$1 label=$2 rc=0
	shift 2
	"$ftpatch" "$@" >"$out/$name.out" 2>"$out/$name.err" || rc=$?
	case $rc in
	0) ;;
	1) cat "$out/$name.out" "$out/$name.err" >&2; fail "ftpatch $*" ;;
	*) cat "$out/$name.err" >&2; die "ftpatch $* (exit $rc)" ;;
	esac
	# "ftpatch: warning: file F: skipped function NAME at ADDR: CODE"
	sed -n 's/^ftpatch: warning: file \([^:]*\): skipped function \([^ ]*\) at .*: \([a-z-]*\)$/kernel-ci: skipped: \2 in \1 (\3)/p' "$out/$name.err"
	# A run over many files ends with a summary line; one file, with its
	# own line.
	local line
	line=$(sed -n 's/^summary: [a-z]*: //p' "$out/$name.err")
	say "$label: ${line:-$(tail -n 1 "$out/$name.out" | sed 's/ in [0-9.]*s$//')}"
}

# against OLD NEW: `verify --against` of each file of the copy NEW with its
# namesake in OLD: every change must be one a running kernel may take.
# vmlinux runs its own ftrace_caller. Prints the number of files.
against() {
	local f n=0 rft
	while IFS= read -r f; do
		rft=()
		[[ $f == vmlinux ]] && rft=(--run-file-trampoline)
		"$ftpatch" verify "${rft[@]}" --against "$1/$f" "$2/$f" >"$out/against.out" 2>&1 ||
			{ cat "$out/against.out" >&2; fail "ftpatch verify ${rft[*]} --against $1/$f $2/$f"; }
		n=$((n + 1))
	done < <(cd "$2" && find . -type f | sed 's|^\./||' | LC_ALL=C sort)
	echo "$n"
}

# --- 1. scan the whole tree ---------------------------------------------------
# One JSON object per file, then the run's summary (sites, problems by code)
# as the last line; saved as the job's report.
rc=0
"$ftpatch" scan --check --json "$build" >"$out/scan.jsonl" 2>"$out/scan.err" || rc=$?
case $rc in
0) say "scan: $(sed -n 's/^summary: scan: //p' "$out/scan.err"), no findings" ;;
1)
	# Site problem codes, counted from the JSON report ("problems":[codes]).
	sitecodes() { grep -o '"problems":\[[^]]*\]' "$out/scan.jsonl" | sed 's/^"problems":\[//' | grep -o '"[a-z-]*"' | tr -d '"'; }
	say "scan: findings: $(sitecodes | sort | uniq -c | awk '{ printf "%s%s: %s", sep, $2, $1; sep = ", " }')"
	for code in $(sitecodes | sort -u); do
		if [[ " ${tolerate[*]} " == *" $code "* ]]; then
			say "scan: tolerated: $code"
			continue
		fi
		files=$(grep "\"$code\"" "$out/scan.jsonl" | grep -o '^{"ftpatch":"[^"]*","file":"[^"]*"' | cut -d'"' -f8 | tr '\n' ' ')
		fail "scan: $code in: $files(see $out/scan.jsonl and docs/kernel-ci.md)"
	done
	;;
*)
	cat "$out/scan.err" >&2
	die "scan could not read the tree (exit $rc)"
	;;
esac

# Call-ops sites take an ops in the literal; classic sites have none.
opsargs=() defargs=()
if grep -q '"layout":"call-ops' "$out/scan.jsonl"; then
	say "layout: call-ops: enable with $ops, idle $default_ops"
	opsargs=(--ops "$ops")
	defargs=(--default-ops "$default_ops")
else
	say "layout: classic: no literal, no ops"
fi
funcargs=()
for g in "${funcs[@]}" "${module_funcs[@]}"; do funcargs+=(--func "$g"); done
# Functions with a tolerated problem are left as built, by every patch
# command below (one name a line: --exclude-file).
awk '{ n = split($0, s, /\{"func":"/); for (i = 2; i <= n; i++) if (s[i] ~ /"problems":\["/) { f = s[i]; sub(/".*/, "", f); if (f != "") print f } }' \
	"$out/scan.jsonl" | LC_ALL=C sort -u >"$out/leave.txt"
leave=()
if [[ -s $out/leave.txt ]]; then
	leave=(--exclude-file "$out/leave.txt")
	say "left as built: $(wc -l <"$out/leave.txt") functions with a tolerated problem (by name, in every file): $(head -n 5 "$out/leave.txt" | paste -sd ' ')"
fi

# --- 2. every site, in one run each ------------------------------------------------
# init, as the kernel does at boot (ftrace_init_nop on every record): the
# idle ops in each literal (in modules through an R_AARCH64_ABS64
# relocation), MOV X9, X30 after each entry. --allow-absolute: the
# relocatable vmlinux has no dynamic relocation for a literal, so the ops
# address is stored as linked (the kernel relocates itself before ftrace
# patches anything; see docs/kernel-ci.md).
run init init init "${defargs[@]}" --allow-absolute "${leave[@]}" "${plain[@]}" -o "$out/init" "$build"
# enable --init: every site of vmlinux and every module traced, straight
# from the build output, in one pass per file.
run all "enable --init (every site)" enable --init "${opsargs[@]}" --allow-absolute "${leave[@]}" "${plain[@]}" -o "$out/all" "$build"
# Each site on the CPU: vmlinux's through the kernel's own ftrace_caller;
# the modules', which reach ftrace_caller through a relocation, through
# ftpatch's trampoline standing in for it.
run verify-vmlinux "verify vmlinux (its own ftrace_caller)" verify --run-file-trampoline "$out/all/vmlinux"
run verify-modules "verify the rest (ftpatch's trampoline)" verify --exclude-path vmlinux "$out/all"

# --- 3. a few functions, live -----------------------------------------------------
# From the boot state, trace FUNCS and MODULE_FUNCS; each change must be one
# a running kernel may take (the literal, then NOP -> BL).
run traced "enable ${funcs[*]}${module_funcs[*]:+ ${module_funcs[*]}}" enable "${opsargs[@]}" --allow-absolute "${leave[@]}" "${funcargs[@]}" -o "$out/traced" "$out/init"
n=$(against "$out/init" "$out/traced")
say "live-safe: init -> traced, $n files"

# --- 4. undo ----------------------------------------------------------------------
# disable every site: BL := NOP, then the idle ops. vmlinux comes back to
# init's bytes exactly; a module keeps the symbols enable added, so its
# change is proven live-safe instead.
run off disable disable "${defargs[@]}" --allow-absolute -o "$out/off" "$out/all"
cmp -s "$out/init/vmlinux" "$out/off/vmlinux" || fail "disable did not give init's vmlinux back"
n=$(against "$out/all" "$out/off")
say "disable: vmlinux = init's bytes (cmp); live-safe: all -> off, $n files"

# --- 5. the tree as built -------------------------------------------------------------
# Every site of every file, compressed modules included, in its state as built.
run verify-build "verify $build (as built)" verify "$build"
say "OK"

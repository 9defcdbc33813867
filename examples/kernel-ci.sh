#!/usr/bin/env bash
# kernel-ci.sh BUILD_DIR [FTPATCH]
#
# An example CI job for a cross-compiled arm64 kernel built with
# CONFIG_DYNAMIC_FTRACE_WITH_CALL_OPS (-fpatchable-function-entry=4,2): scan
# the whole build tree, then patch the image and each module for tracing a
# subset of functions, prove each step on Unicorn's arm64 CPU, prove that the
# patch may be applied to running code, and undo it. docs/kernel-ci.md
# explains each step; internal/cli/kernelflow_test.go runs this script on
# the kernel-like build of scripts/kernel-build.sh.
#
# BUILD_DIR holds vmlinux and the modules (any depth; .ko.xz/.zst/.gz are
# scanned and verified, but only plain .ko files are patched). FTPATCH is the
# ftpatch binary (default: ftpatch in PATH). Environment:
#
#   OUT           where reports and patched copies go (default ./ftpatch-ci;
#                 keep it outside BUILD_DIR, or the next scan reads it too)
#   OPS           ops symbol to enable with                (default ops)
#   DEFAULT_OPS   idle ops for the modules' literals        (default ftrace_nop_ops)
#   FUNCS         globs of image functions to trace         (default 'sched_*')
#   MODULE_FUNCS  globs of module functions to trace        (default 'drv_*')
#   TOLERATE      problem codes that do not fail the job    (default misaligned-literal;
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
build=$1
ftpatch=${2:-ftpatch}
out=${OUT:-./ftpatch-ci}
ops=${OPS:-ops}
default_ops=${DEFAULT_OPS:-ftrace_nop_ops}
read -r -a funcs <<<"${FUNCS:-sched_*}"
read -r -a module_funcs <<<"${MODULE_FUNCS:-drv_*}"
read -r -a tolerate <<<"${TOLERATE:-misaligned-literal}"

[[ -d $build ]] || die "$build: no such build folder"
[[ -f $build/vmlinux ]] || die "$build: no vmlinux"
command -v "$ftpatch" >/dev/null || die "$ftpatch: not found"
mkdir -p "$out"

# funcargs FLAG GLOB...: FLAG GLOB for each glob, into the array fa.
funcargs() {
	local flag=$1
	shift
	fa=()
	for g in "$@"; do fa+=("$flag" "$g"); done
}

# patch CMD ARGS...: a patch command; any failure is exit 2 (input error or
# refusal: a patch command writes nothing when it fails). Its summary line
# (stdout) and its report of skipped sites (stderr) are kept.
patch() {
	local rc=0
	"$ftpatch" "$@" >"$out/patch.out" 2>"$out/patch.err" || rc=$?
	if ((rc != 0)); then
		cat "$out/patch.err" >&2
		die "ftpatch $* (exit $rc)"
	fi
	# "ftpatch: file F: skipped function NAME at ADDR: CODE"; init skips
	# the sites enable skips after it, which reports them.
	[[ $1 == init ]] ||
		sed -n 's/.*skipped function \([^ ]*\) at .*: \([a-z-]*\)$/kernel-ci: skipped: \1 (\2)/p' "$out/patch.err"
}

# check NAME CMD ARGS...: a verify; exit 1 is a finding, anything else an error.
check() {
	local name=$1 rc=0
	shift
	"$ftpatch" "$@" >"$out/$name.txt" 2>&1 || rc=$?
	case $rc in
	0) ;;
	1) cat "$out/$name.txt" >&2; fail "ftpatch $*" ;;
	*) cat "$out/$name.txt" >&2; die "ftpatch $* (exit $rc)" ;;
	esac
}

# --- 1. scan the whole tree ---------------------------------------------------
# One JSON object per ELF file (compressed modules included), saved as the
# job's report; the summary by problem code goes to stderr.
rc=0
"$ftpatch" scan --check --json "$build" >"$out/scan.jsonl" 2>"$out/scan.err" || rc=$?
case $rc in
0) say "scan: $(wc -l <"$out/scan.jsonl") files, no findings" ;;
1)
	# Site problem codes, counted from the JSON report ("problems":[codes]).
	sitecodes() { grep -o '"problems":\[[^]]*\]' "$out/scan.jsonl" | sed 's/^"problems":\[//' | grep -o '"[a-z-]*"' | tr -d '"'; }
	say "scan: findings: $(sitecodes | sort | uniq -c | awk '{ printf "%s%s: %s", sep, $2, $1; sep = ", " }')"
	for code in $(sitecodes | sort -u); do
		if [[ " ${tolerate[*]} " == *" $code "* ]]; then
			say "scan: tolerated: $code"
			continue
		fi
		files=$(grep "\"$code\"" "$out/scan.jsonl" | grep -o '^{"file":"[^"]*"' | cut -d'"' -f4 | tr '\n' ' ')
		fail "scan: $code in: $files(see $out/scan.jsonl and docs/kernel-ci.md)"
	done
	;;
*)
	cat "$out/scan.err" >&2
	die "scan could not read the tree (exit $rc)"
	;;
esac

# --- 2. the image ---------------------------------------------------------------
# init leaves the image's literals 0 (a NULL ops: the trampoline returns at
# once). --allow-absolute: the relocatable vmlinux has no dynamic relocation
# for a literal, so the ops address is stored as linked (the kernel relocates
# itself before ftrace patches anything; see docs/kernel-ci.md).
patch init --skip-misaligned -o "$out/vmlinux.init" "$build/vmlinux"
funcargs --func "${funcs[@]}"
patch enable --ops "$ops" --allow-absolute --skip-misaligned "${fa[@]}" -o "$out/vmlinux.traced" "$out/vmlinux.init"
say "enable vmlinux: $(cat "$out/patch.out")"
check verify-vmlinux verify "$out/vmlinux.traced"
say "verify: ok: vmlinux.traced"
check against-vmlinux-enable verify --against "$out/vmlinux.init" "$out/vmlinux.traced"
say "live-safe: vmlinux.init -> vmlinux.traced"
patch disable -o "$out/vmlinux.off" "$out/vmlinux.traced"
cmp -s "$out/vmlinux.init" "$out/vmlinux.off" || fail "disable did not give the init image back"
check against-vmlinux-disable verify --against "$out/vmlinux.traced" "$out/vmlinux.off"
say "live-safe: vmlinux.traced -> vmlinux.off"

# --- 3. the modules ---------------------------------------------------------------
# Relocatable: the literal gets an R_AARCH64_ABS64 relocation against the
# ops, the BL an R_AARCH64_CALL26 against ftrace_caller, so any symbol works.
# Compressed modules are only scanned and verified: ftpatch refuses to patch
# them (decompress, patch, recompress).
funcargs --func "${module_funcs[@]}"
n=0
while IFS= read -r -d '' ko; do
	name=$(basename "$ko")
	patch init --default-ops "$default_ops" --skip-misaligned -o "$out/$name.init" "$ko"
	patch enable --ops "$ops" --skip-misaligned "${fa[@]}" -o "$out/$name.traced" "$out/$name.init"
	say "enable $name: $(cat "$out/patch.out")"
	check "verify-$name" verify "$out/$name.traced"
	say "verify: ok: $name.traced"
	check "against-$name-enable" verify --against "$out/$name.init" "$out/$name.traced"
	say "live-safe: $name.init -> $name.traced"
	patch disable --default-ops "$default_ops" -o "$out/$name.off" "$out/$name.traced"
	check "against-$name-disable" verify --against "$out/$name.traced" "$out/$name.off"
	say "live-safe: $name.traced -> $name.off"
	n=$((n + 1))
done < <(find "$build" -name '*.ko' -type f -print0 | sort -z)

# --- 4. the shipped tree as it is ----------------------------------------------------
# Every site of every file, compressed modules included, in its current state.
check verify-tree verify "$build"
say "verify: ok: $build ($n modules patched)"
say "OK"

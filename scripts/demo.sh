#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# demo.sh: `make demo`. The whole job on the program shipped in
# testdata/src/e2e, in build/demo/ (git-ignored): compile with patch sites,
# link with the trampoline ftpatch emits, scan, run, init, enable, show, run
# (every call counted), verify, verify --against, disable, run (as before),
# and a planted defect that verify must catch. Each claim the demo makes is
# checked; any failed step or check exits non-zero.
#
# Needs bin/ftpatch (make build), aarch64-linux-gnu-gcc and qemu-aarch64
# (scripts/deps.sh installs them). CC=clang-style overrides are not offered:
# the end-to-end tests cover Clang.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
FTPATCH=${FTPATCH:-$root/bin/ftpatch}
CC=aarch64-linux-gnu-gcc
READELF=aarch64-linux-gnu-readelf
SYSROOT=/usr/aarch64-linux-gnu
dir=$root/build/demo
src=../../testdata/src/e2e # as seen from $dir, so the commands shown are short

rm -rf "$dir"
mkdir -p "$dir"
cd "$dir"

# ftpatch: the binary under test, shown as plain `ftpatch` in the transcript.
ftpatch() { "$FTPATCH" "$@"; }
# step TITLE: a narration header.
step() { printf '\n== %s\n' "$*"; }
# run CMD...: show the command, then run it.
run() { printf '$ %s\n' "$*"; "$@"; }
# fail MSG: stop the demo.
fail() { echo "demo: FAILED: $*" >&2; exit 1; }
# qemu PROG: run PROG under qemu-aarch64; its stdout goes to PROG.out and
# the counter's report (stderr) to PROG.err, both shown.
qemu() {
	printf '$ qemu-aarch64 -L %s ./%s\n' "$SYSROOT" "$1"
	qemu-aarch64 -L "$SYSROOT" "./$1" >"$1.out" 2>"$1.err" || fail "$1 exited $?"
	sed 's/^/  /' "$1.out"
	sed 's/^/  (stderr) /' "$1.err"
}
# file_offset FILE ADDR: the file offset of virtual address ADDR in .text.
file_offset() {
	local addr off
	read -r addr off < <($READELF -S -W "$1" | sed 's/^ *\[ *[0-9]*\]//' | awk '$1 == ".text" { print $3, $4 }')
	echo $(($2 - 16#$addr + 16#$off))
}
# call_site FILE FUNC: FUNC's call site (where the BL goes), from scan --json.
call_site() {
	ftpatch scan --json "$1" | grep -o "\"func\":\"$2\",\"section\":\"[^\"]*\",\"entry\":\"[^\"]*\",\"call_site\":\"[^\"]*\"" |
		sed 's/.*"call_site":"\([^"]*\)"/\1/'
}
# poke FILE ADDR HEX8: write one little-endian instruction word at ADDR.
poke() {
	local w=$3
	printf "\\x${w:6:2}\\x${w:4:2}\\x${w:2:2}\\x${w:0:2}" |
		dd of="$1" bs=1 seek="$(file_offset "$1" "$2")" conv=notrunc status=none
}

step "1. Compile prog.c with patch sites (4,2: two NOPs before each entry, two after; BTI), counter.c without"
run $CC -O2 -fpatchable-function-entry=4,2 -falign-functions=8 -mbranch-protection=standard -c $src/prog.c -o prog.o
run $CC -O2 -mbranch-protection=standard -c $src/counter.c -o counter.o

step "2. Emit the common trampoline (encoded by ftpatch; no assembler) and link"
run ftpatch trampoline -o tramp.o
run $CC -no-pie -o prog prog.o tramp.o counter.o

step "3. Scan: every patch site, as compiled"
run ftpatch scan prog

step "4. Run the unpatched program: no traced calls"
qemu prog
grep -q '^ftrace-count' prog.err && fail "the unpatched program traced calls"

step "5. init (as Linux's ftrace_init_nop): literal := 0, MOV X9,X30 after the entry; keep this copy"
run ftpatch init -o prog.init prog
run ftpatch scan prog.init

step "6. enable: literal := &ops, then BL ftrace_caller"
run ftpatch enable --ops ops -o prog.traced prog.init
run ftpatch show --func e2e_add prog.traced

step "7. Run the traced program: same output, every call counted through its own ops"
qemu prog.traced
cmp -s prog.out prog.traced.out || fail "traced output differs from the unpatched output"
echo "ok: stdout identical to the unpatched run"
# The known call counts of prog.c (see its header), checked per function.
declare -A want=([main]=1 [e2e_add]=12 [e2e_mul]=6 [e2e_fib]=177 [e2e_sum8]=3 [e2e_square]=5 [e2e_weak]=2 [e2e_struct]=4)
printf '  %-12s %-10s %6s %6s\n' function call_site calls want
for fn in main e2e_add e2e_mul e2e_fib e2e_sum8 e2e_square e2e_weak e2e_struct; do
	cs=$(call_site prog.traced "$fn")
	[[ -n $cs ]] || fail "no site for $fn"
	n=$(awk -v ip="$cs" '$1 == "ftrace-count" && $2 == ip { print $3 }' prog.traced.err)
	printf '  %-12s %-10s %6s %6s\n' "$fn" "$cs" "${n:-0}" "${want[$fn]}"
	[[ ${n:-0} == "${want[$fn]}" ]] || fail "$fn counted ${n:-0} calls, want ${want[$fn]}"
done
grep -qx 'ftrace-bad 0' prog.traced.err || fail "calls with a wrong op or parent_ip"
echo "ok: every function counted exactly its known calls; no call with a wrong op"

step "8. verify on Unicorn's arm64 CPU, and --against the init copy (is the change live-safe?)"
run ftpatch verify prog.traced
run ftpatch verify --against prog.init prog.traced

step "9. disable (in place): BL := NOP, literal := 0; the init bytes come back exactly"
run ftpatch disable prog.traced
run cmp prog.traced prog.init
echo "ok: disabled file is byte-identical to the init copy"
qemu prog.traced
cmp -s prog.out prog.traced.out || fail "disabled output differs from the unpatched output"
grep -q '^ftrace-count' prog.traced.err && fail "the disabled program traced calls"
echo "ok: unpatched behaviour back (same stdout, no traced calls)"

step "10. A planted defect: verify must fail (exit 1) and name the functions"
run ftpatch enable --ops ops -o prog.bad prog.init
bl=$(call_site prog.bad e2e_mul)
mov=$(( $(call_site prog.bad e2e_fib) - 4 ))
echo "# e2e_mul: BL at $bl retargeted 0x20 further (imm26 + 8); e2e_fib: MOV X9,X30 at $(printf '%#x' $mov) := NOP"
word=$(od -An -tx4 -j "$(file_offset prog.bad "$bl")" -N4 prog.bad | tr -d ' ')
poke prog.bad "$bl" "$(printf '%08x' $((16#$word + 8)))"
poke prog.bad "$mov" d503201f
rc=0
run ftpatch verify prog.bad || rc=$?
((rc == 1)) || fail "verify of the planted defect exited $rc, want 1"
echo "ok: verify exit status 1"

step "11. The seed's other layout, 5,3: three NOPs before the entry, so no function needs 8-byte alignment"
run $CC -O2 -fpatchable-function-entry=5,3 -mbranch-protection=standard -c $src/prog.c -o prog53.o
run $CC -no-pie -o prog53 prog53.o tramp.o counter.o
run ftpatch enable --init --ops ops -o prog53.traced prog53
ftpatch scan --check prog53.traced >/dev/null || fail "scan --check of the 5,3 program found problems"
layouts=$(ftpatch scan --json prog53.traced | grep -o '"layout":"[^"]*"' | sort -u)
[[ $layouts == '"layout":"call-ops-5-3"' ]] || fail "5,3 program: layouts $layouts, want call-ops-5-3 only"
echo "ok: every site is call-ops-5-3 and scan --check is clean"
# BTI entries at 4 mod 8 find their literal at X30-24, the others at X30-16:
# the first BL to the trampoline's second entry, the rest to the first.
shown=$(ftpatch show prog53.traced)
grep -q '<ftrace_caller_lit24>$' <<<"$shown" || fail "5,3: no site calls ftrace_caller_lit24"
grep -q '<ftrace_caller>$' <<<"$shown" || fail "5,3: no site calls ftrace_caller"
echo "ok: $(grep -c '<ftrace_caller_lit24>$' <<<"$shown") sites call ftrace_caller_lit24 (BTI, entry 4 mod 8), $(grep -c '<ftrace_caller>$' <<<"$shown") call ftrace_caller"
qemu prog53
qemu prog53.traced
cmp -s prog53.out prog53.traced.out || fail "5,3: traced output differs from the unpatched output"
cmp -s prog.out prog53.out || fail "5,3: output differs from the 4,2 program's"
for fn in main e2e_add e2e_mul e2e_fib e2e_sum8 e2e_square e2e_weak e2e_struct; do
	cs=$(call_site prog53.traced "$fn")
	n=$(awk -v ip="$cs" '$1 == "ftrace-count" && $2 == ip { print $3 }' prog53.traced.err)
	[[ ${n:-0} == "${want[$fn]}" ]] || fail "5,3: $fn counted ${n:-0} calls, want ${want[$fn]}"
done
grep -qx 'ftrace-bad 0' prog53.traced.err || fail "5,3: calls with a wrong op or parent_ip"
echo "ok: same output, every function counted exactly its known calls"
run ftpatch verify prog53.traced

printf '\ndemo: all steps passed (files in %s)\n' "${dir#"$root"/}"

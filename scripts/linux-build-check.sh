#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# linux-build-check.sh [FTPATCH]
#
# ftpatch on real Linux build trees, as a CI job has them after
# `make ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- vmlinux modules`
# (`make kernel-build-check`; opt-in, never part of `make test` or CI).
# Not to be confused with scripts/kernel-build.sh, which builds the small
# kernel-like fixture of the tests.
#
#   1. scripts/linux-source.sh: Debian's linux-source-6.12, fetched and
#      unpacked once into CACHE/linux-source (default CACHE: build/kernels).
#   2. scripts/linux-build.sh: tinyconfig + scripts/linux-config/common.config
#      + FLAVOUR.config, built out of tree into CACHE/linux-build/FLAVOUR,
#      once (the next run reuses the tree while its stamp holds):
#        classic-gcc    GCC 12 -Os: classic -fpatchable-function-entry=2
#        callops-gcc    GCC 12 -O2: CALL_OPS (4,2), BTI landing pads, RELA-relocatable
#        callops-clang  clang/lld (LLVM=1): CALL_OPS, BTI_KERNEL, RELR-relocatable
#      and checks what each flavour promises: its .config, the layout of
#      every site, BTI at the entries or none.
#   3. An oracle not written here (nm, readelf, od, awk): the kernel's own
#      record counts, vmlinux's non-zero mcount entries (__start_mcount_loc ..
#      __stop_mcount_loc, each value in place or, in a RELA-relocatable image,
#      the addend of its R_AARCH64_RELATIVE relocation) and each module's
#      __patchable_function_entries entries; `ftpatch scan --json TREE` must
#      give exactly these counts, file by file.
#   4. examples/kernel-ci.sh on the build tree: scan --check, init and
#      enable --init of vmlinux and every module in one run each, verify
#      --run-file-trampoline (the kernel's own ftrace_caller), verify
#      --against, disable (= init's bytes), verify of the tree as built.
#
# Every step prints its time; the script stops at the first one that does
# not do what it must, and ends with a table per flavour. FLAVOURS (default
# all three) picks flavours; JOBS the build's -j (default: CPUs).
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")/.." && pwd)
ftpatch=${1:-$here/bin/ftpatch}
cache=${CACHE:-$here/build/kernels}
read -r -a flavours <<<"${FLAVOURS:-classic-gcc callops-gcc callops-clang}"
# shellcheck source=scripts/linux-build.sh
. "$here/scripts/linux-build.sh"

[[ -x $ftpatch ]] || { echo "$0: $ftpatch: not an executable (make build)" >&2; exit 2; }
ftpatch=$(cd "$(dirname "$ftpatch")" && pwd)/$(basename "$ftpatch")
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
nm=aarch64-linux-gnu-nm
readelf=aarch64-linux-gnu-readelf
for tool in "$nm" "$readelf" od awk; do
	command -v "$tool" >/dev/null || { echo "$0: $tool not found (scripts/deps.sh)" >&2; exit 2; }
done

# What each flavour is: make variables, the layout every site must have,
# whether entries carry BTI, the ops to enable with ("" for classic).
declare -A makevars=(
	[classic-gcc]=""
	[callops-gcc]="KCFLAGS=-mbranch-protection=pac-ret+bti"
	[callops-clang]="LLVM=1"
)
declare -A want_layout=([classic-gcc]=classic [callops-gcc]=call-ops [callops-clang]=call-ops)
declare -A want_bti=([classic-gcc]=no [callops-gcc]=yes [callops-clang]=yes)
declare -A ops=([classic-gcc]="" [callops-gcc]=ftrace_list_ops [callops-clang]=ftrace_list_ops)
# Functions the example traces: in the image, and in ext4/vfat/fat.
image_funcs=${FUNCS:-vfs_* ksys_*}
module_funcs=${MODULE_FUNCS:-ext4_file_* ext4_readdir vfat_* fat_get_block}

declare -a summary=()
t_all=$EPOCHREALTIME
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
die() { echo "linux-build-check: FAIL: $*" >&2; exit 1; }

# --- 1. sources ---------------------------------------------------------------
echo "=== sources: Debian's linux-source-6.12 (scripts/linux-source.sh)"
t0=$EPOCHREALTIME
src=$("$here/scripts/linux-source.sh" "$cache" 2>"$cache/linux-source.log") || { cat "$cache/linux-source.log" >&2; exit 2; }
echo "   $src ($(since "$t0")s; fetched and unpacked once)"
summary+=("$(printf '%-14s %-44s %8ss' all "sources (fetch + unpack, or reuse)" "$(since "$t0")")")

# --- the oracle -----------------------------------------------------------------

# oracle_vmlinux VMLINUX: "SLOTS NONZERO" of the mcount table. A slot's value
# is the addend of the R_AARCH64_RELATIVE relocation at it, if any (the
# kernel links a relocatable image --no-apply-dynamic-relocs, so with RELA the
# slot itself holds 0 and scripts/sorttable sorts the addends), else the 8
# bytes in place (non-relocatable, or RELR, whose addends are in place).
# scripts/sorttable zeroes the records outside every function (overridden
# weak functions): those are not sites.
oracle_vmlinux() {
	local v=$1 start stop line off=
	read -r start stop < <("$nm" "$v" | awk '$3 == "__start_mcount_loc" { a = $1 } $3 == "__stop_mcount_loc" { b = $1 } END { print a, b }')
	[[ -n $start && -n $stop ]] || { echo "oracle: $v: no __start_mcount_loc/__stop_mcount_loc" >&2; return 1; }
	local n=$(((0x$stop - 0x$start) / 8))
	# The file offset of __start_mcount_loc, through the section headers
	# (bash arithmetic: kernel addresses need all 64 bits, awk has 53).
	while read -r line; do
		line=${line#*]}
		local typ va o sz
		read -r _ typ va o sz _ <<<"$line"
		[[ $typ == NOBITS || ! $va =~ ^[0-9a-f]+$ || ! $sz =~ ^[0-9a-f]+$ ]] && continue
		((0x$va != 0)) || continue
		local d=$((0x$start - 0x$va))
		if ((d >= 0 && d < 0x$sz)); then off=$((0x$o + d)); break; fi
	done < <("$readelf" -SW "$v" | grep '^ *\[ *[0-9]')
	[[ -n $off ]] || { echo "oracle: $v: __start_mcount_loc is in no section" >&2; return 1; }
	local i a addrs=()
	for ((i = 0; i < n; i++)); do
		printf -v a '%016x' $((0x$start + 8 * i))
		addrs+=("$a")
	done
	# readelf -rW: "OFFSET INFO R_AARCH64_RELATIVE ADDEND" (no symbol).
	# od -tx8 reads the host's byte order: little-endian, as the file.
	awk 'FNR == 1 { f++ }
		f == 1 && $3 == "R_AARCH64_RELATIVE" { rel[$1] = $4; next }
		f == 2 { addr[FNR] = $1; next }
		f == 3 { for (i = 1; i <= NF; i++) { k++; v = (addr[k] in rel) ? rel[addr[k]] : $i; if (v !~ /^0+$/) nz++ } }
		END { print k, nz + 0 }' \
		<("$readelf" -rW "$v" 2>/dev/null) <(printf '%s\n' "${addrs[@]}") <(od -An -v -tx8 -j "$off" -N $((n * 8)) "$v")
}

# oracle_module KO: the entries of its __patchable_function_entries (each
# section's size / 8, cross-checked against its relocations).
oracle_module() {
	local ko=$1 size=0 rel=0 line
	while read -r line; do
		line=${line#*]}
		local name sz
		read -r name _ _ _ sz _ <<<"$line"
		[[ $name == __patchable_function_entries ]] && size=$((size + 0x$sz))
	done < <("$readelf" -SW "$ko" | grep '^ *\[ *[0-9]')
	rel=$("$readelf" -rW "$ko" | awk '/^Relocation section .\.rela__patchable_function_entries. / { n += $(NF - 1) } END { print n + 0 }')
	((size / 8 == rel)) || { echo "oracle: $ko: __patchable_function_entries holds $((size / 8)) entries but $rel relocations" >&2; return 1; }
	echo $((size / 8))
}

# ftpatch_counts JSONL TREE: "PATH SITES LAYOUTS BTI PROBLEMS" per file line
# of scan --json (PATH relative to TREE; LAYOUTS the distinct layouts).
ftpatch_counts() {
	awk -v tree="$2/" '
		/"file":/ && !/"error":/ {
			f = $0; sub(/^.*"file":"/, "", f); sub(/".*$/, "", f)
			if (index(f, tree) == 1) f = substr(f, length(tree) + 1)
			line = $0; n = gsub(/"entry":/, "", line)
			line = $0; b = gsub(/"bti":true/, "", line)
			delete seen; lay = ""
			line = $0
			while (match(line, /"layout":"[a-z0-9-]*"/)) {
				l = substr(line, RSTART + 10, RLENGTH - 11); line = substr(line, RSTART + RLENGTH)
				if (!(l in seen)) { seen[l] = 1; lay = lay (lay == "" ? "" : ",") l }
			}
			p = $0; sub(/^.*"problems":/, "", p); sub(/[^0-9].*$/, "", p)
			print f, n, (lay == "" ? "-" : lay), b, p
		}' "$1"
}

# --- 2-4. each flavour -------------------------------------------------------------
for flavour in "${flavours[@]}"; do
	[[ -v makevars[$flavour] ]] || { echo "$0: no flavour '$flavour' (${!makevars[*]})" >&2; exit 2; }
	tree=$cache/linux-build/$flavour
	echo
	echo "=== $flavour: build (scripts/linux-build.sh; reused when built already)"
	mkdir -p "$cache/linux-build"
	fragment=$cache/linux-build/$flavour.config
	cat "$here/scripts/linux-config/common.config" "$here/scripts/linux-config/$flavour.config" >"$fragment"
	read -r -a mv <<<"${makevars[$flavour]}"
	t0=$EPOCHREALTIME
	linux_build "$src" "$tree" "$fragment" "${mv[@]}" || die "$flavour: build"
	read -r bwall bcpu <"$tree/build.time"
	summary+=("$(printf '%-14s %-44s %8ss  (built in %ss wall, %ss cpu; %s MB)' "$flavour" "build (or reuse)" "$(since "$t0")" "$bwall" "$bcpu" "$(du -sm "$tree" | cut -f1)")")
	cc=$(sed -n 's/^cc: //p' "$tree/.done")
	echo "   $cc; $(grep -c . "$tree/modules.order") modules; vmlinux $(($(stat -c %s "$tree/vmlinux") / 1048576)) MiB"

	# The BTI promise, from the modules' GNU property notes (the compiler
	# marks each object built with BTI landing pads; the link keeps the mark
	# only when every object has it).
	if [[ ${want_bti[$flavour]} == yes ]]; then
		"$readelf" -nW "$tree/fs/ext4/ext4.ko" | grep -q 'AArch64 feature: .*BTI' || die "$flavour: fs/ext4/ext4.ko has no BTI property note: not built with BTI landing pads"
	fi

	echo "=== $flavour: the kernel's record counts (nm, readelf, od, awk) against ftpatch scan"
	t0=$EPOCHREALTIME
	declare -A oracle=()
	read -r slots nz < <(oracle_vmlinux "$tree/vmlinux")
	oracle[vmlinux]=$nz
	mods=0 modsites=0
	while read -r o; do
		ko=${o%.o}.ko
		[[ -f $tree/$ko ]] || die "$flavour: modules.order lists $o but $ko is not there"
		oracle[$ko]=$(oracle_module "$tree/$ko")
		mods=$((mods + 1)) modsites=$((modsites + oracle[$ko]))
	done <"$tree/modules.order"
	echo "   oracle: vmlinux $nz records ($slots slots, $((slots - nz)) zeroed at build time); $mods modules, $modsites records ($(since "$t0")s)"
	summary+=("$(printf '%-14s %-44s %8ss' "$flavour" "oracle (nm/readelf/od/awk)" "$(since "$t0")")")

	work=$cache/linux-build/work/$flavour
	rm -rf "$work"
	mkdir -p "$work"
	t0=$EPOCHREALTIME
	rc=0
	"$ftpatch" scan --json "$tree" >"$work/scan.jsonl" 2>"$work/scan.err" || rc=$?
	((rc == 0)) || { cat "$work/scan.err" >&2; die "$flavour: ftpatch scan --json $tree: exit $rc"; }
	summary+=("$(printf '%-14s %-44s %8ss' "$flavour" "ftpatch scan --json TREE" "$(since "$t0")")")
	declare -A got=()
	bad=0 files=0 sites=0 btis=0
	while read -r f n lay b p; do
		got[$f]=$n
		files=$((files + 1)) sites=$((sites + n)) btis=$((btis + b))
		if [[ -z ${oracle[$f]:-} ]]; then
			echo "   ftpatch read $f, which is not vmlinux nor in modules.order"
			bad=1
			continue
		fi
		if ((n != oracle[$f])); then
			echo "   $f: ftpatch $n sites, the kernel has ${oracle[$f]} records"
			bad=1
		fi
		if ((n > 0)) && [[ $lay != "${want_layout[$flavour]}" ]]; then
			echo "   $f: layouts $lay, want ${want_layout[$flavour]} only"
			bad=1
		fi
		((p == 0)) || { echo "   $f: $p problems"; bad=1; }
	done < <(ftpatch_counts "$work/scan.jsonl" "$tree")
	for f in "${!oracle[@]}"; do
		[[ -v got[$f] ]] || { echo "   $f: not read by ftpatch scan (the kernel has ${oracle[$f]} records)"; bad=1; }
	done
	((bad == 0)) || die "$flavour: ftpatch scan does not match the kernel (see $work/scan.jsonl)"
	case ${want_bti[$flavour]} in
	yes) ((btis > 0)) || die "$flavour: no site has BTI C at its entry" ;;
	no) ((btis == 0)) || die "$flavour: $btis sites have BTI C at their entry, none should" ;;
	esac
	echo "   ok: ftpatch = the kernel, file by file: vmlinux ${got[vmlinux]}, modules $((sites - got[vmlinux])) in $((files - 1)) files; every site ${want_layout[$flavour]}; $btis with BTI C; 0 problems"
	summary+=("$(printf '%-14s %-44s %8s   vmlinux %s (%s slots), modules %s in %s' "$flavour" "sites: oracle = ftpatch" "" "$nz" "$slots" "$modsites" "$mods")")
	unset oracle got

	echo "=== $flavour: examples/kernel-ci.sh (each line: seconds since the job started)"
	t0=$EPOCHREALTIME
	rc=0
	read -r -a imf <<<"$image_funcs"
	read -r -a mof <<<"$module_funcs"
	set +e
	OUT=$work/ci OPS=${ops[$flavour]} DEFAULT_OPS=${ops[$flavour]:+ftrace_nop_ops} FUNCS="${imf[*]}" MODULE_FUNCS="${mof[*]}" \
		"$here/examples/kernel-ci.sh" "$tree" "$ftpatch" 2>&1 |
		while IFS= read -r line; do printf '   %6ss  %s\n' "$(since "$t0")" "$line"; done
	rc=${PIPESTATUS[0]}
	set -e
	((rc == 0)) || die "$flavour: examples/kernel-ci.sh exit $rc"
	summary+=("$(printf '%-14s %-44s %8ss' "$flavour" "examples/kernel-ci.sh TREE" "$(since "$t0")")")
	[[ ${KEEP:-0} == 1 ]] || rm -rf "$work"
done

echo
trees=()
for flavour in "${flavours[@]}"; do trees+=("$cache/linux-build/$flavour"); done
echo "=== summary ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); disk: $(du -sm "$cache/linux-source" | cut -f1) MB sources, $(du -csm "${trees[@]}" | tail -n1 | cut -f1) MB build trees)"
printf '%s\n' "${summary[@]}"
printf '%-14s %-44s %8ss\n' all "whole check" "$(since "$t_all")"
echo "linux-build-check: OK"

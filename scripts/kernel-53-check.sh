#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kernel-53-check.sh [FTPATCH]
#
# `make kernel-53-check` (opt-in: never part of `make test` or CI): the 5,3
# layout in Linux itself. It applies the patch series in linux/ to Debian's
# linux-source-6.12 (fetched once by scripts/linux-source.sh into CACHE,
# default build/kernels) and builds, out of tree, in CACHE/linux-build/:
#
#   53-gcc-bti          the series, GCC 12, in-kernel BTI (scripts/kernel-53/
#                       gcc-bti.config on top of 53.config and tinyconfig)
#   53-clang-kcfi       the series, clang-16 + lld-16 (LLVM=-16), CFI_CLANG
#   53-gcc-stock-caller the negative build: 53-gcc-bti with the series'
#                       sorttable fix but the stock ftrace_caller (also named
#                       ftrace_caller_lit24); a copy of 53-gcc-bti's tree,
#                       so it costs a relink
#   53-flag-only-gcc    Linux 6.12 unmodified but for the 5,3 flag, with a few
#                       modules (the issue's starting point)
#
# Then, for 53-gcc-bti and 53-clang-kcfi: boots each on qemu-system-aarch64
# -M virt -cpu max with an initramfs holding only scripts/kernel-53/init.c
# (static) and the list of functions to trace; the boot log must show
# ftrace's startup tests passing (`Testing tracer function: PASSED`, every
# other `Testing ...` line PASSED or OK) and each chosen function in the
# trace. The functions are chosen from ftpatch's scan so that both entry
# alignments and, with BTI, both trampoline entries are traced.
#
# ftpatch on each tree's vmlinux: scan --check (every record call-ops-5-3,
# entries at 0 and 4 mod 8, kCFI hashes in the clang tree, 0 problems, as
# many sites as the non-zero records readelf/od count), init --default-ops
# ftrace_nop_ops and enable --ops ftrace_list_ops of every site, verify
# --run-file-trampoline (the kernel's own ftrace_caller and
# ftrace_caller_lit24 run on every site), and verify --against the init
# copy. The negative tree must FAIL that verify, at exactly its lit24 sites.
# The starting point's vmlinux must get exit 1 (zeroed-entries) from scan
# --check, its modules scan clean with every record call-ops-5-3 and verify
# with ftpatch's own trampoline once enabled.
#
# Each tree has CACHE/linux-build/NAME/.done (a stamp: sources, series,
# fragment, tools); a second run reuses what is built and rebuilds
# incrementally what changed. Builds run under `nice -n 10` with -j JOBS
# (default: the number of CPUs). Writes build.time (wall, cpu seconds) in each
# tree and boot.log, boot.time next to it. The build function follows
# scripts/linux-build.sh's conventions (same stamp, build.time and config
# promises), so the two can become one.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")/.." && pwd)
ftpatch=${1:-$here/bin/ftpatch}
cache=${CACHE:-$here/build/kernels}
jobs=${JOBS:-$(nproc)}
k53=$here/scripts/kernel-53
[[ -x $ftpatch ]] || { echo "$0: $ftpatch: not an executable (make build)" >&2; exit 2; }
ftpatch=$(cd "$(dirname "$ftpatch")" && pwd)/$(basename "$ftpatch")
for t in aarch64-linux-gnu-gcc aarch64-linux-gnu-readelf aarch64-linux-gnu-nm clang-16 ld.lld-16 qemu-system-aarch64 patch; do
	command -v "$t" >/dev/null || { echo "$0: $t not found (scripts/deps.sh kernel-build kernel-53)" >&2; exit 2; }
done
series=("$here"/linux/0*.patch)
((${#series[@]} > 0)) || { echo "$0: no patches in $here/linux" >&2; exit 2; }
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
pristine=$("$here/scripts/linux-source.sh" "$cache")
trees=$cache/linux-build
mkdir -p "$trees"
# One run at a time over the same trees (make kernel-build-check's trees
# have their own locks).
exec 9>"$trees/53.lock"
flock -n 9 || { echo "$0: another kernel-53-check is running on $trees" >&2; exit 2; }
t_start=$EPOCHREALTIME

say() { echo "kernel-53: $*" >&2; }
die() {
	echo "kernel-53: FAIL: $*" >&2
	exit 1
}
secs() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }'; }

# ---------------------------------------------------------------- sources

# The files the series touches.
series_files() { sed -n 's|^+++ b/||p' "${series[@]}" | sort -u; }

# negative_edit FILE: the stock ftrace_caller under both names (the stock
# entry-ftrace.S, with ftrace_caller_lit24 at ftrace_caller's address).
negative_edit() {
	sed -i 's/^SYM_CODE_START(ftrace_caller)$/&\nSYM_INNER_LABEL(ftrace_caller_lit24, SYM_L_GLOBAL)/' "$1"
	grep -q '^SYM_INNER_LABEL(ftrace_caller_lit24, SYM_L_GLOBAL)$' "$1" || die "negative edit of $1 did not apply"
}

# gcc_bti_edit KCONFIG: Linux 6.12 offers ARM64_BTI_KERNEL only with Clang
# (GCC bug 106671: GCC 12 omits BTI C in static functions it calls directly,
# and a linker veneer reaching one by BR would fault). A kernel of a few MB
# has no veneer (every BL is in range), so the GCC tree lifts the
# restriction; the series itself does not touch it.
gcc_bti_edit() {
	sed -i '/^config ARM64_BTI_KERNEL$/,/^config /{/^\tdepends on !CC_IS_GCC$/d}' "$1"
	! sed -n '/^config ARM64_BTI_KERNEL$/,/^config /p' "$1" | grep -qx $'\tdepends on !CC_IS_GCC' || die "GCC BTI edit of $1 did not apply"
}

# flag_edit MAKEFILE: the issue's starting point, the 5,3 flag alone.
flag_edit() {
	sed -i 's/-fpatchable-function-entry=4,2/-fpatchable-function-entry=5,3/' "$1"
	grep -q -- '-fpatchable-function-entry=5,3' "$1" || die "5,3 flag edit of $1 did not apply"
}

# src_stamp MODE: what a source tree of MODE holds.
src_stamp() {
	echo "pristine: $pristine"
	echo "mode: $1"
	case $1 in series | gcc) cat "${series[@]}" | sha256sum | cut -d' ' -f1 ;; esac
	declare -f negative_edit gcc_bti_edit flag_edit | sha256sum | cut -d' ' -f1
}

# prepare_src DIR MODE: DIR holds the pristine sources (hard links) with
# real copies of the files MODE changes: series (the patches), gcc (the
# patches and gcc_bti_edit), flag (flag_edit only). A file whose content is
# already right is left alone, so that a rerun rebuilds only what changed.
prepare_src() {
	local dir=$1 mode=$2 stamp f
	stamp=$(src_stamp "$mode")
	[[ -f $dir/.k53-src && $(cat "$dir/.k53-src") == "$stamp" ]] && return 0
	say "$dir: preparing sources ($mode)"
	[[ -d $dir ]] || cp -al "$pristine" "$dir"
	local scratch
	scratch=$(mktemp -d "$trees/.scratch.XXXXXX")
	local files=(arch/arm64/Makefile arch/arm64/Kconfig)
	mapfile -t -O 2 files < <(series_files)
	[[ -f $dir/.k53-files ]] && mapfile -t -O "${#files[@]}" files <"$dir/.k53-files"
	mapfile -t files < <(printf '%s\n' "${files[@]}" | sort -u)
	for f in "${files[@]}"; do
		mkdir -p "$scratch/$(dirname "$f")"
		cp "$pristine/$f" "$scratch/$f"
	done
	case $mode in
	series | gcc)
		local p
		for p in "${series[@]}"; do
			patch -d "$scratch" -p1 -s --no-backup-if-mismatch <"$p" || die "$(basename "$p") does not apply to $pristine"
		done
		[[ $mode == gcc ]] && gcc_bti_edit "$scratch/arch/arm64/Kconfig"
		;;
	flag) flag_edit "$scratch/arch/arm64/Makefile" ;;
	esac
	for f in "${files[@]}"; do
		cmp -s "$scratch/$f" "$dir/$f" || cp --remove-destination "$scratch/$f" "$dir/$f"
	done
	printf '%s\n' "${files[@]}" >"$dir/.k53-files"
	rm -rf "$scratch"
	echo "$stamp" >"$dir/.k53-src"
}

# ----------------------------------------------------------------- builds

# config_check OUT FRAGMENT...: OUT/.config keeps every CONFIG_ line and
# `#promise` pattern of the fragments, and has no CONFIG_X of a
# `# CONFIG_X is not set` line.
config_check() {
	local out=$1 line sym bad=()
	shift
	while IFS= read -r line; do
		if [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
			! grep -q "^${BASH_REMATCH[1]}=" "$out/.config" || bad+=("$line")
		elif [[ $line =~ ^(#promise\ )?(CONFIG_[A-Za-z0-9_]+)=.*$ ]]; then
			sym=${BASH_REMATCH[2]}
			local want=${line#\#promise } have
			have=$(grep "^$sym=" "$out/.config" || true)
			# shellcheck disable=SC2053 # want is a pattern on purpose
			[[ -n $have && $have == $want ]] || bad+=("$line (.config: ${have:-nothing})")
		fi
	done < <(cat "$@")
	((${#bad[@]} == 0)) || die "$out/.config does not keep: ${bad[*]}"
}

# tools_stamp MAKEVAR...: the compiler and linker a build uses.
tools_stamp() {
	local cc=aarch64-linux-gnu-gcc ld=aarch64-linux-gnu-ld v
	for v in "$@"; do
		case $v in LLVM=-*) cc=clang${v#LLVM=} ld=ld.lld${v#LLVM=} ;; esac
	done
	echo "cc: $("$cc" --version | head -n1)"
	echo "ld: $("$ld" --version | head -n1)"
}

# build SRC NAME "TARGET..." FRAGMENT... -- MAKEVAR...: configure (tinyconfig
# plus the fragments, olddefconfig, checked) and build O=SRC/NAME, linked as
# CACHE/linux-build/NAME (the O= tree sits in its source tree so that kbuild
# names sources relatively: a copy of the tree over other sources rebuilds
# only what differs).
build() {
	local src=$1 name=$2 targets=$3
	shift 3
	local frags=() mk=()
	while (($#)) && [[ $1 != -- ]]; do frags+=("$1"); shift; done
	(($#)) && shift
	mk=(ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- "$@")
	local out=$src/$name stamp
	stamp=$(cat "$src/.k53-src"; cat "${frags[@]}" | sha256sum; echo "make: ${mk[*]} $targets"; tools_stamp "$@")
	ln -sfn "$(basename "$src")/$name" "$trees/$name"
	if [[ -f $out/.done && $(cat "$out/.done") == "$stamp" ]]; then
		say "$name: built already"
		return 0
	fi
	mkdir -p "$out"
	rm -f "$out/.done"
	local t0=$EPOCHREALTIME
	say "$name: configuring (tinyconfig + ${frags[*]##*/})"
	nice -n 10 make -s -C "$src" O="$name" "${mk[@]}" tinyconfig >/dev/null
	cat "${frags[@]}" >>"$out/.config"
	nice -n 10 make -s -C "$src" O="$name" "${mk[@]}" olddefconfig 2>&1 | grep -v 'override: reassigning' >&2 || true
	config_check "$out" "${frags[@]}"
	say "$name: building $targets (-j$jobs)"
	# shellcheck disable=SC2086 # targets is a word list
	/usr/bin/time -f '%U %S' -o "$out/build.cpu" nice -n 10 make -C "$src" O="$name" "${mk[@]}" -j"$jobs" $targets \
		>"$out/build.log" 2>&1 || { tail -n 30 "$out/build.log" >&2; die "$name: make failed (log: $out/build.log)"; }
	local cpu
	cpu=$(awk 'END { printf "%.0f", $1 + $2 }' "$out/build.cpu")
	echo "$(secs "$t0") $cpu" >"$out/build.time"
	echo "$stamp" >"$out/.done"
	say "$name: built in $(secs "$t0")s wall, ${cpu}s cpu (-j$jobs, load $(cut -d' ' -f1-3 /proc/loadavg))"
}

# build_negative: 53-gcc-stock-caller, a copy of 53-gcc-bti's sources and
# tree with the stock ftrace_caller; kbuild recompiles entry-ftrace.S and
# relinks.
build_negative() {
	local base=$trees/53-src-gcc src=$trees/53-src-stock name=53-gcc-stock-caller stamp
	stamp=$(cat "$base/53-gcc-bti/.done"; declare -f negative_edit)
	ln -sfn "$(basename "$src")/$name" "$trees/$name"
	if [[ -f $src/$name/.done && $(cat "$src/$name/.done") == "$stamp" ]]; then
		say "$name: built already"
		return 0
	fi
	local t0=$EPOCHREALTIME
	say "$name: copying 53-gcc-bti's sources (links) and tree"
	rm -rf "$src"
	cp -al "$base" "$src"
	rm -rf "$src/53-gcc-bti" "$src/53-gcc-stock-caller"
	cp -a "$base/53-gcc-bti" "$src/$name"
	rm -f "$src/$name/.done"
	local f=arch/arm64/kernel/entry-ftrace.S
	cp --remove-destination "$pristine/$f" "$src/$f"
	touch "$src/$f"
	negative_edit "$src/$f"
	/usr/bin/time -f '%U %S' -o "$src/$name/build.cpu" nice -n 10 make -C "$src" O="$name" ARCH=arm64 \
		CROSS_COMPILE=aarch64-linux-gnu- -j"$jobs" vmlinux >"$src/$name/build.log" 2>&1 ||
		{ tail -n 30 "$src/$name/build.log" >&2; die "$name: make failed"; }
	local rebuilt
	rebuilt=$(grep -cE '^  (CC|AS)  ' "$src/$name/build.log" || true)
	grep -q '^  AS      arch/arm64/kernel/entry-ftrace.o$' "$src/$name/build.log" || die "$name: entry-ftrace.o was not rebuilt"
	echo "$(secs "$t0") $(awk 'END { printf "%.0f", $1 + $2 }' "$src/$name/build.cpu")" >"$src/$name/build.time"
	echo "$stamp" >"$src/$name/.done"
	say "$name: relinked in $(secs "$t0")s ($rebuilt objects compiled: $(grep -E '^  (CC|AS)  ' "$src/$name/build.log" | awk '{ print $2 }' | tr '\n' ' '))"
}

# ------------------------------------------------------------ site counts

# sites_of JSON: one line per site of a scan --json line.
sites_of() { sed 's/},{"func"/}\n{"func"/g' "$1" | grep '"layout"'; }

# site_stats JSON: "sites 53 mod0 mod4 bti cfi lit24 targets-lit24" of a scan
# --json line: sites, call-ops-5-3 sites, entries 0 and 4 mod 8, sites
# with BTI, with a kCFI hash, BTI sites 4 mod 8 (the ftrace_caller_lit24
# case), and enabled sites whose BL goes to ftrace_caller_lit24.
site_stats() {
	sites_of "$1" | awk '
		{
			n++
			if (index($0, "\"layout\":\"call-ops-5-3\"")) n53++
			match($0, /"entry":"0x[0-9a-f]+"/)
			e = substr($0, RSTART + 11, RLENGTH - 12)
			d = index("0123456789abcdef", substr(e, length(e), 1)) - 1
			m4 = (d % 8 == 4)
			if (m4) mod4++; else if (d % 8 == 0) mod0++
			bti = index($0, "\"bti\":true") > 0
			if (bti) nbti++
			if (index($0, "\"cfi_hash\":")) cfi++
			if (bti && m4) lit24++
			if (index($0, "\"target_sym\":\"ftrace_caller_lit24\"")) tl24++
		}
		END { printf "%d %d %d %d %d %d %d %d\n", n, n53, mod0, mod4, nbti, cfi, lit24, tl24 }'
}

# records_oracle VMLINUX: the non-zero records between __start_mcount_loc
# and __stop_mcount_loc, counted with binutils alone: from the RELA addends
# when relocations cover the range, else from the stored words (RELR keeps
# the addresses there).
records_oracle() {
	local v=$1 start stop
	start=$(aarch64-linux-gnu-nm "$v" | awk '$3 == "__start_mcount_loc" { print $1 }')
	stop=$(aarch64-linux-gnu-nm "$v" | awk '$3 == "__stop_mcount_loc" { print $1 }')
	local relas
	relas=$(aarch64-linux-gnu-readelf -r -W "$v" | awk -v s="$start" -v e="$stop" '
		length($1) == 16 && $1 ~ /^[0-9a-f]+$/ && $3 == "R_AARCH64_RELATIVE" && $1 >= s && $1 < e { n++; if ($4 != "0") nz++ }
		END { printf "%d %d\n", n, nz }')
	if [[ ${relas% *} != 0 ]]; then
		echo "${relas#* }"
		return
	fi
	# No RELA in the range: count the non-zero 8-byte words stored there.
	aarch64-linux-gnu-objdump -s --start-address=0x"$start" --stop-address=0x"$stop" "$v" |
		awk '/^ [0-9a-f]+ / { for (i = 2; i <= 5; i++) w = w $i } END {
			for (i = 1; i + 15 <= length(w); i += 16) if (substr(w, i, 16) !~ /^0+$/) nz++
			print nz + 0 }'
}

# ---------------------------------------------------------------- ftpatch

# ftpatch_flow NAME WANT_VERIFY: scan, init, enable and verify
# --run-file-trampoline the tree's vmlinux; the verify must exit
# WANT_VERIFY. Prints the site counts.
ftpatch_flow() {
	local name=$1 want=$2 out=$trees/$1 w
	w=$out/ftpatch
	rm -rf "$w"
	mkdir -p "$w"
	local v=$out/vmlinux rc=0
	"$ftpatch" scan --check --json "$v" >"$w/scan.json" 2>"$w/scan.err" || rc=$?
	((rc == 0)) || { cat "$w/scan.err" >&2; die "$name: scan --check exit $rc, want 0"; }
	local n n53 mod0 mod4 bti cfi lit24 tl24 oracle
	read -r n n53 mod0 mod4 bti cfi lit24 tl24 < <(site_stats "$w/scan.json")
	oracle=$(records_oracle "$v")
	say "$name: scan --check: $n sites, $n53 call-ops-5-3; entries $mod0 at 0 mod 8, $mod4 at 4 mod 8; $bti with BTI ($lit24 of them 4 mod 8: ftrace_caller_lit24); $cfi with a kCFI hash; 0 problems; readelf/objdump count $oracle non-zero records"
	((n > 0 && n == n53)) || die "$name: $n sites, $n53 of them call-ops-5-3"
	((n == oracle)) || die "$name: ftpatch found $n sites, the records hold $oracle non-zero entries"
	((mod0 > 0 && mod4 > 0)) || die "$name: entries not at both 0 and 4 mod 8 ($mod0, $mod4)"
	((bti > 0 && lit24 > 0)) || die "$name: no BTI sites ($bti) or none 4 mod 8 ($lit24)"
	case $name in *kcfi*) ((cfi > 0)) || die "$name: no kCFI hash recognised" ;; *) ((cfi == 0)) || die "$name: $cfi kCFI hashes in a GCC build" ;; esac
	echo "$n $n53 $mod0 $mod4 $bti $cfi $lit24" >"$w/stats"
	"$ftpatch" init --default-ops ftrace_nop_ops --allow-absolute -o "$w/vmlinux.init" "$v" >&2
	"$ftpatch" enable --ops ftrace_list_ops --allow-absolute -o "$w/vmlinux.enabled" "$w/vmlinux.init" >&2
	"$ftpatch" scan --check --json "$w/vmlinux.enabled" >"$w/enabled.json"
	read -r n _ _ _ _ _ lit24 tl24 < <(site_stats "$w/enabled.json")
	if ((want == 0)); then
		((tl24 == lit24)) || die "$name: $tl24 sites call ftrace_caller_lit24, $lit24 are BTI 4 mod 8"
		say "$name: init + enable: $n sites enabled, $tl24 calling ftrace_caller_lit24, the others ftrace_caller"
	else
		# The stock ftrace_caller also named ftrace_caller_lit24: one
		# address, so every BL goes there and the scan names it by either.
		local a b
		a=$(aarch64-linux-gnu-nm "$v" | awk '$3 == "ftrace_caller" { print $1 }')
		b=$(aarch64-linux-gnu-nm "$v" | awk '$3 == "ftrace_caller_lit24" { print $1 }')
		[[ -n $a && $a == "$b" ]] || die "$name: ftrace_caller ($a) and ftrace_caller_lit24 ($b) should be one address in the negative build"
		say "$name: init + enable: $n sites enabled, all to the stock ftrace_caller (= ftrace_caller_lit24, 0x$a)"
	fi
	rc=0
	"$ftpatch" verify --run-file-trampoline "$w/vmlinux.enabled" >"$w/verify.txt" 2>&1 || rc=$?
	head -n 1 "$w/verify.txt" >&2
	((rc == want)) || { head -n 30 "$w/verify.txt" >&2; die "$name: verify --run-file-trampoline exit $rc, want $want"; }
	if ((want == 0)); then
		rc=0
		"$ftpatch" verify --run-file-trampoline --against "$w/vmlinux.init" "$w/vmlinux.enabled" >"$w/against.txt" 2>&1 || rc=$?
		((rc == 0)) || { head -n 30 "$w/against.txt" >&2; die "$name: verify --against the init copy exit $rc"; }
		grep -m1 'live-safe:' "$w/against.txt" >&2
	else
		# The stock trampoline reads the literal at the 4,2 place: the lit24
		# sites, and only they, fail.
		local failed
		failed=$(sed -n 's/.* \([0-9]*\) failed .*/\1/p' "$w/verify.txt" | head -n1)
		[[ $failed == "$lit24" ]] || die "$name: $failed sites failed, want the $lit24 ftrace_caller_lit24 sites"
		grep -m1 -A3 '(enabled)$' "$w/verify.txt" >&2 || true
		say "$name: verify --run-file-trampoline FAILED as it must: $failed sites, exactly the BTI entries at 4 mod 8 (those ftrace_caller_lit24 serves)"
	fi
}

# ------------------------------------------------------------------ boots

# Candidate functions for the boot's trace: the system calls init.c makes
# and their helpers. choose_functions picks, from those the scan lists, up to
# two per (entry mod 8, BTI) class, so the trace covers every trampoline
# entry the tree has.
candidates=(
	__arm64_sys_getpid __arm64_sys_getppid __arm64_sys_gettid __arm64_sys_getuid __arm64_sys_geteuid
	__arm64_sys_getgid __arm64_sys_getegid __arm64_sys_getpgid __arm64_sys_getsid __arm64_sys_getpriority
	__arm64_sys_newuname __arm64_sys_times __arm64_sys_sysinfo __arm64_sys_getrusage __arm64_sys_prlimit64
	__arm64_sys_getcwd __arm64_sys_umask __arm64_sys_sched_yield
	do_sys_times do_sysinfo getrusage do_prlimit do_sched_yield __task_pid_nr_ns task_tgid_vnr
	set_user_nice override_creds revert_creds __do_sys_newuname
)

# choose_functions JSON: the functions to trace, one a line, each with its
# class ("name entry-mod-8 bti").
choose_functions() {
	local json=$1
	sites_of "$json" | awk -v list="${candidates[*]}" '
		BEGIN { n = split(list, c, " "); for (i = 1; i <= n; i++) want[c[i]] = i }
		{
			match($0, /"func":"[^"]*"/); f = substr($0, RSTART + 8, RLENGTH - 9)
			if (!(f in want)) next
			match($0, /"entry":"0x[0-9a-f]+"/); e = substr($0, RSTART + 11, RLENGTH - 12)
			m = (index("0123456789abcdef", substr(e, length(e), 1)) - 1) % 8
			b = index($0, "\"bti\":true") > 0 ? "bti" : "nobti"
			k = m " " b
			if (got[k] < 2) { got[k]++; print f, m, b }
		}'
}

# boot NAME: boot the tree's Image with the initramfs; check the log.
boot() {
	local name=$1 out=$trees/$1 w
	w=$out/boot
	rm -rf "$w"
	mkdir -p "$w"
	choose_functions "$out/ftpatch/scan.json" >"$w/chosen"
	awk '{ print $1 }' "$w/chosen" >"$w/filter"
	local classes
	classes=$(awk '{ print $2, $3 }' "$w/chosen" | sort -u | tr '\n' ',')
	grep -q '^4 bti$' <(awk '{ print $2, $3 }' "$w/chosen") || die "$name: no candidate function is BTI at 4 mod 8 (ftrace_caller_lit24): $classes"
	grep -q ' 0 ' "$w/chosen" && grep -q ' 4 ' "$w/chosen" || die "$name: the candidates do not cover 0 and 4 mod 8: $classes"
	aarch64-linux-gnu-gcc -static -Os -Wall -o "$w/init" "$k53/init.c"
	cat >"$w/initramfs.list" <<-EOF
		dir /dev 0755 0 0
		nod /dev/console 0600 0 0 c 5 1
		dir /tracing 0755 0 0
		file /init $w/init 0755 0 0
		file /filter $w/filter 0644 0 0
	EOF
	"$out/usr/gen_init_cpio" "$w/initramfs.list" >"$w/initramfs.cpio"
	say "$name: booting on qemu-system-aarch64 -M virt -cpu max, tracing $(tr '\n' ' ' <"$w/filter")"
	local t0=$EPOCHREALTIME rc=0
	timeout "${BOOT_TIMEOUT:-600}" qemu-system-aarch64 -M virt -cpu max,pauth-impdef=on -smp 1 -m 256M \
		-nographic -no-reboot -nic none -kernel "$out/arch/arm64/boot/Image" -initrd "$w/initramfs.cpio" \
		-append "console=ttyAMA0 panic=-1" </dev/null >"$w/boot.log" 2>&1 || rc=$?
	local bt
	bt=$(secs "$t0")
	tr -d '\r' <"$w/boot.log" >"$w/boot.log.tmp" && mv "$w/boot.log.tmp" "$w/boot.log"
	cp "$w/boot.log" "$out/boot.log"
	echo "$bt" >"$out/boot.time"
	((rc == 0)) || { tail -n 40 "$w/boot.log" >&2; die "$name: qemu exit $rc after ${bt}s (log: $w/boot.log)"; }
	boot_checks "$name" "$w/boot.log" "$w/filter"
	say "$name: booted and powered off in ${bt}s"
}

# selftests LOG: ftrace's startup test lines, one a test: "Testing X: "
# followed by its continuation lines ("(1 0 1 0 0) " ... "PASSED") joined.
# Another message may come between a test and its result (printk's
# continuation lines interleave: "Testing event initcall_start: ",
# "Freeing initrd memory: 688K", "OK"): skipped while a test waits; a test
# still waiting at the next test or at the end is printed as it is (not
# passed).
selftests() {
	awk '
		function flush() { if (pending != "") print pending; pending = "" }
		pending != "" && /^\(/ { pending = pending $0; if ($0 ~ /(PASSED|OK|FAILED)$/) flush(); next }
		pending != "" && /^(PASSED|OK|FAILED.*)$/ { pending = pending $0; flush(); next }
		pending != "" && !/Testing / { next }
		{ flush() }
		/Testing [^:]*: *$/ { pending = $0; next }
		/Testing [^:]*:/ { print }
		END { flush() }' "$1"
}

# boot_checks NAME LOG FILTER: the selftests passed, nothing went wrong,
# and each chosen function is in the trace, called by the initramfs' only
# process (pid 1).
boot_checks() {
	local name=$1 log=$2 filter=$3
	grep -q '^Testing tracer function: PASSED$' "$log" || die "$name: no 'Testing tracer function: PASSED' in $log"
	local bad
	bad=$(selftests "$log" | grep -vE '(PASSED|OK)$' || true)
	[[ -z $bad ]] || die "$name: a startup test did not pass: $bad"
	bad=$(grep -E 'CFI failure|Kernel panic|Oops|BUG:|WARNING:|ftrace failed|ftrace bug|Unable to handle|Internal error|unexpected insn|Misaligned patch-site' "$log" || true)
	[[ -z $bad ]] || die "$name: $bad"
	grep -q '^k53-init: ---- end ----$' "$log" || die "$name: init did not print the trace (log: $log)"
	local f missing=()
	while read -r f; do
		sed -n '/^k53-init: ---- trace ----$/,/^k53-init: ---- end ----$/p' "$log" | grep -qE "^ +[^ ]+-1 +\[[0-9]+\] .* $f <-" || missing+=("$f")
	done <"$filter"
	((${#missing[@]} == 0)) || die "$name: not in the trace: ${missing[*]}"
	say "$name: $(selftests "$log" | wc -l) startup tests PASSED or OK; all $(wc -l <"$filter") chosen functions in the trace"
}

# ------------------------------------------------------- starting point

# starting_point: vmlinux zeroed by the stock sorttable (scan --check exit
# 1, zeroed-entries), modules clean, enabled and verified.
starting_point() {
	local name=53-flag-only-gcc out=$trees/53-flag-only-gcc w rc=0
	w=$out/ftpatch
	rm -rf "$w"
	mkdir -p "$w"
	"$ftpatch" scan --check "$out/vmlinux" >"$w/scan.txt" 2>&1 || rc=$?
	((rc == 1)) || { cat "$w/scan.txt" >&2; die "$name: scan --check of vmlinux exit $rc, want 1"; }
	grep -q 'zeroed-entries: .*before_func = 8' "$w/scan.txt" || die "$name: no zeroed-entries naming sorttable's 4,2 offset: $(cat "$w/scan.txt")"
	say "$name: vmlinux: scan --check exit 1: $(grep -o 'the entries table ([^)]*) holds only zeros' "$w/scan.txt")"
	local mods=()
	mapfile -t mods < <(find "$out/" -name '*.ko' -type f | sort)
	((${#mods[@]} > 0)) || die "$name: no modules"
	"$ftpatch" scan --check --json "${mods[@]}" >"$w/modules.json" || die "$name: scan --check of the modules"
	local n n53 total=0 total53=0 withsites=0 m
	for m in "${mods[@]}"; do
		grep -F "\"file\":\"$m\"" "$w/modules.json" >"$w/one.json"
		read -r n n53 _ < <(site_stats "$w/one.json")
		((n == n53)) || die "$name: $m: $n sites, $n53 call-ops-5-3"
		# lib/crc*.ko have no traceable function: nothing to patch.
		((n > 0)) || continue
		total=$((total + n)) total53=$((total53 + n53)) withsites=$((withsites + 1))
		"$ftpatch" enable --init --ops ftrace_list_ops -o "$w/$(basename "$m")" "$m" >/dev/null
		"$ftpatch" verify "$w/$(basename "$m")" >>"$w/verify.txt" || die "$name: verify of enabled $(basename "$m")"
	done
	((total > 0)) || die "$name: no module has a patch site"
	say "$name: ${#mods[@]} modules ($withsites with sites): $total sites, all call-ops-5-3, 0 problems; enabled and verified with ftpatch's trampoline: $(grep -c '^ok:' "$w/verify.txt") ok"
}

# ------------------------------------------------------------------- main

prepare_src "$trees/53-src" series
prepare_src "$trees/53-src-gcc" gcc
prepare_src "$trees/53-src-flag" flag
build "$trees/53-src-gcc" 53-gcc-bti "vmlinux Image" "$k53/53.config" "$k53/gcc-bti.config" --
build "$trees/53-src" 53-clang-kcfi "vmlinux Image" "$k53/53.config" "$k53/clang-kcfi.config" -- LLVM=-16
build_negative
build "$trees/53-src-flag" 53-flag-only-gcc "vmlinux modules" "$k53/flag-only.config" --

ftpatch_flow 53-gcc-bti 0
ftpatch_flow 53-clang-kcfi 0
ftpatch_flow 53-gcc-stock-caller 1
starting_point
boot 53-gcc-bti
boot 53-clang-kcfi

say "summary (2 cores: $(nproc); load $(cut -d' ' -f1-3 /proc/loadavg)):"
for t in 53-gcc-bti 53-clang-kcfi 53-gcc-stock-caller 53-flag-only-gcc; do
	read -r bw bc <"$trees/$t/build.time"
	line="  $t: build ${bw}s wall, ${bc}s cpu"
	if [[ -f $trees/$t/ftpatch/stats ]]; then
		read -r n _ mod0 mod4 bti cfi lit24 <"$trees/$t/ftpatch/stats"
		line+="; $n sites ($mod0 at 0 mod 8, $mod4 at 4 mod 8, $bti BTI, $lit24 lit24, $cfi kCFI)"
	fi
	[[ -f $trees/$t/boot.time ]] && line+="; boot $(cat "$trees/$t/boot.time")s"
	echo "$line" >&2
done
say "ok: all checks passed in $(secs "$t_start")s"

#!/usr/bin/env bash
# bench.sh: `make bench`. Generates (once) a large kernel-like image with
# testdata/bench/gen.sh into build/bench/, and a folder of 1,000 small
# module-like objects (copies of the committed fixtures) into
# build/bench/mods/, then prints, from one run, a table of medians of
# ftpatch against a baseline tool, each with ftpatch's peak memory, and a
# summary of each row against its target (PASS/MISS).
#
# Rows: scan --json vs readelf -r (image); init + enable vs cp and vs
# cp + sync (image; patch fsyncs its output, cp does not); verify of the
# enabled image (sites per second); scan --json of the folder vs readelf -r
# on each file; the scan and patch rows again on the image padded to
# kernel size (300 MiB; see (5)). Exit status: 1 if a command failed, or, with BENCH_STRICT=1,
# if a row missed its target; a MISS alone is reported, not fatal.
#
# Adding a row: call bench_vs with a name, the ftpatch command, `--`, and the
# baseline command, then `target NAME`. A command may be a shell function
# defined here; its peak memory is then taken from rss_cmds (see patch row).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
REPS=${BENCH_REPS:-5}
FTPATCH=${FTPATCH:-$root/bin/ftpatch}
READELF=aarch64-linux-gnu-readelf
dir=$root/build/bench
img=$dir/vmlinux.elf

# The image is regenerated only when what makes it changed.
key=$(cat testdata/bench/gen.sh testdata/src/fixtures/kernel.lds | sha256sum | cut -c1-16)
key+="-$(aarch64-linux-gnu-gcc -dumpversion)-${BENCH_FILES:-40}x${BENCH_FUNCS:-1000}-${BENCH_CFLAGS:-}"
if [[ ! -f $img || $(cat "$dir/.key" 2>/dev/null) != "$key" ]]; then
	echo "bench: generating $img (a minute or so on 2 cores)" >&2
	rm -f "$dir/.key"
	testdata/bench/gen.sh "$dir"
	echo "$key" >"$dir/.key"
fi

# The folder of small objects: copies of the committed fixture objects and
# modules, in turn, up to BENCH_MODS files; rebuilt when the fixtures change.
mods=$dir/mods
nmods=${BENCH_MODS:-1000}
fixtures=(testdata/fixtures/*.o testdata/fixtures/*.ko)
mkey="$(cat "${fixtures[@]}" | sha256sum | cut -c1-16)-$nmods"
if [[ ! -d $mods || $(cat "$dir/.mods-key" 2>/dev/null) != "$mkey" ]]; then
	echo "bench: generating $mods ($nmods objects)" >&2
	rm -rf "$mods" "$dir/.mods-key"
	mkdir -p "$mods"
	for ((i = 0; i < nmods; i++)); do
		f=${fixtures[i % ${#fixtures[@]}]}
		cp "$f" "$mods/$(printf 'm%04d-' "$i")${f##*/}"
	done
	echo "$mkey" >"$dir/.mods-key"
fi

# Patched copies go here; removed at exit.
tmp=$dir/tmp
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT

# now_us: wall clock in microseconds, without a fork.
now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }

# median_time CMD...: the median wall time in seconds of REPS runs of CMD
# (after one warm-up run), stdout discarded. Fails if CMD fails.
median_time() {
	local i t0 t1 times=()
	"$@" >/dev/null || return 1
	for ((i = 0; i < REPS; i++)); do
		t0=$(now_us)
		"$@" >/dev/null || return 1
		t1=$(now_us)
		times+=($((t1 - t0)))
	done
	printf '%s\n' "${times[@]}" | median | awk '{ printf "%.4f\n", $1 / 1e6 }'
}

# median: the median of the numbers on stdin, one a line.
median() {
	sort -g | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'
}

# peak_rss CMD...: CMD's peak resident set size in MiB (GNU time's %M).
peak_rss() {
	local f
	f=$(mktemp)
	if ! /usr/bin/time -f %M -o "$f" "$@" >/dev/null; then rm -f "$f"; return 1; fi
	awk '{ printf "%.1f\n", $1 / 1024 }' "$f"
	rm -f "$f"
}

fmt='%-38s %10s %10s %8s %10s\n'
failed=0
missed=0
summary=()
header() { printf "$fmt" benchmark ftpatch baseline ratio "peak RSS"; }

# rss_of CMD...: "N MiB" for a plain program; for a shell function, the
# largest peak of the commands in rss_cmds (NUL-separated argument lists,
# one per line), or "-" when there are none.
rss_cmds=()
rss_of() {
	local max=0 r c
	if [[ $(type -t "$1") == file ]]; then echo "$(peak_rss "$@") MiB"; return; fi
	((${#rss_cmds[@]})) || { echo -; return; }
	for c in "${rss_cmds[@]}"; do
		eval "r=\$(peak_rss $c)" || return 1
		max=$(awk -v a="$max" -v b="$r" 'BEGIN { print (b > a ? b : a) }')
	done
	echo "$max MiB"
}

# bench_vs NAME FTPATCH-CMD... -- BASELINE-CMD...: one table row: the two
# medians, their ratio (below 1 means ftpatch is faster) and ftpatch's peak
# memory. Sets last_ratio (empty when a command failed).
last_ratio=
bench_vs() {
	local name=$1 a=() b=() ta tb rss
	shift
	while (($#)) && [[ $1 != -- ]]; do a+=("$1"); shift; done
	shift
	b=("$@")
	last_ratio=
	if ! ta=$(median_time "${a[@]}"); then
		printf "$fmt" "$name" FAILED - - -
		echo "bench: failed: ${a[*]}" >&2
		failed=1
		return
	fi
	if ! tb=$(median_time "${b[@]}"); then
		printf "$fmt" "$name" "${ta}s" FAILED - -
		echo "bench: failed: ${b[*]}" >&2
		failed=1
		return
	fi
	rss=$(rss_of "${a[@]}") || rss=FAILED
	last_ratio=$(awk -v a="$ta" -v b="$tb" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
	printf "$fmt" "$name" "${ta}s" "${tb}s" "${last_ratio}x" "$rss"
}

# target NAME MEASURED OP LIMIT SHOWN-MEASURED SHOWN-TARGET: a summary row;
# PASS when MEASURED OP LIMIT holds (OP is <= or >=), MISS otherwise, and
# "-" when MEASURED is empty (the row failed).
target() {
	local name=$1 v=$2 op=$3 lim=$4 shown=$5 want=$6 res
	if [[ -z $v ]]; then
		res=-
	elif awk -v v="$v" -v l="$lim" -v op="$op" 'BEGIN { exit !(op == "<=" ? v <= l : v >= l) }'; then
		res=PASS
	else
		res=MISS
		missed=1
	fi
	summary+=("$(printf '%-38s %16s %18s  %s' "$name" "$shown" "$want" "$res")")
}

# The commands of the rows that are more than one program.
patch_image() { # init, then enable, each to a new file, as a user would
	"$FTPATCH" init -o "$tmp/init.elf" "$img" &&
		"$FTPATCH" enable --ops ops --allow-absolute -o "$tmp/enabled.elf" "$tmp/init.elf"
}
cp_image() { cp "$img" "$tmp/cp.elf"; }
cp_sync_image() { cp "$img" "$tmp/cp.elf" && sync "$tmp/cp.elf"; }
readelf_each() {
	local f
	for f in "$mods"/*; do "$READELF" -r "$f" || return 1; done
}

size=$(stat -c %s "$img")
sites=$($READELF -s -W "$img" | awk '$8 == "__start_mcount_loc" { s = $2 } $8 == "__stop_mcount_loc" { e = $2 }
	END { print s "," e }')
sites=$(( (16#${sites#*,} - 16#${sites%,*}) / 8 ))
debug=$($READELF -S -W "$img" | grep -c ' \.debug_' || true)
modsize=$(du -sk "$mods" | cut -f1)
echo "image: ${img#"$root"/} ($((size / 1024 / 1024)) MiB, $sites patch sites, $debug .debug_* sections)"
echo "mods:  ${mods#"$root"/} ($(ls "$mods" | wc -l) objects and modules, $((modsize / 1024)) MiB, copies of testdata/fixtures)"
echo "$(nproc) cores, median of $REPS runs after one warm-up; ratio = ftpatch / baseline (below 1: ftpatch is faster)"
echo
header

# (1) scan of the image.
bench_vs "scan --json vs readelf -r" "$FTPATCH" scan --json "$img" -- "$READELF" -r "$img"
target "scan vs readelf -r (image)" "$last_ratio" "<=" 1 "${last_ratio:+${last_ratio}x}" "<= 1.00x"

# (2) init + enable to new files against cp, and against cp + sync: patch
# fsyncs its output before renaming it into place, cp does not. The image is
# position-independent, so enable needs --allow-absolute for its ops.
rss_cmds=("\"\$FTPATCH\" init -o \"\$tmp/init.elf\" \"\$img\""
	"\"\$FTPATCH\" enable --ops ops --allow-absolute -o \"\$tmp/enabled.elf\" \"\$tmp/init.elf\"")
bench_vs "init + enable --ops vs cp" patch_image -- cp_image
target "init + enable vs cp (image)" "$last_ratio" "<=" 1.5 "${last_ratio:+${last_ratio}x}" "<= 1.50x"
bench_vs "init + enable --ops vs cp + sync" patch_image -- cp_sync_image
target "init + enable vs cp + sync (image)" "$last_ratio" "<=" 1.5 "${last_ratio:+${last_ratio}x}" "<= 1.50x"
rss_cmds=()

# (3) verify of the enabled image, REPS runs after a warm-up: the median of
# the whole command's wall time, and in the same runs the median of verify's
# own elapsed time (--json "seconds": loading and running the sites, without
# process start-up).
vrate=
verify_runs() {
	local i t0 t1 out
	"$FTPATCH" verify --json "$tmp/enabled.elf" >/dev/null || return 1
	for ((i = 0; i < REPS; i++)); do
		t0=$(now_us)
		out=$("$FTPATCH" verify --json "$tmp/enabled.elf") || return 1
		t1=$(now_us)
		echo "$((t1 - t0)) $(sed -n 's/.*"sites":\([0-9]*\).*"seconds":\([0-9.e+-]*\).*/\1 \2/p' <<<"$out")"
	done
}
if patch_image >/dev/null && runs=$(verify_runs); then
	vt=$(awk '{ print $1 / 1e6 }' <<<"$runs" | median)
	vs=$(awk '{ print $3 }' <<<"$runs" | median)
	vsites=$(awk '{ print $2; exit }' <<<"$runs")
	vrss=$(peak_rss "$FTPATCH" verify --json "$tmp/enabled.elf")
	vrate=$(awk -v n="$vsites" -v t="$vt" 'BEGIN { printf "%.0f", n / t }')
	irate=$(awk -v n="$vsites" -v t="$vs" 'BEGIN { printf "%.0f", n / t }')
	printf "$fmt" "verify --json (enabled image)" "$(printf '%.4fs' "$vt")" - - "$vrss MiB"
	printf "$fmt" "  its own --json \"seconds\"" "$(printf '%.4fs' "$vs")" - - -
	printf '  %s sites: %s sites/s for the whole command, %s by its own clock (-j %s)\n' \
		"$vsites" "$vrate" "$irate" "$(nproc)"
else
	printf "$fmt" "verify --json (enabled image)" FAILED - - -
	echo "bench: failed: $FTPATCH verify --json $tmp/enabled.elf" >&2
	failed=1
fi
target "verify, whole command (image)" "$vrate" ">=" 100000 "${vrate:+$vrate sites/s}" ">= 100000 sites/s"

# (4) the folder of small objects, against readelf -r on each file.
bench_vs "scan --json DIR vs readelf -r each" "$FTPATCH" scan --json "$mods" -- readelf_each
speedup=
[[ -n $last_ratio ]] && speedup=$(awk -v r="$last_ratio" 'BEGIN { printf "%.1f", (r > 0 ? 1 / r : 0) }')
target "scan DIR vs readelf per file (mods)" "$speedup" ">=" 5 "${speedup:+${speedup}x faster}" ">= 5x faster"

# (5) kernel size. A shipped kernel image with debug info is ~300 MB, most
# of it DWARF that ftpatch must copy but never read; the generated image is
# small because its functions are. So the same image, padded with a random
# non-alloc section (.debug_pad, standing in for DWARF) to BENCH_BIG_MB,
# shows what "read only what you need, stream writes" is worth at that
# size. Peak memory must not grow with the file.
big_mb=${BENCH_BIG_MB:-300}
big=$dir/vmlinux-${big_mb}m.elf
bkey="$key-$big_mb"
if [[ ! -f $big || $(cat "$dir/.big-key" 2>/dev/null) != "$bkey" ]]; then
	echo "bench: generating $big (padded to $big_mb MiB)" >&2
	rm -f "$dir/.big-key" "$big"
	pad=$((big_mb * 1024 * 1024 - size))
	head -c "$pad" /dev/urandom >"$tmp/pad"
	aarch64-linux-gnu-objcopy --add-section .debug_pad="$tmp/pad" "$img" "$big"
	rm -f "$tmp/pad"
	echo "$bkey" >"$dir/.big-key"
fi
patch_big() {
	"$FTPATCH" init -o "$tmp/init-big.elf" "$big" &&
		"$FTPATCH" enable --ops ops --allow-absolute -o "$tmp/enabled-big.elf" "$tmp/init-big.elf"
}
onepass_big() { # enable --init: both steps in one pass over the file
	"$FTPATCH" enable --init --ops ops --allow-absolute -o "$tmp/onepass-big.elf" "$big"
}
cp_big() { cp "$big" "$tmp/cp-big.elf"; }
cp_sync_big() { cp "$big" "$tmp/cp-big.elf" && sync "$tmp/cp-big.elf"; }
echo
echo "kernel size: ${big#"$root"/} ($(($(stat -c %s "$big") / 1024 / 1024)) MiB: the image above plus a .debug_pad section)"
header
bench_vs "scan --json vs readelf -r (big)" "$FTPATCH" scan --json "$big" -- "$READELF" -r "$big"
target "scan vs readelf -r (big image)" "$last_ratio" "<=" 1 "${last_ratio:+${last_ratio}x}" "<= 1.00x"
rss_cmds=("\"\$FTPATCH\" init -o \"\$tmp/init-big.elf\" \"\$big\""
	"\"\$FTPATCH\" enable --ops ops --allow-absolute -o \"\$tmp/enabled-big.elf\" \"\$tmp/init-big.elf\"")
bench_vs "init + enable --ops vs cp (big)" patch_big -- cp_big
target "init + enable vs cp (big image)" "$last_ratio" "<=" 1.5 "${last_ratio:+${last_ratio}x}" "<= 1.50x"
bench_vs "init + enable --ops vs cp + sync (big)" patch_big -- cp_sync_big
target "init + enable vs cp + sync (big image)" "$last_ratio" "<=" 1.5 "${last_ratio:+${last_ratio}x}" "<= 1.50x"
rss_cmds=("\"\$FTPATCH\" enable --init --ops ops --allow-absolute -o \"\$tmp/onepass-big.elf\" \"\$big\"")
bench_vs "enable --init (one pass) vs cp (big)" onepass_big -- cp_big
target "enable --init vs cp (big image)" "$last_ratio" "<=" 1.5 "${last_ratio:+${last_ratio}x}" "<= 1.50x"
bench_vs "enable --init (one pass) vs cp + sync (big)" onepass_big -- cp_sync_big
target "enable --init vs cp + sync (big image)" "$last_ratio" "<=" 1.5 "${last_ratio:+${last_ratio}x}" "<= 1.50x"
rss_cmds=()
rm -f "$tmp"/*-big.elf

echo
printf '%-38s %16s %18s  %s\n' summary measured target result
printf '%s\n' "${summary[@]}"
if ((failed)); then exit 1; fi
if ((missed)) && [[ ${BENCH_STRICT:-} == 1 ]]; then exit 1; fi
exit 0

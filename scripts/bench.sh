#!/usr/bin/env bash
# bench.sh: `make bench`. Generates (once) a large kernel-like image with
# testdata/bench/gen.sh into build/bench/ and prints, from one run, a table
# of medians of ftpatch against a baseline tool on it.
#
# Adding a row: call bench_vs with a name, the ftpatch command, `--`, and the
# baseline command. A command may be a shell function defined here (say, one
# that copies the image and patches the copy); the peak memory column is
# then measured only when the ftpatch command is a plain program.
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
	printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 }
		END { m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.4f\n", m / 1e6 }'
}

# peak_rss CMD...: CMD's peak resident set size in MiB (GNU time's %M).
peak_rss() {
	local f
	f=$(mktemp)
	if ! /usr/bin/time -f %M -o "$f" "$@" >/dev/null; then rm -f "$f"; return 1; fi
	awk '{ printf "%.1f\n", $1 / 1024 }' "$f"
	rm -f "$f"
}

fmt='%-34s %10s %10s %8s %10s\n'
failed=0
header() { printf "$fmt" benchmark "ftpatch" baseline ratio "peak RSS"; }

# rss_of CMD...: "N MiB" for a plain program, "-" for a shell function.
rss_of() {
	if [[ $(type -t "$1") == file ]]; then echo "$(peak_rss "$@") MiB"; else echo -; fi
}

# bench_row NAME CMD...: a row with one command's median and peak memory,
# no baseline (for figures such as sites per second, print them after).
bench_row() {
	local name=$1 t
	shift
	if ! t=$(median_time "$@"); then
		printf "$fmt" "$name" FAILED - - -
		echo "bench: failed: $*" >&2
		failed=1
		return
	fi
	printf "$fmt" "$name" "${t}s" - - "$(rss_of "$@")"
}

# bench_vs NAME FTPATCH-CMD... -- BASELINE-CMD...: one table row: the two
# medians, their ratio (below 1 means ftpatch is faster) and ftpatch's peak
# memory.
bench_vs() {
	local name=$1 a=() b=() ta tb ratio rss
	shift
	while (($#)) && [[ $1 != -- ]]; do a+=("$1"); shift; done
	shift
	b=("$@")
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
	rss=$(rss_of "${a[@]}")
	ratio=$(awk -v a="$ta" -v b="$tb" 'BEGIN { printf "%.2fx", (b > 0 ? a / b : 0) }')
	printf "$fmt" "$name" "${ta}s" "${tb}s" "$ratio" "$rss"
}

size=$(stat -c %s "$img")
sites=$($READELF -s -W "$img" | awk '$8 == "__start_mcount_loc" { s = $2 } $8 == "__stop_mcount_loc" { e = $2 }
	END { print s "," e }')
sites=$(( (16#${sites#*,} - 16#${sites%,*}) / 8 ))
echo "image: ${img#"$root"/} ($((size / 1024 / 1024)) MiB, $sites patch sites), $(nproc) cores, median of $REPS runs"
header
bench_vs "scan --json vs readelf -r" "$FTPATCH" scan --json "$img" -- "$READELF" -r "$img"
exit $failed

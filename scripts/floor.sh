# SPDX-License-Identifier: Apache-2.0
# floor.sh: sourced by scripts/bench.sh and scripts/kernel-check.sh: the
# emulator floor `ftpatch verify` is measured against.
#
#   floor_build DIR   builds DIR/floorplan (scripts/floorplan: the runs
#                     verify makes on an image, written as a plan) and
#                     DIR/verify-floor (scripts/verify-floor.c: only those
#                     runs, on libunicorn loaded as verify loads it), with
#                     the system cc against libunicorn-dev's headers
#   floor_plan DIR IMAGE PLAN
#                     writes IMAGE's plan
#
# The floor is run as `DIR/verify-floor PLAN IMAGE`; it exits 1 if a site
# fails, so a floor that does not do verify's work cannot pass for one.

floor_build() {
	local dir=$1 here
	here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	mkdir -p "$dir"
	(cd "$here" && ${GO:-go} build -o "$dir/floorplan" ./scripts/floorplan) || return 1
	# shellcheck disable=SC2046 # pkg-config's flags are words
	${CC_HOST:-cc} -O2 -Wall $(pkg-config --cflags unicorn) -o "$dir/verify-floor" "$here/scripts/verify-floor.c" -ldl -lpthread
}

floor_plan() {
	"$1/floorplan" "$2" "$3"
}

# floor_cpu CMD...: runs CMD (output discarded) and prints its cpu seconds
# (user + sys) and wall seconds, to the millisecond (bash's time: GNU time
# counts hundredths, a few percent of a verify of a kernel); fails if CMD
# fails with a status other than 0 or, for a verify, 1.
floor_cpu() {
	local f rc=0 TIMEFORMAT='%3R %3U %3S'
	f=$(mktemp)
	{ time "$@" >/dev/null 2>&1 || rc=$?; } 2>"$f"
	if ((rc > 1)); then
		rm -f "$f"
		return 1
	fi
	tail -n1 "$f" | awk '{ printf "%.3f %.3f\n", $2 + $3, $1 }'
	rm -f "$f"
}

# floor_median: the median of the numbers on stdin, one a line.
floor_median() {
	sort -g | awk '{ a[NR] = $1 } END { if (NR) print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'
}

# floor_compare DIR REPS SITES IMAGE PLAN VERIFY...: REPS interleaved pairs
# (after a warm-up of each) of the command VERIFY... IMAGE and of the floor
# DIR/verify-floor PLAN IMAGE, whole processes; prints one line with the
# median cpu µs per site of each and the median of the per-pair ratios,
# and sets floor_ratio, floor_us (verify's) and floor_floor_us.
floor_compare() {
	local dir=$1 reps=$2 sites=$3 img=$4 plan=$5 i a b va=() vb=() rs=()
	shift 5
	for ((i = 0; i <= reps; i++)); do
		a=$(floor_cpu "$@" "$img") || return 1
		b=$(floor_cpu "$dir/verify-floor" "$plan" "$img") || return 1
		((i == 0)) && continue
		a=${a%% *} b=${b%% *}
		va+=("$a") vb+=("$b")
		rs+=("$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.4f", (b > 0 ? a / b : 0) }')")
	done
	floor_us=$(printf '%s\n' "${va[@]}" | floor_median | awk -v n="$sites" '{ printf "%.2f", $1 * 1e6 / n }')
	floor_floor_us=$(printf '%s\n' "${vb[@]}" | floor_median | awk -v n="$sites" '{ printf "%.2f", $1 * 1e6 / n }')
	floor_ratio=$(printf '%s\n' "${rs[@]}" | floor_median | awk '{ printf "%.2f", $1 }')
	echo "   $sites sites: verify $floor_us µs, floor $floor_floor_us µs of cpu per site: ${floor_ratio}x ($reps interleaved pairs, medians)"
}

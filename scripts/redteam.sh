#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# redteam.sh: the hostile campaign of issue 22, repeatable (make redteam).
# It runs the campaign's Go tests with FTPATCH_REDTEAM=full (the cases make
# test leaves out: root-only file systems and owners, FUSE, large counts,
# 8 GiB bombs) and the long kill loop (scripts/killtest.sh), and prints a
# table: case group, cases passed, failed, skipped, and why each skipped.
#
#   scripts/redteam.sh              # everything; as root for every group
#   KILLS=100 scripts/redteam.sh    # fewer random kills (default 440)
#   REDTEAM_GROUPS='kills|bombs' scripts/redteam.sh  # table: only these groups (regexp)
#   REDTEAM_SKIP='TestRedteam/bombs' scripts/redteam.sh  # go test -skip: leave these out
#
# Root: tmpfs mounts (full, read-only), chown, chattr +i, trusted.*, and
# FUSE (bindfs --xattr-none, installed here with apt-get when missing: a
# file system without O_TMPFILE or xattrs). Not root: those cases skip,
# each saying why. Exit status 1 if any case failed.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH=/usr/local/go/bin:$PATH GOTOOLCHAIN=local FTPATCH_REDTEAM=full
kills=${KILLS:-440}
only=${REDTEAM_GROUPS:-.}
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

# deps: bindfs for the FUSE group (root only; the group skips without it).
if [[ $(id -u) == 0 ]] && ! command -v bindfs >/dev/null && command -v apt-get >/dev/null; then
	echo "redteam: installing bindfs (FUSE group)" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bindfs >/dev/null 2>&1 ||
		echo "redteam: could not install bindfs: the FUSE group will skip" >&2
fi

# The Go tests of the campaign: package, test regexp, and the group each
# top-level test counts in (TestRedteam's subtests name their own group).
runs=(
	"./internal/cli|^(TestRedteam|TestFilePromise|TestRandomKills|TestTruncatedCompressedInFolder|TestCompressedDebugSections|TestInitOwnOutputVerifies|TestHostileHeaders)$"
	"./internal/safefile|^(TestNewOutputTemporaryNotSwept|TestNewOutputLocked|TestSweepRemovesOnlyItsOwn|TestKeepsChattrFlags|TestRefusesImmutable|TestUnwritableFolderNamed|TestAppendOnlyFolder)$"
	"./internal/livesafe|^(TestAgainstRelocatableTampering|TestAgainstRelocatableDefects|TestAgainstLinkedDefects)$"
	"./internal/input|^(TestBudgetRules|TestBombsShareOneBudget|TestBombPeakRSS|TestBombAllocation|TestOpenFound)$"
	"./internal/elfscan|^(TestCompressedSectionRules|TestScanMutations)$"
)
declare -A group=(
	[TestFilePromise]=promise [TestRandomKills]=kills [TestTruncatedCompressedInFolder]=truncations
	[TestCompressedDebugSections]=headers [TestInitOwnOutputVerifies]=against [TestHostileHeaders]=headers
	[TestNewOutputTemporaryNotSwept]=parallel [TestNewOutputLocked]=parallel [TestSweepRemovesOnlyItsOwn]=sweep
	[TestKeepsChattrFlags]=owners [TestRefusesImmutable]=owners [TestUnwritableFolderNamed]=filesystems
	[TestAppendOnlyFolder]=filesystems [TestAgainstRelocatableTampering]=against [TestAgainstRelocatableDefects]=against
	[TestAgainstLinkedDefects]=against [TestBudgetRules]=bombs [TestBombsShareOneBudget]=bombs [TestBombPeakRSS]=bombs
	[TestBombAllocation]=bombs [TestOpenFound]=truncations [TestCompressedSectionRules]=headers [TestScanMutations]=mutants
)

: >"$log/results"
for r in "${runs[@]}"; do
	pkg=${r%%|*} re=${r#*|}
	echo "redteam: go test $pkg -run '$re'" >&2
	go test -count=1 -v -timeout 90m -run "$re" ${REDTEAM_SKIP:+-skip "$REDTEAM_SKIP"} "$pkg" >"$log/out" 2>&1
	cat "$log/out" >>"$log/all"
	# Leaf results only: "--- PASS: TestX/group/case (1.2s)"; go test -v
	# prints a skip's reason as it happens, under the test's "=== RUN".
	awk -v only="$only" '
		function groupof(name,   n, p) {
			n = split(name, p, "/")
			if (p[1] == "TestRedteam" && n >= 2) return p[2]
			return p[1]
		}
		/^=== (RUN|CONT|NAME) / { cur = $3 }
		/^[ \t]+[a-z_0-9]+\.go:[0-9]+: / { m = $0; sub(/^[ \t]*[a-z_0-9]+\.go:[0-9]+: /, "", m); msg[cur] = m }
		/^[ \t]*--- (PASS|FAIL|SKIP): / {
			st = $2; sub(":", "", st); name = $3
			names[name] = st; reasons[name] = (st == "SKIP") ? msg[name] : ""
		}
		END {
			for (n in names) {
				leaf = 1
				for (m in names) if (index(m, n "/") == 1) { leaf = 0; break }
				if (leaf && groupof(n) ~ only) printf "%s\t%s\t%s\t%s\n", groupof(n), names[n], n, reasons[n]
			}
		}' "$log/out" >>"$log/results"
done

# The long kill loop: a 272 MiB image, every signal in turn at random moments.
if [[ kills =~ $only ]]; then
	echo "redteam: scripts/killtest.sh ($kills kills)" >&2
	if KILLS=$kills NAMED=1 scripts/killtest.sh >"$log/kill" 2>&1; then
		printf 'kills\tPASS\tkilltest.sh %s random kills\t\n' "$kills" >>"$log/results"
	else
		printf 'kills\tFAIL\tkilltest.sh %s random kills\t%s\n' "$kills" "$(tail -1 "$log/kill")" >>"$log/results"
	fi
	tail -n +2 "$log/kill" | grep -E '^\s+[0-9]' >&2 || true
fi

# Map the top-level tests to their groups, and print the table.
while IFS=$'\t' read -r g st name why; do
	[[ -n ${group[$g]:-} ]] && g=${group[$g]}
	printf '%s\t%s\t%s\t%s\n' "$g" "$st" "$name" "$why"
done <"$log/results" >"$log/mapped"
echo
printf '%-14s %6s %6s %6s  %s\n' group passed failed skipped "why skipped"
awk -F'\t' '
	{ n[$1]++; c[$1, $2]++; if ($2 == "SKIP" && !seen[$1, $4]++) why[$1] = why[$1] (why[$1] ? "; " : "") $4 }
	END { for (g in n) printf "%-14s %6d %6d %6d  %s\n", g, c[g, "PASS"], c[g, "FAIL"], c[g, "SKIP"], why[g] }' "$log/mapped" | sort
fails=$(awk -F'\t' '$2 == "FAIL"' "$log/mapped")
if [[ -n $fails ]]; then
	echo
	echo "failed:"
	echo "$fails" | cut -f1,3,4
	grep -E '^\s+\S+_test\.go:[0-9]+: ' "$log/all" | head -40
	exit 1
fi

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# killtest.sh: kill ftpatch at random moments while it enables a
# kernel-sized file in place, and check after every kill that the file holds
# its old bytes or its new bytes and that nothing is left beside it (issue 9;
# README "What ftpatch promises about your files"). Run by hand:
#
#   scripts/killtest.sh            # 100 kills on a 272 MiB image
#   KILLS=20 SIZE_MB=50 scripts/killtest.sh
#   NAMED=1 scripts/killtest.sh    # also the named temporary of file systems
#                                  # without O_TMPFILE (not with SIGKILL:
#                                  # nothing can clean up after that)
#
# The image is the gcc-callops-kimage fixture, initialised, padded with a
# random non-alloc section (.debug_pad, as a kernel's DWARF pads it) to
# SIZE_MB. Each round copies it to a fresh name, starts `ftpatch enable
# --init` on it, sends SIGTERM, SIGINT, SIGHUP, SIGQUIT or SIGKILL (in turn)
# after a random delay up to how long an uninterrupted run takes, and checks
# the exit status against the bytes (cmp against the old and the new image):
# 0 with the new bytes (finished first, or the signal came after the rename,
# the commit point), 128+signal with the old ones (ftpatch's own exit, or
# the shell's status for a process SIGKILL killed; a SIGKILL between the
# rename and the exit may leave the new bytes), and the folder listing.
# The summary counts kills by whether the run had its temporary open
# ("temporary open") when the signal was sent.
# Work files go to KILLTEST_DIR (default build/killtest: a disk, not tmpfs,
# as the files people patch are). Exit status 1 on the first violation.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH=/usr/local/go/bin:$PATH GOTOOLCHAIN=local
kills=${KILLS:-100}
size_mb=${SIZE_MB:-272}
named=${NAMED:-0}
dir=${KILLTEST_DIR:-$root/build/killtest}
rm -rf "$dir"
mkdir -p "$dir/bin" "$dir/run"
trap 'rm -rf "$dir"' EXIT

go build -o "$dir/bin/ftpatch" ./cmd/ftpatch
ftp=$dir/bin/ftpatch
enable=(enable --init --skip-misaligned --ops ops --allow-absolute)

echo "killtest: making a $size_mb MiB image" >&2
"$ftp" init --skip-misaligned -o "$dir/bin/init.elf" testdata/fixtures/gcc-callops-kimage.elf >/dev/null 2>&1
head -c $((size_mb * 1024 * 1024)) /dev/urandom >"$dir/bin/pad"
aarch64-linux-gnu-objcopy --add-section .debug_pad="$dir/bin/pad" "$dir/bin/init.elf" "$dir/bin/old.elf"
rm "$dir/bin/pad" "$dir/bin/init.elf"
cp "$dir/bin/old.elf" "$dir/bin/new.elf"
start=$(date +%s%N)
"$ftp" "${enable[@]}" "$dir/bin/new.elf" >/dev/null 2>&1
span_ms=$((($(date +%s%N) - start) / 1000000))
cmp -s "$dir/bin/old.elf" "$dir/bin/new.elf" && { echo "killtest: enable changed nothing" >&2; exit 1; }
echo "killtest: $(stat -c %s "$dir/bin/old.elf") bytes; an uninterrupted enable --init takes ${span_ms} ms; $kills kills" >&2

sigs=(TERM INT HUP QUIT KILL)
declare -A seen=()
target=$dir/run/vmlinux
for ((i = 0; i < kills; i++)); do
	sig=${sigs[i % 5]}
	env=()
	if [[ $named == 1 && $sig != KILL && $((i % 2)) == 1 ]]; then
		env=(FTPATCH_TEST_NO_TMPFILE=1)
	fi
	cp "$dir/bin/old.elf" "$target"
	delay_ms=$((RANDOM * span_ms / 32767))
	env "${env[@]}" "$ftp" "${enable[@]}" "$target" >/dev/null 2>"$dir/bin/stderr" &
	pid=$!
	sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
	# Writing? Its temporary shows among its open files: unnamed,
	# "/…/#INODE (deleted)", or the named fallback.
	phase="(no temporary open)"
	if ls -l "/proc/$pid/fd" 2>/dev/null | grep -q -e "$dir/run/#" -e "$dir/run/\.vmlinux\.ftpatch-"; then
		phase="(temporary open)"
	fi
	kill -s "$sig" "$pid" 2>/dev/null || true
	status=0
	wait "$pid" 2>/dev/null || status=$? # the shell's "Killed" line is noise here
	num=$(kill -l "$sig")
	case $status in
	0) outcome="finished first" ;;
	$((128 + num))) outcome="status 128+SIG$sig" ;;
	*) echo "killtest: round $i (SIG$sig after $delay_ms ms): exit $status: $(cat "$dir/bin/stderr")" >&2; exit 1 ;;
	esac
	if cmp -s "$target" "$dir/bin/old.elf"; then
		bytes=old
	elif cmp -s "$target" "$dir/bin/new.elf"; then
		bytes=new
	else
		echo "killtest: round $i (SIG$sig after $delay_ms ms): the file is neither old nor new" >&2
		exit 1
	fi
	if [[ ($status == 0 && $bytes != new) || ($status != 0 && $bytes == new && $sig != KILL) ]]; then
		echo "killtest: round $i (SIG$sig after $delay_ms ms): exit $status but the file holds the $bytes bytes" >&2
		exit 1
	fi
	left=$(ls -A "$dir/run")
	if [[ $left != vmlinux ]]; then
		# A kill -9 between link and rename (two system calls apart)
		# leaves the complete new file under the run's temporary name;
		# the next run on the file removes it. Anything else is a failure.
		tmpname=$(ls -A "$dir/run" | grep -v '^vmlinux$' || true)
		if [[ $sig == KILL && $tmpname == .vmlinux.ftpatch-$pid-* && $(echo "$tmpname" | wc -l) == 1 ]] &&
			cmp -s "$dir/run/$tmpname" "$dir/bin/new.elf"; then
			"$ftp" "${enable[@]}" "$target" >/dev/null 2>&1
			if [[ $(ls -A "$dir/run") == vmlinux ]]; then
				outcome+=" (kill -9 between link and rename; the next run removed the temporary)"
			else
				echo "killtest: round $i: the next run left: $(ls -A "$dir/run")" >&2
				exit 1
			fi
		else
			echo "killtest: round $i (SIG$sig after $delay_ms ms${env:+, ${env[*]}}): folder holds: $left" >&2
			exit 1
		fi
	fi
	[[ $outcome == "finished first" ]] && phase="(after it)"
	key="SIG$sig $phase: $outcome, $bytes bytes"
	seen[$key]=$((${seen[$key]:-0} + 1))
done
echo "killtest: $kills kills, every file old or new, nothing left beside it:"
for k in "${!seen[@]}"; do echo "  ${seen[$k]}  $k"; done | sort -k2

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# fixtures.sh OUTDIR KTREEDIR: build every fixture of testdata/fixtures from
# the sources in testdata/src/fixtures into OUTDIR, write OUTDIR/README.md
# with the exact command of each, and check each with readelf -a (no
# warnings); then lay out KTREEDIR (testdata/ktree) as a small kernel build
# tree from those fixtures (see build_ktree). `make testdata` runs it on
# testdata/fixtures and testdata/ktree; `make testdata-check` runs it on a
# temporary folder and compares. The output is byte-for-byte reproducible
# with Debian 12's aarch64-linux-gnu-gcc 12, clang/lld 14 and clang-16 (kCFI
# fixtures only: compiled by clang-16, linked by clang 14/lld), and the
# host's gcc 12 (x86-64) for the kernel tree's host object.
set -euo pipefail

[[ $# -eq 2 ]] || { echo "usage: $0 OUTDIR KTREEDIR" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
src=$root/testdata/src/fixtures
mkdir -p "$1" "$2"
out=$(cd "$1" && pwd)
ktree=$(cd "$2" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

GCC=aarch64-linux-gnu-gcc
GLD=aarch64-linux-gnu-ld
CLANG="clang --target=aarch64-linux-gnu"
LLD=ld.lld
READELF=aarch64-linux-gnu-readelf

# The committed bytes come from these exact compiler versions.
want_gcc=12 want_clang=14 want_clang16=16
gcc_ver=$($GCC -dumpversion)
clang_ver=$(clang -dumpversion)
clang16_ver=$(clang-16 -dumpversion 2>/dev/null || echo none)
if [[ ${gcc_ver%%.*} != "$want_gcc" || ${clang_ver%%.*} != "$want_clang" || ${clang16_ver%%.*} != "$want_clang16" ]]; then
	echo "fixtures.sh: need aarch64-linux-gnu-gcc $want_gcc, clang $want_clang and clang-16" \
		"(Debian 12); have $gcc_ver, $clang_ver and $clang16_ver" >&2
	exit 1
fi
CLANG16="clang-16 --target=aarch64-linux-gnu"
# The kernel tree's host object: the build machine's gcc, named by its
# target so that the bytes do not depend on which machine runs this.
HOSTCC=x86_64-linux-gnu-gcc
hostcc_ver=$($HOSTCC -dumpversion 2>/dev/null || echo none)
if [[ ${hostcc_ver%%.*} != "$want_gcc" ]]; then
	echo "fixtures.sh: need $HOSTCC $want_gcc (Debian 12 on x86-64: package gcc); have $hostcc_ver" >&2
	exit 1
fi

COMMON="-O2 -g0 -ffreestanding -fno-builtin -fno-stack-protector -fPIE"
COMMON+=" -fno-asynchronous-unwind-tables -fno-unwind-tables"
declare -A VARIANT=(
	[callops]="-fpatchable-function-entry=4,2 -falign-functions=8"
	[callops-bti]="-fpatchable-function-entry=4,2 -falign-functions=8 -mbranch-protection=standard"
	[classic]="-fpatchable-function-entry=2"
	[classic-bti]="-fpatchable-function-entry=2 -mbranch-protection=standard"
)
VARIANTS="callops callops-bti classic classic-bti"
# The 5,3 layout (three NOPs before the entry) and kCFI: a smaller matrix
# (object, module, static executable, kernel-like image), linked with 4 KiB
# pages to keep the files small.
declare -A VARIANT53=(
	[callops53]="-fpatchable-function-entry=5,3 -falign-functions=4"
	[callops53-bti]="-fpatchable-function-entry=5,3 -falign-functions=4 -mbranch-protection=standard"
	[callops53-os]="-Os -fpatchable-function-entry=5,3 -mbranch-protection=standard"
	[kcfi-callops-bti]="-fsanitize=kcfi -fpatchable-function-entry=4,2 -falign-functions=8 -mbranch-protection=standard"
	[kcfi-callops53-bti]="-fsanitize=kcfi -fpatchable-function-entry=5,3 -mbranch-protection=standard"
)
KLINK="-shared -Wl,-Bsymbolic -Wl,-z,notext -Wl,--no-apply-dynamic-relocs -Wl,-z,max-page-size=4096 -Wl,-T,kernel.lds"

readme=$tmp/README.md

# run CMD...: run CMD in the source folder and log it for the README, with
# the temporary and output folders written as $OBJ and $OUT.
run() {
	local shown="$*"
	shown=${shown//"$tmp"/\$OBJ}
	shown=${shown//"$out"/\$OUT}
	echo "    $shown" >>"$readme"
	(cd "$src" && "$@")
}

# check FILE: readelf -a must read it without a word on stderr.
check() {
	local err=$tmp/readelf.err
	$READELF -a -W "$1" >/dev/null 2>"$err" || { cat "$err" >&2; exit 1; }
	if [[ -s $err ]]; then
		echo "fixtures.sh: readelf -a warns on $1:" >&2
		cat "$err" >&2
		exit 1
	fi
}

# check_kimage FILE [relr]: the entries must be gone from the section table
# and known only through relocations of the words between __start_mcount_loc
# and __stop_mcount_loc: R_AARCH64_RELATIVE in .rela.dyn with stored words
# zero, or (relr) RELR offsets with the addresses stored in the words.
check_kimage() {
	local f=$1 mode=${2:-rela}
	if $READELF -S -W "$f" | grep -q __patchable_function_entries; then
		echo "fixtures.sh: $f still has __patchable_function_entries" >&2; exit 1
	fi
	local start stop
	start=$($READELF -s -W "$f" | awk '$8 == "__start_mcount_loc" { print $2 }')
	stop=$($READELF -s -W "$f" | awk '$8 == "__stop_mcount_loc" { print $2 }')
	if [[ -z $start || -z $stop || $start == "$stop" ]]; then
		echo "fixtures.sh: $f has no mcount_loc range" >&2; exit 1
	fi
	local n=0 off typ
	while read -r off _ typ _; do
		[[ $mode == relr || $typ == R_AARCH64_RELATIVE ]] || continue
		[[ $off =~ ^[0-9a-f]{16}$ ]] || continue
		if (( 16#$off >= 16#$start && 16#$off < 16#$stop )); then n=$((n + 1)); fi
	done < <($READELF -r -W "$f")
	if (( n != (16#$stop - 16#$start) / 8 )); then
		echo "fixtures.sh: $f: $n $mode relocations in mcount_loc, want one per entry" >&2; exit 1
	fi
	local nonzero=0
	if aarch64-linux-gnu-objdump -s -j .init.data "$f" | tail -n +5 |
		awk '{ for (i = 2; i <= 5; i++) if ($i != "" && $i !~ /^0+$/) bad = 1 } END { exit !bad }'; then
		nonzero=1
	fi
	if [[ $mode == rela && $nonzero == 1 ]]; then
		echo "fixtures.sh: $f: stored entry words are not zero" >&2; exit 1
	fi
	if [[ $mode == relr && $nonzero == 0 ]]; then
		echo "fixtures.sh: $f: stored entry words are zero with RELR" >&2; exit 1
	fi
}

# zero_mcount IN OUT: OUT is IN with every mcount_loc entry zeroed as
# Linux's scripts/sorttable zeroes the records it cannot place within a
# function: the addend of each R_AARCH64_RELATIVE whose offset lies in
# __start_mcount_loc..__stop_mcount_loc (the stored words are zero already).
zero_mcount() {
	local in=$1 dst=$2 start stop relaoff i=0 n=0 off typ
	start=$($READELF -s -W "$in" | awk '$8 == "__start_mcount_loc" { print $2 }')
	stop=$($READELF -s -W "$in" | awk '$8 == "__stop_mcount_loc" { print $2 }')
	relaoff=$($READELF -S -W "$in" | awk '{ for (i = 1; i < NF; i++) if ($i == ".rela.dyn") print $(i + 3) }')
	cp "$in" "$dst"
	while read -r off _ typ _; do
		[[ $off =~ ^[0-9a-f]{16}$ ]] || continue
		if [[ $typ == R_AARCH64_RELATIVE ]] && (( 16#$off >= 16#$start && 16#$off < 16#$stop )); then
			# Elf64_Rela: r_offset, r_info, then the 8-byte r_addend.
			dd if=/dev/zero of="$dst" bs=1 count=8 seek=$((16#$relaoff + 24 * i + 16)) conv=notrunc status=none
			n=$((n + 1))
		fi
		i=$((i + 1))
	done < <($READELF -r -W "$in" | sed -n "/'.rela.dyn'/,/^\$/p")
	if (( n == 0 || n != (16#$stop - 16#$start) / 8 )); then
		echo "fixtures.sh: $in: zeroed $n mcount_loc relocations, want one per entry" >&2; exit 1
	fi
}

cat >"$readme" <<'HDR'
# Test fixtures

Generated by `scripts/fixtures.sh` (`make testdata`); do not edit. `make
testdata-check` rebuilds them into a temporary folder and compares bytes.

Sources: `testdata/src/fixtures` (`funcs.c`, `more.c`, `start.c`,
`fixture.h`, `kernel.lds`); each says what it contains. Compilers: Debian 12's
`aarch64-linux-gnu-gcc` 12 with GNU ld 2.40, and `clang --target=aarch64-linux-gnu`
14 with ld.lld 14. No debug info (`-g0`), no build ID, no timestamps, and every
command runs in `testdata/src/fixtures` on relative file names, so nothing
depends on the checkout's path (and `-ffile-prefix-map` has nothing to remap).

Names: `<cc>-<variant>-<kind>` with

| variant | flags |
|---|---|
| `callops` | `-fpatchable-function-entry=4,2 -falign-functions=8` |
| `callops-bti` | the same plus `-mbranch-protection=standard` |
| `classic` | `-fpatchable-function-entry=2` |
| `classic-bti` | the same plus `-mbranch-protection=standard` |
| `callops53` | `-fpatchable-function-entry=5,3 -falign-functions=4` (three NOPs before the entry) |
| `callops53-bti` | the same plus `-mbranch-protection=standard` |
| `callops53-os` | `-Os -fpatchable-function-entry=5,3 -mbranch-protection=standard` |
| `kcfi-callops-bti` | `clang16` only: `-fsanitize=kcfi -fpatchable-function-entry=4,2 -falign-functions=8 -mbranch-protection=standard` |
| `kcfi-callops53-bti` | `clang16` only: `-fsanitize=kcfi -fpatchable-function-entry=5,3 -mbranch-protection=standard` |

`<cc>` is `gcc`, `clang` (14) or `clang16` (Debian 12's `clang-16`, which
compiles; Clang 14 and ld.lld 14 link). The `callops53*` and `kcfi-*`
variants are built as `obj`, `module`, `static` and `kimage` only, linked
with `-z max-page-size=4096`, and with `-DFX_LIT24` (`funcs.c` then also
defines `ftrace_caller_lit24`, the stand-in for the trampoline's second entry).

| kind | file |
|---|---|
| `obj` | `funcs.c` as a relocatable object (`.o`) |
| `fsobj` | the same with `-ffunction-sections`: one text section per function (entries sections: see the notes) (`.o`) |
| `module` | a partial link (`ld -r`) of `funcs.o` and `more.o`, like a kernel module (`.ko`) |
| `static` | a static executable, ET_EXEC, `_start` from `start.c` (`.elf`) |
| `pie` | a PIE, ET_DYN; the dynamic relocations are also applied to the stored words (`.elf`) |
| `pie-noapply` | a PIE linked `--no-apply-dynamic-relocs`: the stored entry words are zero, the entries are known from `.rela.dyn` (`.elf`) |
| `kimage` | a kernel-like image linked `-shared -Bsymbolic -z notext --no-apply-dynamic-relocs -T kernel.lds`: the entries lie in `.init.data` between `__start_mcount_loc` and `__stop_mcount_loc`, no `__patchable_function_entries` section remains, stored words are zero, and each entry is an `R_AARCH64_RELATIVE` in `.rela.dyn` (`.elf`) |
| `kimage-zeroed` | `gcc-callops53-bti` only: its `kimage` with every entry zeroed (`zero_mcount` in `scripts/fixtures.sh`: the addend of each entry's `R_AARCH64_RELATIVE` set to 0), as Linux 6.12's `scripts/sorttable` leaves a vmlinux built with `-fpatchable-function-entry=5,3`: it zeroes the records it cannot place within a function, allowing 8 bytes before one (the 4,2 offset), and a 5,3 record is 12 bytes before (`.elf`) |
| `kimage-relr` | Clang only: the `kimage` link plus `--pack-dyn-relocs=relr`, as Linux's CONFIG_RELR: each entry is a RELR offset in `.relr.dyn` and its stored word holds the link-time address (RELR has no addend field); GNU ld 2.40 ignores `-z pack-relative-relocs` on aarch64, so there is no GCC one (`.elf`) |

Notes:
- GCC links with GNU ld, Clang with ld.lld (`-fuse-ld=lld`). Clang 14 does
  not default to PIE, so its `static` needs no `-no-pie` (GCC's does).
- Clang emits one `__patchable_function_entries` section per function even
  without `-ffunction-sections`, each SHF_LINK_ORDER to its function's text
  section. GCC 12 emits one per text section, and with `-ffunction-sections`
  it still emits ONE entries section whose SHF_LINK_ORDER link names the
  first function's section for all of them (a GCC 12 quirk): the link does
  not tell which text section an entry points into; the relocation does.
- `kimage` uses `-z max-page-size=4096` only to keep the files small.
- ld.lld does not apply dynamic relocations to the section contents by
  default (GNU ld does), so the Clang `pie` fixtures are linked with
  `-Wl,--apply-dynamic-relocs` to keep `pie` (stored words = addresses) and
  `pie-noapply` (stored words zero) different, as with GCC.
- GCC places cold functions in `.text.unlikely`, which `-falign-functions=8`
  does not align beyond 4: their literal can be misaligned. In ET_REL files
  the section's alignment (4) cannot guarantee it; after linking it is a
  matter of luck: in `gcc-callops-{static,kimage}.elf` the literal of
  `fx_more_cold.constprop.0` lands at 4 mod 8 (as built with the pinned
  toolchain). Clang puts cold functions in a section named `.text.unlikely.`
  (trailing dot) but keeps it aligned to 8.
- GCC renames the static cold functions `*.constprop.0` (a real symbol name
  that scanners must print as is).
- kCFI (`-fsanitize=kcfi`) puts a 4-byte type hash before the NOPs and
  aligns the hash: with 4,2 and `-falign-functions=8` every entry lands at 4
  mod 8 and every literal is misaligned (`clang16-kcfi-callops-bti-*`, on
  purpose); with 5,3 the aligned pair is always there.
- In the 5,3 fixtures entries fall at both 0 and 4 mod 8 (GCC aligns the
  first NOP, Clang packs functions at 4), so both pairs and, with BTI, both
  trampoline entries are exercised.
- Every fixture passes `aarch64-linux-gnu-readelf -a` without a warning, and
  every `kimage` is checked to know its entries only from relocations of the
  `__start_mcount_loc`..`__stop_mcount_loc` words.

## Commands

`$OBJ` is a scratch folder, `$OUT` is `testdata/fixtures`.
HDR

for cc in gcc clang; do
	if [[ $cc == gcc ]]; then
		CC=$GCC LDR=$GLD LINK="" NOPIE="-no-pie" PIEAPPLY=""
	else
		CC=$CLANG LDR=$LLD LINK="-fuse-ld=lld" NOPIE="" PIEAPPLY="-Wl,--apply-dynamic-relocs"
	fi
	for v in $VARIANTS; do
		flags="$COMMON ${VARIANT[$v]}"
		o=$tmp/$cc-$v
		mkdir -p "$o"
		base=$out/$cc-$v
		link="$CC $flags $LINK -nostdlib -Wl,--build-id=none"
		printf '\n### %s-%s\n\n' "$cc" "$v" >>"$readme"
		for f in funcs more start; do
			run $CC $flags -c $f.c -o "$o/$f.o"
		done
		run $CC $flags -ffunction-sections -c funcs.c -o "$o/funcs-fs.o"
		run cp "$o/funcs.o" "$base-obj.o"
		run cp "$o/funcs-fs.o" "$base-fsobj.o"
		run $LDR -r "$o/funcs.o" "$o/more.o" -o "$base-module.ko"
		run $link -static $NOPIE "$o/start.o" "$o/funcs.o" "$o/more.o" -o "$base-static.elf"
		run $link -pie $PIEAPPLY "$o/start.o" "$o/funcs.o" "$o/more.o" -o "$base-pie.elf"
		run $link -pie -Wl,--no-apply-dynamic-relocs "$o/start.o" "$o/funcs.o" "$o/more.o" \
			-o "$base-pie-noapply.elf"
		run $link $KLINK "$o/funcs.o" "$o/more.o" -o "$base-kimage.elf"
		kinds="obj.o fsobj.o module.ko static.elf pie.elf pie-noapply.elf kimage.elf"
		if [[ $cc == clang ]]; then
			run $link $KLINK -Wl,--pack-dyn-relocs=relr "$o/funcs.o" "$o/more.o" \
				-o "$base-kimage-relr.elf"
			kinds+=" kimage-relr.elf"
			check_kimage "$base-kimage-relr.elf" relr
		fi
		for k in $kinds; do
			check "$base-$k"
		done
		check_kimage "$base-kimage.elf"
	done
done
for cc in gcc clang clang16; do
	case $cc in
	gcc) CC=$GCC LDR=$GLD LINK="" NOPIE="-no-pie" LCC=$GCC vs="callops53 callops53-bti callops53-os" ;;
	clang) CC=$CLANG LDR=$LLD LINK="-fuse-ld=lld" NOPIE="" LCC=$CLANG vs="callops53 callops53-bti callops53-os" ;;
	clang16) CC=$CLANG16 LDR=$LLD LINK="-fuse-ld=lld" NOPIE="" LCC=$CLANG vs="kcfi-callops-bti kcfi-callops53-bti" ;;
	esac
	for v in $vs; do
		flags="$COMMON ${VARIANT53[$v]} -DFX_LIT24"
		o=$tmp/$cc-$v
		mkdir -p "$o"
		base=$out/$cc-$v
		link="$LCC $COMMON $LINK -nostdlib -Wl,--build-id=none -Wl,-z,max-page-size=4096"
		printf '\n### %s-%s\n\n' "$cc" "$v" >>"$readme"
		for f in funcs more start; do
			run $CC $flags -c $f.c -o "$o/$f.o"
		done
		run cp "$o/funcs.o" "$base-obj.o"
		run $LDR -r "$o/funcs.o" "$o/more.o" -o "$base-module.ko"
		run $link -static $NOPIE "$o/start.o" "$o/funcs.o" "$o/more.o" -o "$base-static.elf"
		run $link $KLINK "$o/funcs.o" "$o/more.o" -o "$base-kimage.elf"
		for k in obj.o module.ko static.elf kimage.elf; do
			check "$base-$k"
		done
		check_kimage "$base-kimage.elf"
	done
done
printf '\n### gcc-callops53-bti-kimage-zeroed\n\n' >>"$readme"
run zero_mcount "$out/gcc-callops53-bti-kimage.elf" "$out/gcc-callops53-bti-kimage-zeroed.elf"
check "$out/gcc-callops53-bti-kimage-zeroed.elf"
cp "$readme" "$out/README.md"

# build_ktree DIR: a kernel build tree in miniature, as `make ARCH=arm64
# vmlinux modules` leaves one (Linux 6.2+: modules.order lists objects),
# made of the fixtures above: what ftpatch takes from it (vmlinux, the
# modules modules.order lists, the module it does not list) and what it must
# leave alone (intermediate objects, an ar archive, the raw Image, a host
# object for x86-64, an arm32 object, text files).
build_ktree() {
	local d=$1 f=$out
	rm -rf "${d:?}"/*
	mkdir -p "$d/fs/ext" "$d/drivers/drv" "$d/extra" "$d/scripts/dtc" \
		"$d/arch/arm64/boot" "$d/arch/arm64/kernel/vdso32"
	cp "$f/clang-callops-bti-kimage.elf" "$d/vmlinux"
	cp "$f/clang-callops-bti-module.ko" "$d/fs/ext/ext.ko"
	cp "$f/clang-callops-bti-obj.o" "$d/fs/ext/ext.o"
	cp "$f/clang-callops-bti-obj.o" "$d/fs/ext/super.o"
	cp "$f/clang-callops53-bti-module.ko" "$d/drivers/drv/drv.ko"
	cp "$f/clang-callops53-bti-obj.o" "$d/drivers/drv/drv.o"
	cp "$f/gcc-callops53-bti-module.ko" "$d/extra/dkms.ko"
	cp "$f/clang-callops-bti-obj.o" "$d/vmlinux.o"
	(cd "$d" && aarch64-linux-gnu-ar rcD vmlinux.a fs/ext/super.o drivers/drv/drv.o)
	aarch64-linux-gnu-objcopy -O binary "$d/vmlinux" "$d/arch/arm64/boot/Image"
	(cd "$src" && $HOSTCC -O2 -g0 -fno-asynchronous-unwind-tables -c host.c -o "$d/scripts/dtc/dtc.o")
	(cd "$src" && clang --target=armv7a-linux-gnueabihf -O2 -g0 -ffreestanding -c host.c \
		-o "$d/arch/arm64/kernel/vdso32/vgettimeofday.o")
	printf 'fs/ext/ext.o\ndrivers/drv/drv.o\n' >"$d/modules.order"
	printf 'obj-m += fs/ext/ drivers/drv/\n' >"$d/Makefile"
	cat >"$d/README.md" <<'KT'
# A kernel build tree in miniature

Generated by `scripts/fixtures.sh` (`make testdata`) from the fixtures in
`testdata/fixtures`; do not edit. Shaped as `make ARCH=arm64 vmlinux modules`
leaves a tree of Linux 6.2+ (`modules.order` lists the modules' objects):

| file | what it stands for | ftpatch |
|---|---|---|
| `vmlinux` | the image (`clang-callops-bti-kimage.elf`) | input |
| `modules.order` | lists `fs/ext/ext.o`, `drivers/drv/drv.o` | makes the folder a kernel tree |
| `fs/ext/ext.ko` | a module (`clang-callops-bti-module.ko`) | input (listed) |
| `drivers/drv/drv.ko` | a 5,3 module (`clang-callops53-bti-module.ko`) | input (listed) |
| `extra/dkms.ko` | an out-of-tree module (`gcc-callops53-bti-module.ko`) | input (not listed) |
| `fs/ext/ext.o`, `fs/ext/super.o`, `drivers/drv/drv.o`, `vmlinux.o` | intermediate objects | not inputs of the tree (`--all-files` walks them) |
| `vmlinux.a` | an `ar` archive of objects | skipped by a walk: not ELF |
| `arch/arm64/boot/Image` | the raw image (`objcopy -O binary`) | skipped: not ELF |
| `scripts/dtc/dtc.o` | a host object (the host's gcc: x86-64) | skipped: not AArch64 |
| `arch/arm64/kernel/vdso32/vgettimeofday.o` | an arm32 vDSO object (`clang --target=armv7a-linux-gnueabihf`) | skipped: not AArch64 |
| `Makefile`, `README.md` | text | skipped: not ELF |
KT
}
build_ktree "$ktree"

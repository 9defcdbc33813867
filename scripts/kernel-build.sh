#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kernel-build.sh OUTDIR [FTPATCH]
#
# Builds the kernel-like tree in testdata/kernel with Debian 12's
# aarch64-linux-gnu-gcc 12 and binutils 2.40, reproducibly (same inputs and
# tools, same bytes), into OUTDIR:
#
#   OUTDIR/vmlinux                 relocatable image, linked like arm64's vmlinux
#   OUTDIR/modules/drv.ko          two-file module, ld -r -T module.lds
#   OUTDIR/modules-compressed/     drv.ko.{xz,zst,gz}, for each tool installed
#   OUTDIR/tramp.o                 `FTPATCH trampoline -o tramp.o`, or the stub
#   OUTDIR/subset.txt              the functions the flow test enables (sched_*)
#   OUTDIR/misaligned.txt          the cold function whose literal is at 4 mod 8
#   OUTDIR/obj/                    the objects
#
# The image and the module must use the call-ops scheme; the script checks
# what the flow test relies on and fails loudly otherwise.
set -euo pipefail
export LC_ALL=C

if [[ $# -lt 1 || $# -gt 2 ]]; then
	echo "usage: $0 OUTDIR [FTPATCH]" >&2
	exit 2
fi
out=$1
ftpatch=${2:-}
# The build below changes folder: make a relative FTPATCH path absolute first
# (a bare name is looked up in PATH, as the shell would).
if [[ -n $ftpatch && $ftpatch == */* ]]; then
	ftpatch=$(cd "$(dirname "$ftpatch")" && pwd)/$(basename "$ftpatch")
fi
src=$(cd "$(dirname "$0")/../testdata/kernel" && pwd)
cross=${CROSS_COMPILE:-aarch64-linux-gnu-}
cc=${cross}gcc
ld=${cross}ld
nm=${cross}nm
readelf=${cross}readelf

for tool in "$cc" "$ld" "$nm" "$readelf"; do
	command -v "$tool" >/dev/null || { echo "$0: $tool not found (apt: gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu)" >&2; exit 2; }
done

# Linux's arm64 flags that shape the code (arch/arm64/Makefile, Makefile):
# CALL_OPS' -fpatchable-function-entry=4,2 with FUNCTION_ALIGNMENT_8B's
# -falign-functions=8, BTI (Linux uses pac-ret+leaf+bti; "standard" is
# bti+pac-ret), no unwind tables, general registers only, -fno-PIE (the image
# is made relocatable by the link, not by the compiler).
cflags=(
	-std=gnu11 -O2 -nostdinc -ffreestanding -fno-common -fno-strict-aliasing
	-fno-PIE -fno-pic -mabi=lp64 -mlittle-endian -mcmodel=small -mgeneral-regs-only
	-fno-asynchronous-unwind-tables -fno-unwind-tables
	-ffunction-sections -fdata-sections
	-fpatchable-function-entry=4,2 -falign-functions=8
	-mbranch-protection=standard
	-Wall
)

rm -rf "$out/obj" "$out/modules" "$out/modules-compressed"
mkdir -p "$out/obj/drivers" "$out/modules" "$out/modules-compressed"
obj=$(cd "$out/obj" && pwd)

# Compile from inside the source tree with relative names: no build paths in
# the objects (the STT_FILE symbols are "core.c", ...).
image_srcs=(core.c sched.c mm.c fs.c cold.c)
module_srcs=(drivers/drv_main.c drivers/drv_util.c)
(
	cd "$src"
	for c in "${image_srcs[@]}" "${module_srcs[@]}"; do
		"$cc" "${cflags[@]}" -c "$c" -o "$obj/${c%.c}.o"
	done
	if [[ -n $ftpatch ]]; then
		"$ftpatch" trampoline -o "$obj/tramp.o"
	else
		"$cc" -c ftrace_stub.S -o "$obj/tramp.o"
	fi
)
cp "$obj/tramp.o" "$out/tramp.o"

# arm64's LDFLAGS_vmlinux with CONFIG_RELOCATABLE.
image_objs=()
for c in "${image_srcs[@]}"; do image_objs+=("$obj/${c%.c}.o"); done
"$ld" -EL -maarch64elf --no-undefined -X --no-warn-rwx-segments \
	-shared -Bsymbolic -z notext --no-apply-dynamic-relocs \
	-T "$src/vmlinux.lds" -o "$out/vmlinux" "${image_objs[@]}" "$obj/tramp.o"

# Modules: kbuild's modpost-free essence, a partial link.
"$ld" -EL -maarch64elf -r -T "$src/module.lds" -o "$out/modules/drv.ko" \
	"$obj/drivers/drv_main.o" "$obj/drivers/drv_util.o"

# Compressed copies, as distributions ship modules (kbuild's flags).
ko=$out/modules/drv.ko
cz=$out/modules-compressed
command -v xz >/dev/null && xz -c --check=crc32 --lzma2=dict=1MiB "$ko" >"$cz/drv.ko.xz"
command -v zstd >/dev/null && zstd -q -c -T1 "$ko" >"$cz/drv.ko.zst"
command -v gzip >/dev/null && gzip -c -n -9 "$ko" >"$cz/drv.ko.gz"

# --- what the flow test relies on -------------------------------------------
fail() { echo "$0: $*" >&2; exit 1; }

"$nm" "$out/vmlinux" | awk '$3 ~ /^sched_/ && $2 ~ /[Tt]/ { print $3 }' | sort >"$out/subset.txt"
[[ -s $out/subset.txt ]] || fail "no sched_ functions in vmlinux"

"$nm" "$out/vmlinux" | grep -q ' ftrace_caller$' || fail "vmlinux defines no ftrace_caller (trampoline)"
for sym in ops ftrace_nop_ops __start_mcount_loc __stop_mcount_loc; do
	"$nm" "$out/vmlinux" | grep -q " $sym\$" || fail "vmlinux defines no $sym"
done
if "$readelf" -SW "$out/vmlinux" | grep -q __patchable_function_entries; then
	fail "vmlinux still has a __patchable_function_entries section"
fi

# The designated cold function must have its literal (entry-8) at 4 mod 8:
# GCC 12 aligns cold functions to 4 only, and the functions before it in
# cold.o are sized so that it lands there. If a compiler change moves it,
# resize oom_score() or warn_slowpath() in cold.c.
misaligned=oom_kill_process
addr=$("$nm" "$out/vmlinux" | awk -v f="$misaligned" '$3 == f { print $1 }')
[[ -n $addr ]] || fail "$misaligned not found in vmlinux"
(( ((0x$addr - 8) & 7) == 4 )) || fail "$misaligned at 0x$addr: literal not at 4 mod 8; resize oom_score() or warn_slowpath() in cold.c"
echo "$misaligned" >"$out/misaligned.txt"

echo "kernel-build: $out/vmlinux ($(wc -l <"$out/subset.txt") sched_ functions, $misaligned misaligned), $out/modules/drv.ko"

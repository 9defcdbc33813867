// SPDX-License-Identifier: Apache-2.0

package elfscan

// What a linked file says about where it runs.

// kaslrSymbols are defined by an arm64 Linux image built with
// CONFIG_RANDOMIZE_BASE (arch/arm64/kernel/kaslr.o, pi/kaslr_early.pi.o;
// their names over Linux 5.x-6.x), and by no image built without it.
var kaslrSymbols = []string{"kaslr_init", "kaslr_early_init", "__pi_kaslr_early_init", "__kaslr_is_enabled"}

// RunsAtLinkAddress reports whether o is an arm64 Linux kernel image that
// runs at the virtual addresses it was linked at, although it may be
// relocatable (ET_DYN, CONFIG_RELOCATABLE): it defines linux_banner (every
// Linux image does) and its entries table (__start_mcount_loc), and none
// of the symbols KASLR brings. Without KASLR the kernel keeps its 2 MiB
// placement so that its virtual addresses are those vmlinux records
// (arch/arm64/include/asm/efi.h, efi_get_kimg_min_align; pi/map_kernel.c
// relocates it by an offset of 0), so an absolute address written into it
// stays right. A file whose symbols cannot be read is not one.
func (o *Object) RunsAtLinkAddress() bool {
	for _, name := range []string{"linux_banner", "__start_mcount_loc"} {
		if _, err := o.Lookup(name); err != nil {
			return false
		}
	}
	for _, name := range kaslrSymbols {
		if _, err := o.Lookup(name); err == nil {
			return false
		}
	}
	return true
}

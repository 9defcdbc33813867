// SPDX-License-Identifier: Apache-2.0
// C side of the hook trampolines: uc_hook_add is variadic, which cgo cannot
// call, and the callbacks must be C function pointers that forward to the
// exported Go functions in hook.go. Both go through ftp_uc (uc.h).
#include "uc.h"
#include "_cgo_export.h"

static void code_cb(uc_engine *uc, uint64_t addr, uint32_t size, void *user) {
	goHookCode(uc, addr, size, (uintptr_t)user);
}

static bool mem_invalid_cb(uc_engine *uc, uc_mem_type type, uint64_t addr, int size, int64_t value, void *user) {
	return goHookMemInvalid(uc, type, addr, size, value, (uintptr_t)user);
}

uc_err ftp_hook_add_code(uc_engine *uc, uc_hook *h, int type, uintptr_t user, uint64_t begin, uint64_t end) {
	return ftp_uc.uc_hook_add(uc, h, type, (void *)code_cb, (void *)user, begin, end);
}

uc_err ftp_hook_add_mem_invalid(uc_engine *uc, uc_hook *h, int type, uintptr_t user, uint64_t begin, uint64_t end) {
	return ftp_uc.uc_hook_add(uc, h, type, (void *)mem_invalid_cb, (void *)user, begin, end);
}

// uc_ctl is variadic too.
uc_err ftp_tb_flush(uc_engine *uc) {
	return ftp_uc.uc_ctl(uc, UC_CTL_WRITE(UC_CTL_TB_FLUSH, 0));
}

uc_err ftp_tb_remove(uc_engine *uc, uint64_t begin, uint64_t end) {
	return ftp_uc.uc_ctl(uc, UC_CTL_WRITE(UC_CTL_TB_REMOVE_CACHE, 2), begin, end);
}

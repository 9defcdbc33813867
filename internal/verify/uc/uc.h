#include <stdint.h>
#include <unicorn/unicorn.h>
uc_err ftp_hook_add_code(uc_engine *uc, uc_hook *h, int type, uintptr_t user, uint64_t begin, uint64_t end);
uc_err ftp_hook_add_mem_invalid(uc_engine *uc, uc_hook *h, int type, uintptr_t user, uint64_t begin, uint64_t end);
uc_err ftp_tb_flush(uc_engine *uc);
uc_err ftp_tb_remove(uc_engine *uc, uint64_t begin, uint64_t end);

// SPDX-License-Identifier: Apache-2.0
// Lazy loading of libunicorn: package dl opens it, this binds it; see uc.h.
#include "uc.h"

struct ftp_uc_table ftp_uc;

const char *const ftp_uc_names[] = {
#define FTP_UC_NAME(f) #f,
	FTP_UC_FUNCS(FTP_UC_NAME)
#undef FTP_UC_NAME
};
const int ftp_uc_nnames = sizeof ftp_uc_names / sizeof ftp_uc_names[0];

int ftp_uc_bind(void *const *syms, unsigned *major, unsigned *minor) {
	struct ftp_uc_table t;
	int i = 0;
	// POSIX allows converting dlsym's void * to a function pointer.
#define FTP_UC_BIND(f) t.f = (__typeof__(t.f))syms[i++];
	FTP_UC_FUNCS(FTP_UC_BIND)
#undef FTP_UC_BIND
	// The constants and layouts compiled in come from the 2.x headers
	// (UC_API_MAJOR); 1.x has a different API under the same function names.
	*major = 0;
	*minor = 0;
	t.uc_version(major, minor);
	if (*major != UC_API_MAJOR)
		return 0;
	ftp_uc = t;
	return 1;
}

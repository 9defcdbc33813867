// Lazy loading of libunicorn; see uc.h.
#include <dlfcn.h>
#include <stdio.h>
#include "uc.h"

struct ftp_uc_table ftp_uc;

static char load_err[512];

const char *ftp_uc_load(const char *name) {
	void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		snprintf(load_err, sizeof load_err, "%s", dlerror());
		return load_err;
	}
	struct ftp_uc_table t;
	void *sym;
	// POSIX allows converting dlsym's void * to a function pointer.
#define FTP_UC_RESOLVE(f) \
	dlerror(); \
	sym = dlsym(lib, #f); \
	if (sym == NULL) { \
		const char *e = dlerror(); \
		snprintf(load_err, sizeof load_err, "%s", e != NULL ? e : name); \
		dlclose(lib); \
		return load_err; \
	} \
	t.f = (__typeof__(t.f))sym;
	FTP_UC_FUNCS(FTP_UC_RESOLVE)
#undef FTP_UC_RESOLVE
	// The constants and layouts compiled in come from the 2.x headers
	// (UC_API_MAJOR); 1.x has a different API under the same function names.
	unsigned int major = 0, minor = 0;
	t.uc_version(&major, &minor);
	if (major != UC_API_MAJOR) {
		snprintf(load_err, sizeof load_err, "%s is Unicorn %u.%u, need %d.x (at least %d.0)",
			name, major, minor, UC_API_MAJOR, UC_API_MAJOR);
		dlclose(lib);
		return load_err;
	}
	ftp_uc = t;
	return NULL;
}

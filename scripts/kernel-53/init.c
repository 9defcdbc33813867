// SPDX-License-Identifier: Apache-2.0
//
// init: the only program of the initramfs `make kernel-53-check` boots
// (scripts/kernel-53-check.sh). Built with aarch64-linux-gnu-gcc -static.
//
// It mounts tracefs, puts the functions listed in /filter (one a line,
// chosen by the check from ftpatch's scan of the kernel) in
// set_ftrace_filter, turns the function tracer on, makes the system calls
// that reach those functions, turns tracing off, prints the trace and the
// enabled functions to the console between marker lines, and powers off.
// Every step says what it did or why it failed; a failure still powers off
// (the check then finds the markers or the trace lines missing).
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/times.h>
#include <sys/utsname.h>
#include <unistd.h>

#define TRACEFS "/tracing"

static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("k53-init: ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	fflush(stdout);
	va_end(ap);
}

// put writes s to the tracefs file name (truncating it). tracefs takes
// one name of set_ftrace_filter per write: write what is left until all is.
static int put(const char *name, const char *s)
{
	char path[256];
	size_t left = strlen(s);
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", TRACEFS, name);
	fd = open(path, O_WRONLY | O_TRUNC);
	if (fd < 0) {
		say("open %s: %s", path, strerror(errno));
		return -1;
	}
	while (left > 0) {
		n = write(fd, s, left);
		if (n <= 0) {
			say("write %s (%s): %s", path, s, n < 0 ? strerror(errno) : "nothing written");
			close(fd);
			return -1;
		}
		s += n;
		left -= n;
	}
	close(fd);
	return 0;
}

// cat copies the file at path to stdout.
static void cat(const char *path)
{
	char buf[4096];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0) {
		say("open %s: %s", path, strerror(errno));
		return;
	}
	fflush(stdout);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		write(1, buf, n);
	close(fd);
}

// slurp reads at most size-1 bytes of path into buf, NUL-terminated.
static int slurp(const char *path, char *buf, size_t size)
{
	ssize_t n, got = 0;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -1;
	while (got < (ssize_t)size - 1 && (n = read(fd, buf + got, size - 1 - got)) > 0)
		got += n;
	close(fd);
	buf[got] = 0;
	return 0;
}

// trigger makes the system calls whose kernel functions the check may
// choose (see candidates in scripts/kernel-53-check.sh), each a few times.
static void trigger(void)
{
	struct utsname u;
	struct tms t;
	struct sysinfo si;
	struct rusage ru;
	struct rlimit rl;
	char cwd[64];

	for (int i = 0; i < 3; i++) {
		syscall(SYS_getpid);
		syscall(SYS_getppid);
		syscall(SYS_gettid);
		syscall(SYS_getuid);
		syscall(SYS_geteuid);
		syscall(SYS_getgid);
		syscall(SYS_getegid);
		syscall(SYS_getpgid, 0);
		syscall(SYS_getsid, 0);
		syscall(SYS_getpriority, PRIO_PROCESS, 0);
		syscall(SYS_uname, &u);
		syscall(SYS_times, &t);
		syscall(SYS_sysinfo, &si);
		syscall(SYS_getrusage, RUSAGE_SELF, &ru);
		syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &rl);
		syscall(SYS_getcwd, cwd, sizeof(cwd));
		syscall(SYS_umask, 022);
		syscall(SYS_sched_yield);
	}
}

int main(void)
{
	static char filter[16384];

	say("start");
	if (mount("tracefs", TRACEFS, "tracefs", 0, NULL))
		say("mount tracefs on %s: %s", TRACEFS, strerror(errno));
	else if (slurp("/filter", filter, sizeof(filter)))
		say("read /filter: %s", strerror(errno));
	else if (put("set_ftrace_filter", filter) == 0 &&
		 put("current_tracer", "function") == 0 &&
		 put("tracing_on", "1") == 0) {
		say("tracing on");
		trigger();
		put("tracing_on", "0");
		say("tracing off");
		puts("k53-init: ---- set_ftrace_filter ----");
		cat(TRACEFS "/set_ftrace_filter");
		puts("k53-init: ---- enabled_functions ----");
		cat(TRACEFS "/enabled_functions");
		puts("k53-init: ---- trace ----");
		cat(TRACEFS "/trace");
		puts("k53-init: ---- end ----");
	}
	say("power off");
	fflush(stdout);
	sync();
	reboot(RB_POWER_OFF);
	say("reboot: %s", strerror(errno));
	for (;;)
		pause();
}

/*
 * no-uring: run a program with io_uring blocked the way Docker's default
 * seccomp profile blocks it (io_uring_setup, _enter and _register fail with
 * EPERM). Raw classic BPF, so the tests need no libseccomp.
 * "-e ENOSYS" makes them fail the way a kernel without io_uring does.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

/* The io_uring syscalls share these numbers on every architecture that uses
 * the generic table, and on x86_64 and i386 alike. */
#define NR_IO_URING_SETUP 425
#define NR_IO_URING_ENTER 426
#define NR_IO_URING_REGISTER 427

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#define COMPAT_ARCH AUDIT_ARCH_I386
/* x32 calls carry this bit in the number; strip it so they are caught too. */
#define NR_MASK (~0x40000000u)
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#define COMPAT_ARCH AUDIT_ARCH_ARM
#define NR_MASK (~0u)
#else
#error "no-uring: unsupported architecture"
#endif

static int parse_errno(const char *name)
{
	if (strcmp(name, "EPERM") == 0)
		return EPERM;
	if (strcmp(name, "ENOSYS") == 0)
		return ENOSYS;
	return -1;
}

int main(int argc, char **argv)
{
	int err = EPERM;

	if (argc >= 3 && strcmp(argv[1], "-e") == 0) {
		err = parse_errno(argv[2]);
		argv += 2;
		argc -= 2;
	}
	if (argc < 2 || err < 0) {
		fprintf(stderr, "usage: no-uring [-e EPERM|ENOSYS] PROGRAM [ARGS...]\n");
		return 2;
	}
	const unsigned deny = SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA);
	struct sock_filter filter[] = {
		/* Only judge calls made through an ABI whose numbers we know. */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 1, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, COMPAT_ARCH, 0, 5),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, NR_MASK),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NR_IO_URING_SETUP, 3, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NR_IO_URING_ENTER, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NR_IO_URING_REGISTER, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, deny),
	};
	struct sock_fprog prog = {
		.len = sizeof(filter) / sizeof(filter[0]),
		.filter = filter,
	};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		fprintf(stderr, "no-uring: PR_SET_NO_NEW_PRIVS: %s\n", strerror(errno));
		return 1;
	}
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) {
		fprintf(stderr, "no-uring: PR_SET_SECCOMP: %s\n", strerror(errno));
		return 1;
	}
	execvp(argv[1], argv + 1);
	fprintf(stderr, "no-uring: %s: %s\n", argv[1], strerror(errno));
	return 127;
}

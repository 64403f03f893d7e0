/* bench/floor: what the kernel alone costs per echo round trip. One
 * thread, blocking sockets, no readiness API: it holds CONNS connections
 * and serves them in turn, reading one SIZE-byte request from each and
 * writing it back, which is the least any server must do per request.
 * Its CPU time per request, read by `ringd-probe --load --server-pid`,
 * is the floor every real server sits above. It serves in lockstep, so
 * it suits a load with one request in flight per connection, as
 * ringd-probe's is; a connection that ends frees its slot for the next
 * one accepted (a readiness check's connection, say). It runs until a
 * signal stops it. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONNS_MAX     10000ul
#define SIZE_MAX_ECHO (64ul << 20)
#define BUF_MAX	      ((size_t)1 << 20)

static unsigned long number(const char *what, const char *s, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v > max) {
		fprintf(stderr, "floor: %s wants 1..%lu, not '%s'\n", what, max,
			s);
		exit(2);
	}
	return v;
}

static int listen_on(unsigned port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port) };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 4096) < 0) {
		fprintf(stderr, "floor: listen on 127.0.0.1:%u: %s\n", port,
			strerror(errno));
		exit(1);
	}
	return fd;
}

static bool send_all(int fd, const unsigned char *p, size_t n)
{
	while (n) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		p += k;
		n -= (size_t)k;
	}
	return true;
}

/* One request of size bytes, echoed as it arrives; false when the
 * connection ended or failed. */
static bool echo_one(int fd, unsigned char *buf, size_t bufsz, size_t size)
{
	while (size) {
		ssize_t n = recv(fd, buf, size < bufsz ? size : bufsz, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || !send_all(fd, buf, (size_t)n))
			return false;
		size -= (size_t)n;
	}
	return true;
}

static int accept_one(int lfd)
{
	int one = 1, fd;

	do
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	while (fd < 0 && (errno == EINTR || errno == ECONNABORTED));
	if (fd < 0) {
		fprintf(stderr, "floor: accept: %s\n", strerror(errno));
		exit(1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int main(int argc, char **argv)
{
	unsigned long port, conns, size;
	size_t bufsz;
	unsigned char *buf;
	int lfd, *fds;

	if (argc != 4) {
		fputs("usage: floor PORT CONNS SIZE   (echo on "
		      "127.0.0.1:PORT)\n",
		      stderr);
		return 2;
	}
	port = number("PORT", argv[1], 65535);
	conns = number("CONNS", argv[2], CONNS_MAX);
	size = number("SIZE", argv[3], SIZE_MAX_ECHO);
	bufsz = size < BUF_MAX ? size : BUF_MAX;
	buf = malloc(bufsz);
	fds = malloc(conns * sizeof(*fds));
	if (!buf || !fds) {
		fputs("floor: out of memory\n", stderr);
		return 1;
	}
	lfd = listen_on((unsigned)port);
	for (unsigned long i = 0; i < conns; i++)
		fds[i] = -1;
	for (;;) {
		for (unsigned long i = 0; i < conns; i++) {
			if (fds[i] < 0)
				fds[i] = accept_one(lfd);
			if (!echo_one(fds[i], buf, bufsz, size)) {
				close(fds[i]);
				fds[i] = -1;
			}
		}
	}
}

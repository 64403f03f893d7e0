/* The sd_notify client against our own receiving sockets: a path in a
 * temporary directory and an abstract name, nothing sent when
 * NOTIFY_SOCKET is unset, -errno when nobody listens or the name is bad. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/notify.h"

static char dir[] = "/tmp/ringd-notify-XXXXXX";
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static char msg[4096];

static int tmpdir_create(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/ringd-notify-XXXXXX");
	sock_path[0] = '\0';
	unsetenv("NOTIFY_SOCKET");
	return mkdtemp(dir) != NULL ? 0 : -1;
}

static int tmpdir_remove(void **state)
{
	(void)state;
	unsetenv("NOTIFY_SOCKET");
	if (sock_path[0] == '/')
		unlink(sock_path);
	return rmdir(dir);
}

/* A datagram socket bound to "/path" or "@abstract", as systemd's is. */
static int receiver(const char *name)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t len = strlen(name);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_true(len <= sizeof(sun.sun_path) - (name[0] == '/'));
	memcpy(sun.sun_path, name, len);
	if (name[0] == '@')
		sun.sun_path[0] = '\0';
	else
		len++;
	len += offsetof(struct sockaddr_un, sun_path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, (socklen_t)len), 0);
	if (name[0] == '/')
		strcpy(sock_path, name);
	return fd;
}

/* The next datagram within a second, NUL-terminated; its length or -1. */
static ssize_t receive(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t n;

	if (poll(&pfd, 1, 1000) != 1)
		return -1;
	n = recv(fd, msg, sizeof(msg) - 1, MSG_DONTWAIT);
	assert_true(n >= 0);
	msg[n] = '\0';
	return n;
}

/* Nothing queued now: notify_send() is synchronous, so no need to wait. */
static void expect_nothing(int fd)
{
	assert_int_equal(recv(fd, msg, sizeof(msg), MSG_DONTWAIT), -1);
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
}

/* The lowest free descriptor, to see that notify_send() closes its own. */
static int lowest_free_fd(void)
{
	int fd = dup(STDIN_FILENO);

	assert_true(fd >= 0);
	close(fd);
	return fd;
}

static void path_in_dir(char *buf, size_t size, const char *name)
{
	assert_true((size_t)snprintf(buf, size, "%s/%s", dir, name) < size);
}

static void test_notify_unset_sends_nothing(void **state)
{
	char path[sizeof(sock_path)];
	int fd;

	(void)state;
	path_in_dir(path, sizeof(path), "notify");
	fd = receiver(path);

	assert_int_equal(notify_send("READY=1"), 0);
	expect_nothing(fd);
	assert_int_equal(setenv("NOTIFY_SOCKET", "", 1), 0);
	assert_int_equal(notify_send("READY=1"), 0);
	expect_nothing(fd);

	/* The variable is read at each call, not remembered. */
	assert_int_equal(setenv("NOTIFY_SOCKET", path, 1), 0);
	assert_int_equal(notify_send("STOPPING=1"), 0);
	assert_int_equal(receive(fd), 10);
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(notify_send("READY=1"), 0);
	expect_nothing(fd);
	close(fd);
}

static void test_notify_path_socket(void **state)
{
	static const char text[] = "READY=1\nSTATUS=x";
	char path[sizeof(sock_path)];
	int fd, free_fd;

	(void)state;
	path_in_dir(path, sizeof(path), "notify");
	fd = receiver(path);
	assert_int_equal(setenv("NOTIFY_SOCKET", path, 1), 0);
	free_fd = lowest_free_fd();

	assert_int_equal(notify_send(text), 0);
	/* Exactly the text: no NUL, no newline added. */
	assert_int_equal(receive(fd), (ssize_t)strlen(text));
	assert_memory_equal(msg, text, strlen(text));
	expect_nothing(fd);
	assert_int_equal(lowest_free_fd(), free_fd);

	/* One datagram per call. */
	assert_int_equal(notify_send("STATUS=reloading\nRELOADING=1"), 0);
	assert_int_equal(notify_send("READY=1"), 0);
	assert_int_equal(receive(fd), 28);
	assert_string_equal(msg, "STATUS=reloading\nRELOADING=1");
	assert_int_equal(receive(fd), 7);
	assert_string_equal(msg, "READY=1");
	expect_nothing(fd);
	close(fd);
}

/* READY=1 sent to NOTIFY_SOCKET=name arrives at a socket bound to name. */
static void expect_ready_reaches(const char *name)
{
	int fd = receiver(name);

	assert_int_equal(setenv("NOTIFY_SOCKET", name, 1), 0);
	assert_int_equal(notify_send("READY=1"), 0);
	assert_int_equal(receive(fd), 7);
	assert_string_equal(msg, "READY=1");
	close(fd);
}

static void test_notify_longest_path(void **state)
{
	char path[sizeof(sock_path)], name[sizeof(sock_path)];
	size_t room = sizeof(sock_path) - 1 - strlen(dir) - 1;

	(void)state;
	/* 107 bytes and the NUL fill sun_path exactly. */
	memset(name, 'n', room);
	name[room] = '\0';
	path_in_dir(path, sizeof(path), name);
	assert_int_equal(strlen(path), sizeof(sock_path) - 1);
	expect_ready_reaches(path);
}

static void test_notify_abstract_socket(void **state)
{
	char name[64];
	int fd;

	(void)state;
	snprintf(name, sizeof(name), "@ringd-test-notify-%ld-%s",
		 (long)getpid(), dir + strlen("/tmp/ringd-notify-"));
	fd = receiver(name);
	assert_int_equal(setenv("NOTIFY_SOCKET", name, 1), 0);
	/* The address is the name's bytes without a trailing NUL: a sender
	 * that counted one would reach another address, where nobody is. */
	assert_int_equal(notify_send("READY=1\nSTATUS=x"), 0);
	assert_int_equal(receive(fd), 16);
	assert_string_equal(msg, "READY=1\nSTATUS=x");
	expect_nothing(fd);
	close(fd);
}

static void test_notify_longest_abstract_name(void **state)
{
	char name[sizeof(sock_path) + 1];

	(void)state;
	/* '@' and 107 bytes: the whole of sun_path, no NUL. */
	memset(name, 'a', sizeof(sock_path));
	snprintf(name, 24, "@ringd-%ld-", (long)getpid());
	name[strlen(name)] = 'a';
	name[sizeof(sock_path)] = '\0';
	expect_ready_reaches(name);
}

static void test_notify_nobody_listening(void **state)
{
	char path[sizeof(sock_path)], name[64];
	int fd, free_fd = lowest_free_fd();

	(void)state;
	/* No such file. */
	path_in_dir(path, sizeof(path), "absent");
	assert_int_equal(setenv("NOTIFY_SOCKET", path, 1), 0);
	assert_int_equal(notify_send("READY=1"), -ENOENT);
	assert_int_equal(lowest_free_fd(), free_fd);

	/* A socket file left behind by a receiver that is gone. */
	path_in_dir(path, sizeof(path), "stale");
	fd = receiver(path);
	close(fd);
	assert_int_equal(setenv("NOTIFY_SOCKET", path, 1), 0);
	assert_int_equal(notify_send("READY=1"), -ECONNREFUSED);
	assert_int_equal(lowest_free_fd(), free_fd);

	/* An abstract name nobody bound. */
	snprintf(name, sizeof(name), "@ringd-test-absent-%ld-%s",
		 (long)getpid(), dir + strlen("/tmp/ringd-notify-"));
	assert_int_equal(setenv("NOTIFY_SOCKET", name, 1), 0);
	assert_int_equal(notify_send("READY=1"), -ECONNREFUSED);
	assert_int_equal(lowest_free_fd(), free_fd);
}

static void test_notify_rejects_bad_address(void **state)
{
	char path[512];
	int free_fd = lowest_free_fd();

	(void)state;
	/* Too long for sun_path: refused before anything is copied. */
	path[0] = '/';
	memset(path + 1, 'x', sizeof(path) - 2);
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(setenv("NOTIFY_SOCKET", path, 1), 0);
	assert_int_equal(notify_send("READY=1"), -EINVAL);
	/* 108 bytes leave no room for the NUL. */
	path[sizeof(sock_path)] = '\0';
	assert_int_equal(setenv("NOTIFY_SOCKET", path, 1), 0);
	assert_int_equal(notify_send("READY=1"), -EINVAL);
	/* An abstract name fills sun_path without a NUL, but no more. */
	path[0] = '@';
	path[sizeof(sock_path)] = 'x';
	path[sizeof(sock_path) + 1] = '\0';
	assert_int_equal(setenv("NOTIFY_SOCKET", path, 1), 0);
	assert_int_equal(notify_send("READY=1"), -EINVAL);
	/* Neither an absolute path nor an abstract name. */
	assert_int_equal(setenv("NOTIFY_SOCKET", "run/notify", 1), 0);
	assert_int_equal(notify_send("READY=1"), -EINVAL);
	assert_int_equal(lowest_free_fd(), free_fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_notify_unset_sends_nothing,
						tmpdir_create, tmpdir_remove),
		cmocka_unit_test_setup_teardown(test_notify_path_socket,
						tmpdir_create, tmpdir_remove),
		cmocka_unit_test_setup_teardown(test_notify_longest_path,
						tmpdir_create, tmpdir_remove),
		cmocka_unit_test_setup_teardown(test_notify_longest_abstract_name,
						tmpdir_create, tmpdir_remove),
		cmocka_unit_test_setup_teardown(test_notify_abstract_socket,
						tmpdir_create, tmpdir_remove),
		cmocka_unit_test_setup_teardown(test_notify_nobody_listening,
						tmpdir_create, tmpdir_remove),
		cmocka_unit_test_setup_teardown(test_notify_rejects_bad_address,
						tmpdir_create, tmpdir_remove),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* sd_notify client: READY, STOPPING and STATUS datagrams to systemd or to
 * a test harness that set NOTIFY_SOCKET. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"

int notify_send(const char *text)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t plen;
	socklen_t len;
	ssize_t n;
	int fd, err = 0;

	if (!path || !*path)
		return 0;
	plen = strlen(path);
	/* A path needs room for its NUL; an abstract name fills sun_path. */
	if ((path[0] != '/' && path[0] != '@') ||
	    plen > sizeof(sun.sun_path) - (path[0] == '/'))
		return -EINVAL;
	memcpy(sun.sun_path, path, plen);
	/* An abstract address starts with a NUL and is not NUL-terminated. */
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen +
			  (path[0] == '/'));

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	n = sendto(fd, text, strlen(text), MSG_NOSIGNAL,
		   (struct sockaddr *)&sun, len);
	if (n < 0)
		err = -errno;
	close(fd);
	return err;
}

/* The load options, parsed and checked without sockets. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "probe/cli.h"
#include "probe/load.h"

bool load_is_option(int ch)
{
	return ch == 'c' || ch == 'd' || ch == 'n' ||
	       (ch >= LOAD_OPT_LOAD && ch <= LOAD_OPT_NAME);
}

/* Decimal digits only, 1..max. */
static int whole(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*out = strtoull(s, &end, 10);
	if (errno || *end || *out == 0 || *out > max)
		return -EINVAL;
	return 0;
}

int load_option(struct load_opts *lo, int ch, const char *arg, const char **why)
{
	unsigned long long v;

	lo->any = true;
	switch (ch) {
	case LOAD_OPT_LOAD:
		lo->on = true;
		return 0;
	case 'c':
		*why = "-c wants 1..10000 connections";
		if (whole(arg, LOAD_CONNS_MAX, &v) < 0)
			return -EINVAL;
		lo->conns = (unsigned)v;
		return 0;
	case 'd':
		*why = "-d wants a duration (5s, 500ms)";
		return cli_parse_duration(arg, &lo->duration_ns);
	case 'n':
		*why = "-n wants 1..10^12 requests";
		if (whole(arg, LOAD_REQUESTS_MAX, &v) < 0)
			return -EINVAL;
		lo->requests = v;
		return 0;
	case LOAD_OPT_NO_KEEPALIVE:
		lo->no_keepalive = true;
		return 0;
	case LOAD_OPT_SERVER_PID:
		*why = "--server-pid wants a process id";
		if (whole(arg, 1u << 30, &v) < 0)
			return -EINVAL;
		lo->server_pid = (long)v;
		return 0;
	case LOAD_OPT_WARMUP:
		*why = "--warmup wants a duration (1s, 500ms)";
		return cli_parse_duration(arg, &lo->warmup_ns);
	case LOAD_OPT_NAME:
		*why = "--name wants a label without blanks";
		if (!*arg || strpbrk(arg, " \t\n\r") || strlen(arg) > 100)
			return -EINVAL;
		lo->name = arg;
		return 0;
	default:
		*why = "not a load option";
		return -EINVAL;
	}
}

int load_validate(const struct load_opts *lo, int nurls, unsigned count,
		  bool prometheus, const char **why)
{
	if (!lo->on) {
		*why = "-c, -d, -n, --no-keepalive, --server-pid, --warmup "
		       "and --name need --load";
		return lo->any ? -EINVAL : 0;
	}
	*why = "--load wants one of -d DURATION and -n REQUESTS";
	if (!lo->duration_ns == !lo->requests)
		return -EINVAL;
	*why = "--load drives one URL";
	if (nurls != 1)
		return -EINVAL;
	*why = "--count and --prometheus are for checks, not --load";
	if (count > 1 || prometheus)
		return -EINVAL;
	return 0;
}

/* The server's CPU time for --server-pid: utime + stime from
 * /proc/N/stat of the process and of its live descendants, since a
 * server like nginx does its work in child processes, whose time the
 * parent's stat shows only once they are reaped. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probe/load.h"

int load_parse_stat(const char *line, long *ppid, uint64_t *ticks)
{
	/* The command name may hold blanks and parentheses: the fields
	 * start after its last ')'. */
	const char *p = strrchr(line, ')');
	unsigned long long v[13];
	char *end;

	if (!p)
		return -EINVAL;
	p++;
	/* Fields 3 (state) to 15 (stime): state, then 12 numbers. */
	while (*p == ' ')
		p++;
	if (!*p || *p == ' ')
		return -EINVAL;
	p++;
	for (int i = 0; i < 12; i++) {
		errno = 0;
		v[i] = strtoull(p, &end, 10);
		if (end == p || errno || (*end != ' ' && *end && i < 11))
			return -EINVAL;
		p = end;
	}
	*ppid = (long)v[0];
	*ticks = v[10] + v[11];
	return 0;
}

struct proc_ent {
	long pid, ppid;
	uint64_t ticks;
};

static int read_stat(long pid, struct proc_ent *e)
{
	char path[64], line[1024];
	FILE *f;
	int rc = -ESRCH;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return -ESRCH;
	if (fgets(line, sizeof(line), f))
		rc = load_parse_stat(line, &e->ppid, &e->ticks);
	fclose(f);
	e->pid = pid;
	return rc;
}

static struct proc_ent *find(struct proc_ent *e, size_t n, long pid)
{
	for (size_t i = 0; i < n; i++)
		if (e[i].pid == pid)
			return &e[i];
	return NULL;
}

/* Every process on the system; its list is freed by the caller. */
static struct proc_ent *scan(size_t *count)
{
	struct proc_ent *ents = NULL, *grown;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d = opendir("/proc");

	while (d && (de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			grown = realloc(ents, cap * sizeof(*ents));
			if (!grown)
				break;
			ents = grown;
		}
		if (read_stat(atol(de->d_name), &ents[n]) == 0)
			n++;
	}
	if (d)
		closedir(d);
	*count = n;
	return ents;
}

static bool descends(struct proc_ent *all, size_t n, struct proc_ent *e,
		     long root)
{
	for (unsigned depth = 0; e && depth < 64; depth++) {
		if (e->pid == root)
			return true;
		if (e->ppid <= 1)
			return false;
		e = find(all, n, e->ppid);
	}
	return false;
}

int load_proc_ticks(long pid, uint64_t *ticks, unsigned *processes)
{
	struct proc_ent self, *all;
	size_t n;

	if (read_stat(pid, &self) < 0)
		return -ESRCH;
	*ticks = 0;
	*processes = 0;
	all = scan(&n);
	for (size_t i = 0; i < n; i++) {
		if (!descends(all, n, &all[i], pid))
			continue;
		*ticks += all[i].ticks;
		(*processes)++;
	}
	free(all);
	if (*processes == 0) {
		*ticks = self.ticks;
		*processes = 1;
	}
	return 0;
}

/* The server's CPU time for --server-pid: the process and its live
 * descendants, since a server like nginx (with a master) or xinetd does
 * its work in child processes, whose time the parent's stat shows only
 * once they are reaped. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "probe/load.h"

int load_parse_stat(const char *line, struct load_stat *st)
{
	/* The command name may hold blanks and parentheses: the fields
	 * start after its last ')'. */
	const char *p = strrchr(line, ')');
	unsigned long long v[14];
	char *end;

	if (!p || p[1] != ' ' || !p[2] || p[2] == ' ')
		return -EINVAL;
	/* Field 3, the state letter, then fields 4 (ppid) to 17 (cstime). */
	p += 3;
	for (int i = 0; i < 14; i++) {
		errno = 0;
		v[i] = strtoull(p, &end, 10);
		if (end == p || errno || (*end != ' ' && *end != '\n' && *end))
			return -EINVAL;
		p = end;
	}
	st->ppid = (long)v[0];
	st->own_ticks = v[10] + v[11];
	st->child_ticks = v[12] + v[13];
	return 0;
}

struct proc_ent {
	long pid;
	struct load_stat st;
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
		rc = load_parse_stat(line, &e->st);
	fclose(f);
	e->pid = pid;
	return rc;
}

/* The run time of pid's live threads from schedstat, in ns; false when
 * the kernel keeps none (no CONFIG_SCHEDSTATS). */
static bool threads_ns(long pid, uint64_t *ns)
{
	char path[64], file[96];
	struct dirent *de;
	unsigned long long run;
	bool any = false;
	DIR *d;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/task", pid);
	d = opendir(path);
	*ns = 0;
	while (d && (de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(file, sizeof(file), "/proc/%ld/task/%.20s/schedstat",
			 pid, de->d_name);
		f = fopen(file, "re");
		if (f && fscanf(f, "%llu", &run) == 1) {
			*ns += run;
			any = true;
		}
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return any;
}

/* Every process on the system; the caller frees the list. */
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

static const struct proc_ent *find(const struct proc_ent *e, size_t n, long pid)
{
	for (size_t i = 0; i < n; i++)
		if (e[i].pid == pid)
			return &e[i];
	return NULL;
}

/* True when e's parent chain reaches root (e itself not root). */
static bool descends(const struct proc_ent *all, size_t n,
		     const struct proc_ent *e, long root)
{
	for (unsigned depth = 0; e && depth < 64 && e->st.ppid > 1; depth++) {
		if (e->st.ppid == root)
			return true;
		e = find(all, n, e->st.ppid);
	}
	return false;
}

int load_proc_cpu(long pid, uint64_t *ns, unsigned *processes)
{
	uint64_t tick = 1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK), run;
	struct proc_ent root, *all;
	size_t n;

	if (read_stat(pid, &root) < 0)
		return -ESRCH;
	*ns = (root.st.own_ticks + root.st.child_ticks) * tick;
	*processes = 1;
	all = scan(&n);
	for (size_t i = 0; i < n; i++) {
		if (all[i].pid == pid || !descends(all, n, &all[i], pid))
			continue;
		if (!threads_ns(all[i].pid, &run))
			run = all[i].st.own_ticks * tick;
		*ns += run + all[i].st.child_ticks * tick;
		(*processes)++;
	}
	free(all);
	return 0;
}

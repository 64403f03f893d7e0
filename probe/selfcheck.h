/* ringd-probe --config FILE, the self-check: the checks a ringd.ini implies,
 * one per listener of every service whose plugin the probe knows. The file is
 * read with the daemon's own INI layer and listen parser, so its syntax
 * and its FILE:LINE errors are ringd's; of the keys only those that say
 * where and what to probe are read (plugin, listen, time's format,
 * http's endpoint paths). Checking the rest is ringd -t's job. */
#ifndef RINGD_PROBE_SELFCHECK_H
#define RINGD_PROBE_SELFCHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "probe/target.h"

/* One listener to check. t is a target as a URL would give it (with
 * t.unix_path set for a unix: listener); t.url is the label of the
 * output line: "[SECTION] URL", and " via unix:PATH" for a unix socket,
 * so every listener has its own line and the URL reproduces the check. */
struct selfcheck_target {
	struct probe_target t;
	/* http with healthz, readyz and metrics all disabled: GET / and any
	 * status passes, since an answer shows the responder is up. */
	bool any_status;
	/* Non-NULL: the listener cannot be checked (port 0 is chosen when
	 * ringd starts); a static reason for an UNKNOWN line. */
	const char *why;
};

struct selfcheck {
	struct selfcheck_target *v;
	size_t n;
	/* Listeners nothing can check: discard's and chargen's udp:// (no
	 * reply to judge, or no UDP chargen check) and any listener of a
	 * plugin other than echo, time, qotd, discard, chargen and http. */
	size_t skipped;
};

/* Reads path into *out, targets in file order (sections, then listen
 * entries as written). Wildcard hosts are probed on loopback: 0.0.0.0
 * and * through 127.0.0.1, [::] through [::1]. http checks the healthz
 * path; when that is empty (disabled), readyz, then metrics; with all
 * three empty, / with any status. Returns 0, or -1 with one line in err
 * (errlen bytes): the first problem in file order, "FILE:LINE: [section]
 * key: reason" as ringd -t words it, or "FILE: reason" for the whole file
 * (cannot open, no services). *out is empty after a failure; either way
 * selfcheck_free() may be called. */
int selfcheck_load(const char *path, struct selfcheck *out, char *err,
		   size_t errlen);
void selfcheck_free(struct selfcheck *c);

#endif

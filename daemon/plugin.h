/* Plugin loading: dlopen(RTLD_NOW | RTLD_LOCAL) of PLUGIN_DIR/NAME.so, the
 * ABI and size checks, and a sanity check of the key table, so a broken
 * module is refused at load with a message naming its file instead of
 * crashing later. */
#ifndef RINGD_DAEMON_PLUGIN_H
#define RINGD_DAEMON_PLUGIN_H

#include <stddef.h>

#include <ringd/plugin.h>

struct plugin {
	char *name; /* as asked for: "echo" */
	char *path; /* the file that was opened */
	void *dl;
	const struct ringd_plugin *p;
	/* Where the files ringd ships (the default quotes) are for this
	 * plugin: datadir/ringd, or the source tree's conf/ for a plugin
	 * loaded from the build tree's plugins/. Resolves relative PATH
	 * defaults (conf_load). Static storage. */
	const char *data_dir;
	struct plugin *next;
};

/* Every plugin loaded for one configuration, each loaded once. */
struct plugin_set {
	struct plugin *head;
};

/* Find name in set, or load dir/name.so into it. name must be a plain
 * word ([a-z0-9_-]); anything else is refused before touching the file
 * system. On failure returns -1 with a reason naming the file in err, e.g.
 * "/usr/lib/ringd/x.so: ABI version 9, this ringd supports 1". */
int plugin_load(struct plugin_set *set, const char *dir, const char *name,
		struct plugin **out, char *err, size_t errlen);
void plugin_set_free(struct plugin_set *set);

/* The checks plugin_load() runs on an exported struct: ABI version, size,
 * name, transports, and every key (known type, storage inside config_size
 * and not shared with another key, enum choices, a default that parses).
 * Returns 0, or -1 with the first problem in err (no file name). */
int plugin_check(const struct ringd_plugin *p, char *err, size_t errlen);

/* True when plugin p (which declared size p->size) has hook member set. */
#define PLUGIN_HAS(rp, member) RINGD_HAS(rp, member)

#endif

/* Plugin loading and the checks that keep a broken module from crashing
 * the daemon later: ABI version, struct size, key table. Running a
 * plugin's hooks is left to the workers. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "conf_value.h"
#include "plugin.h"

/* Every ABI-1 field up to and including the last hook. */
#define PLUGIN_ABI1_SIZE                                                  \
	(offsetof(struct ringd_plugin, on_datagram) +                       \
	 sizeof(((struct ringd_plugin *)0)->on_datagram))

static bool name_valid(const char *s, size_t max)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-");

	return n > 0 && n <= max && s[n] == '\0';
}

static int key_check(const struct ringd_plugin *p, const struct ringd_key *k,
		     void *scratch, char *err, size_t errlen)
{
	size_t size = conf_value_size(k->type);
	char why[256];

	if (size == 0) {
		snprintf(err, errlen, "unknown type %d", (int)k->type);
		return -1;
	}
	if (k->offset > p->config_size || size > p->config_size - k->offset) {
		snprintf(err, errlen, "offset %zu + %zu is beyond config_size "
			 "%zu", k->offset, size, p->config_size);
		return -1;
	}
	if (k->type == RINGD_KEY_ENUM &&
	    (k->choices == NULL || k->choices[0] == NULL)) {
		snprintf(err, errlen, "enum without choices");
		return -1;
	}
	if (k->min > k->max) {
		snprintf(err, errlen, "min is greater than max");
		return -1;
	}
	if (k->def != NULL &&
	    conf_value_parse(k, k->def, scratch, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "bad default: %s", why);
		return -1;
	}
	if (k->def != NULL)
		conf_value_free(k, scratch);
	return 0;
}

/* Two keys writing the same bytes would corrupt each other and free one
 * string twice. */
static const char *key_overlap(const struct ringd_key *keys, size_t i)
{
	size_t a = keys[i].offset, alen = conf_value_size(keys[i].type);

	for (size_t j = 0; j < i; j++) {
		size_t b = keys[j].offset, blen = conf_value_size(keys[j].type);

		if (strcmp(keys[i].name, keys[j].name) == 0 ||
		    (a < b + blen && b < a + alen))
			return keys[j].name;
	}
	return NULL;
}

static int keys_check(const struct ringd_plugin *p, char *err, size_t errlen)
{
	const struct ringd_key *keys = p->keys;
	const char *other;
	char why[512];
	void *scratch;
	int rc = 0;

	if (keys == NULL || keys[0].name == NULL)
		return 0;
	if (p->config_size == 0) {
		snprintf(err, errlen, "declares keys but config_size is 0");
		return -1;
	}
	scratch = calloc(1, p->config_size);
	if (scratch == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; rc == 0 && keys[i].name != NULL; i++) {
		if (!name_valid(keys[i].name, 64)) {
			snprintf(why, sizeof(why), "invalid name");
			rc = -1;
		} else if ((other = key_overlap(keys, i)) != NULL) {
			snprintf(why, sizeof(why), "same name or storage as "
				 "key '%s'", other);
			rc = -1;
		} else {
			rc = key_check(p, &keys[i], scratch, why, sizeof(why));
		}
		if (rc < 0)
			snprintf(err, errlen, "key '%s': %s", keys[i].name, why);
	}
	free(scratch);
	return rc;
}

int plugin_check(const struct ringd_plugin *p, char *err, size_t errlen)
{
	if (p->abi != RINGD_PLUGIN_ABI) {
		snprintf(err, errlen, "ABI version %u, this ringd supports %d",
			 p->abi, RINGD_PLUGIN_ABI);
		return -1;
	}
	if (p->size < PLUGIN_ABI1_SIZE) {
		snprintf(err, errlen, "size %u is smaller than ABI %d requires",
			 p->size, RINGD_PLUGIN_ABI);
		return -1;
	}
	if (p->name == NULL) {
		snprintf(err, errlen, "plugin has no name");
		return -1;
	}
	if (p->transports == 0 ||
	    (p->transports & ~(RINGD_STREAM | RINGD_DGRAM)) != 0) {
		snprintf(err, errlen, "bad transports 0x%x", p->transports);
		return -1;
	}
	return keys_check(p, err, errlen);
}

/* dlerror() usually starts with the file name; we print it once. */
static void dl_fail(const char *path, char *err, size_t errlen)
{
	const char *msg = dlerror();
	size_t n = strlen(path);

	if (msg == NULL)
		msg = "unknown dlopen error";
	if (strncmp(msg, path, n) == 0 && strncmp(msg + n, ": ", 2) == 0)
		msg += n + 2;
	snprintf(err, errlen, "%s: %s", path, msg);
}

static int plugin_open(struct plugin *pl, const char *dir, char *err,
		       size_t errlen)
{
	char why[512];
	struct stat st;

	if (stat(pl->path, &st) < 0 && errno == ENOENT) {
		snprintf(err, errlen, "%s: no such plugin (plugin_dir is %s)",
			 pl->path, dir);
		return -1;
	}
	pl->dl = dlopen(pl->path, RTLD_NOW | RTLD_LOCAL);
	if (pl->dl == NULL) {
		dl_fail(pl->path, err, errlen);
		return -1;
	}
	pl->p = dlsym(pl->dl, "ringd_plugin");
	if (pl->p == NULL) {
		snprintf(err, errlen, "%s: not a ringd plugin (no symbol "
			 "ringd_plugin)", pl->path);
		return -1;
	}
	if (plugin_check(pl->p, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s: %s", pl->path, why);
		return -1;
	}
	return 0;
}

/* The build tree's plugins read the source tree's data, so an uninstalled
 * build runs with the files it was built beside, as the build tree's
 * binary uses the build tree's plugins. */
static const char *plugin_data_dir(const char *dir)
{
	char real[PATH_MAX], build[PATH_MAX];

	if (realpath(dir, real) != NULL &&
	    realpath(RINGD_BUILD_PLUGIN_DIR, build) != NULL &&
	    strcmp(real, build) == 0)
		return RINGD_BUILD_DATADIR;
	return RINGD_DATADIR;
}

static void plugin_free(struct plugin *pl)
{
	if (pl->dl != NULL)
		dlclose(pl->dl);
	free(pl->name);
	free(pl->path);
	free(pl);
}

int plugin_load(struct plugin_set *set, const char *dir, const char *name,
		struct plugin **out, char *err, size_t errlen)
{
	struct plugin *pl, **tail = &set->head;

	if (!name_valid(name, 64)) {
		snprintf(err, errlen, "invalid plugin name '%s' (use a-z, 0-9, "
			 "'_' and '-')", name);
		return -1;
	}
	for (pl = set->head; pl != NULL; tail = &pl->next, pl = pl->next) {
		if (strcmp(pl->name, name) == 0) {
			*out = pl;
			return 0;
		}
	}
	pl = calloc(1, sizeof(*pl));
	if (pl == NULL || (pl->name = strdup(name)) == NULL ||
	    asprintf(&pl->path, "%s/%s.so", dir, name) < 0) {
		if (pl != NULL)
			pl->path = NULL;
		snprintf(err, errlen, "%s: out of memory", name);
		goto fail;
	}
	if (plugin_open(pl, dir, err, errlen) < 0)
		goto fail;
	pl->data_dir = plugin_data_dir(dir);
	*tail = pl;
	*out = pl;
	return 0;
fail:
	if (pl != NULL)
		plugin_free(pl);
	return -1;
}

void plugin_set_free(struct plugin_set *set)
{
	struct plugin *pl, *next;

	for (pl = set->head; pl != NULL; pl = next) {
		next = pl->next;
		plugin_free(pl);
	}
	set->head = NULL;
}

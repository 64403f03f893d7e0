/* libFuzzer target for the configuration loader: the input is the text
 * of a whole INI file, loaded with conf_load() against the real plugins
 * of this build (their key tables and check()), as `ringd -t` would.
 * Everything is freed each run, so LeakSanitizer speaks of real leaks. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/conf.h"

/* Set once by LLVMFuzzerInitialize: a private directory holding the
 * file each input is written to, and a quotes file for qotd, so that
 * relative paths resolve somewhere harmless. */
static char dir[64], ini_path[96];

static void dir_remove(void)
{
	char path[128];

	unlink(ini_path);
	snprintf(path, sizeof(path), "%s/quotes", dir);
	unlink(path);
	rmdir(dir);
}

static int file_write(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ssize_t n = -1;

	if (fd < 0)
		return -1;
	if (len == 0 || (n = write(fd, buf, len)) == (ssize_t)len)
		n = 0;
	close(fd);
	return n == 0 ? 0 : -1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char quotes[] = "One quote.\n%\nAnother one.\n";
	char path[128];

	snprintf(dir, sizeof(dir), "/tmp/fuzz_conf.XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(ini_path, sizeof(ini_path), "%s/fuzz.ini", dir);
	snprintf(path, sizeof(path), "%s/quotes", dir);
	if (file_write(path, quotes, sizeof(quotes) - 1) != 0)
		abort();
	atexit(dir_remove);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The input may name any plugin_dir; this set replaces it, so only
	 * this build's plugins are ever loaded. */
	static const char *const sets[] = {
		"ringd.plugin_dir=" FUZZ_PLUGIN_DIR,
	};
	struct conf_errors errs = { 0 };
	struct ringd_conf *c = NULL;

	if (file_write(ini_path, data, size) != 0)
		abort();
	if (conf_load(ini_path, sets, 1, FUZZ_PLUGIN_DIR, &c, &errs) == 0) {
		if (c == NULL || errs.n != 0)
			abort();
		conf_free(c);
	} else if (c != NULL || errs.n == 0) {
		abort(); /* a refusal always says why */
	}
	conf_errors_free(&errs);
	return 0;
}

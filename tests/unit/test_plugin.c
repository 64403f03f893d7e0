/* Unit tests for plugin.c: the fixture modules in FIXTURE_DIR, each broken
 * in one way, are refused with their exact message; key tables built here
 * exercise every key check. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "daemon/plugin.h"

static char err[1024];

static void load_fails(const char *name, const char *want_after_path)
{
	struct plugin_set set = { 0 };
	struct plugin *pl = NULL;
	char want[1024];

	snprintf(want, sizeof(want), "%s/%s.so: %s", FIXTURE_DIR, name,
		 want_after_path);
	assert_int_equal(plugin_load(&set, FIXTURE_DIR, name, &pl, err,
				     sizeof(err)), -1);
	assert_string_equal(err, want);
	assert_null(set.head);
	plugin_set_free(&set);
}

static void test_plugin_load_good(void **state)
{
	struct plugin_set set = { 0 };
	struct plugin *pl = NULL;

	assert_int_equal(plugin_load(&set, FIXTURE_DIR, "good", &pl, err,
				     sizeof(err)), 0);
	assert_non_null(pl);
	assert_ptr_equal(set.head, pl);
	assert_string_equal(pl->name, "good");
	assert_string_equal(pl->path, FIXTURE_DIR "/good.so");
	assert_string_equal(pl->p->name, "good");
	assert_int_equal(pl->p->transports, RINGD_STREAM | RINGD_DGRAM);
	assert_true(PLUGIN_HAS(pl->p, check));
	assert_true(PLUGIN_HAS(pl->p, release));
	assert_false(PLUGIN_HAS(pl->p, start));
	plugin_set_free(&set);
	assert_null(set.head);
}

/* The build tree's plugins, under any spelling of their directory, read
 * the source tree's conf/; every other directory the installed data. */
static void test_plugin_data_dir(void **state)
{
	static const char *const build_dirs[] = {
		BUILD_PLUGIN_DIR, BUILD_PLUGIN_DIR "/", BUILD_PLUGIN_DIR "/../plugins",
	};
	struct plugin_set set = { 0 };
	struct plugin *pl = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(build_dirs) / sizeof(build_dirs[0]); i++) {
		assert_int_equal(plugin_load(&set, build_dirs[i], "qotd", &pl,
					     err, sizeof(err)), 0);
		assert_string_equal(pl->data_dir, SOURCE_DIR "/conf");
		plugin_set_free(&set);
	}
	assert_int_equal(plugin_load(&set, FIXTURE_DIR, "good", &pl, err,
				     sizeof(err)), 0);
	assert_string_equal(pl->data_dir, RINGD_DATADIR);
	plugin_set_free(&set);
}

static void test_plugin_load_same_name_once(void **state)
{
	struct plugin_set set = { 0 };
	struct plugin *a = NULL, *b = NULL, *c = NULL;

	assert_int_equal(plugin_load(&set, FIXTURE_DIR, "good", &a, err,
				     sizeof(err)), 0);
	assert_int_equal(plugin_load(&set, FIXTURE_DIR, "stream_only", &b, err,
				     sizeof(err)), 0);
	assert_int_equal(plugin_load(&set, FIXTURE_DIR, "good", &c, err,
				     sizeof(err)), 0);
	assert_ptr_equal(a, c);
	assert_ptr_not_equal(a, b);
	assert_ptr_equal(set.head, a);
	assert_ptr_equal(a->next, b);
	assert_null(b->next);
	plugin_set_free(&set);
}

static void test_plugin_refuses_bad_abi(void **state)
{
	load_fails("bad_abi", "ABI version 99, this ringd supports 1");
}

static void test_plugin_refuses_missing_symbol(void **state)
{
	load_fails("no_symbol", "not a ringd plugin (no symbol ringd_plugin)");
}

static void test_plugin_refuses_small_size(void **state)
{
	load_fails("small_size", "size 24 is smaller than ABI 1 requires");
}

static void test_plugin_refuses_key_beyond_config(void **state)
{
	load_fails("bad_keys",
		   "key 'limit': offset 8 + 8 is beyond config_size 8");
}

static void test_plugin_refuses_missing_file(void **state)
{
	load_fails("nosuch",
		   "no such plugin (plugin_dir is " FIXTURE_DIR ")");
}

static void test_plugin_reports_dlopen_error(void **state)
{
	char dir[] = "/tmp/test_plugin.XXXXXX", path[64], want[128];
	struct plugin_set set = { 0 };
	struct plugin *pl = NULL;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/junk.so", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	for (int i = 0; i < 16; i++)
		fputs("not an ELF file\n", f);
	fclose(f);
	assert_int_equal(plugin_load(&set, dir, "junk", &pl, err, sizeof(err)),
			 -1);
	/* dlerror() names the file itself; it must appear only once. */
	snprintf(want, sizeof(want), "%s: invalid ELF header", path);
	assert_string_equal(err, want);
	assert_null(set.head);
	unlink(path);
	rmdir(dir);
}

static void test_plugin_refuses_invalid_name(void **state)
{
	static const char *const bad[] = { "", "../good", "Good", "a.b",
					   "a b", "good/x" };
	struct plugin_set set = { 0 };
	struct plugin *pl = NULL;
	char want[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(want, sizeof(want), "invalid plugin name '%s' (use "
			 "a-z, 0-9, '_' and '-')", bad[i]);
		assert_int_equal(plugin_load(&set, FIXTURE_DIR, bad[i], &pl,
					     err, sizeof(err)), -1);
		assert_string_equal(err, want);
	}
	assert_null(set.head);
}

struct cfg {
	int64_t n;
	char *s;
	int e;
};

static const char *const choices[] = { "x", "y", NULL };

static struct ringd_plugin base_plugin(const struct ringd_key *keys)
{
	return (struct ringd_plugin){
		.abi = RINGD_PLUGIN_ABI,
		.size = sizeof(struct ringd_plugin),
		.name = "t",
		.transports = RINGD_STREAM,
		.keys = keys,
		.config_size = sizeof(struct cfg),
	};
}

static void check_fails(const struct ringd_plugin *p, const char *want)
{
	assert_int_equal(plugin_check(p, err, sizeof(err)), -1);
	assert_string_equal(err, want);
}

static void test_plugin_check_key_tables(void **state)
{
	struct ringd_key k[3] = {
		{ .name = "n", .type = RINGD_KEY_INT, .def = "5", .min = 1,
		  .max = 9, .offset = offsetof(struct cfg, n) },
		{ .name = "e", .type = RINGD_KEY_ENUM, .def = "y",
		  .choices = choices, .offset = offsetof(struct cfg, e) },
		{ .name = NULL },
	};
	struct ringd_plugin p = base_plugin(k);

	assert_int_equal(plugin_check(&p, err, sizeof(err)), 0);
	k[0].def = "10";
	check_fails(&p, "key 'n': bad default: out of range: 10 (1..9)");
	k[0].def = "5";
	k[1].choices = NULL;
	check_fails(&p, "key 'e': enum without choices");
	k[1] = (struct ringd_key){ .name = "e", .type = RINGD_KEY_STRING,
				   .offset = offsetof(struct cfg, n) + 4 };
	check_fails(&p, "key 'e': same name or storage as key 'n'");
	k[1].name = "n";
	k[1].offset = offsetof(struct cfg, s);
	check_fails(&p, "key 'n': same name or storage as key 'n'");
	k[1] = (struct ringd_key){ .name = "e", .type = 77 };
	check_fails(&p, "key 'e': unknown type 77");
	k[1] = (struct ringd_key){ .name = "Bad Name" };
	check_fails(&p, "key 'Bad Name': invalid name");
	k[1] = (struct ringd_key){ .name = "m", .type = RINGD_KEY_INT,
				   .min = 5, .max = 1,
				   .offset = offsetof(struct cfg, e) + 4 };
	check_fails(&p, "key 'm': offset 20 + 8 is beyond config_size 24");
	k[1].offset = offsetof(struct cfg, s);
	check_fails(&p, "key 'm': min is greater than max");
	k[1] = (struct ringd_key){ .name = NULL };
	p.config_size = 0;
	check_fails(&p, "declares keys but config_size is 0");
}

static void test_plugin_check_header_fields(void **state)
{
	struct ringd_plugin p = base_plugin(NULL);
	char want[128];

	p.config_size = 0;
	assert_int_equal(plugin_check(&p, err, sizeof(err)), 0);
	p.name = NULL;
	check_fails(&p, "plugin has no name");
	p.name = "t";
	p.transports = 0;
	check_fails(&p, "bad transports 0x0");
	p.transports = 4;
	check_fails(&p, "bad transports 0x4");
	p.transports = RINGD_DGRAM;
	p.size = offsetof(struct ringd_plugin, on_datagram);
	snprintf(want, sizeof(want), "size %u is smaller than ABI 1 requires",
		 p.size);
	check_fails(&p, want);
	p.size = offsetof(struct ringd_plugin, on_datagram) + sizeof(void *);
	assert_int_equal(plugin_check(&p, err, sizeof(err)), 0);
}

/* RINGD_HAS, as a plugin uses it on a host built before a member was
 * appended: a member past the size the other side gave is absent even
 * if memory happens to hold a pointer there, and a NULL member is absent
 * whatever the size. */
static int fake_synced(void)
{
	return 1;
}

static void test_plugin_has_member_by_size(void **state)
{
	struct ringd_host h = { .size = sizeof(struct ringd_host),
				.clock_synced = fake_synced };

	(void)state;
	assert_true(RINGD_HAS(&h, clock_synced));
	h.size = offsetof(struct ringd_host, clock_synced);
	assert_false(RINGD_HAS(&h, clock_synced));
	h.size = sizeof(struct ringd_host);
	assert_false(RINGD_HAS(&h, state));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plugin_load_good),
		cmocka_unit_test(test_plugin_data_dir),
		cmocka_unit_test(test_plugin_load_same_name_once),
		cmocka_unit_test(test_plugin_refuses_bad_abi),
		cmocka_unit_test(test_plugin_refuses_missing_symbol),
		cmocka_unit_test(test_plugin_refuses_small_size),
		cmocka_unit_test(test_plugin_refuses_key_beyond_config),
		cmocka_unit_test(test_plugin_refuses_missing_file),
		cmocka_unit_test(test_plugin_reports_dlopen_error),
		cmocka_unit_test(test_plugin_refuses_invalid_name),
		cmocka_unit_test(test_plugin_check_key_tables),
		cmocka_unit_test(test_plugin_check_header_fields),
		cmocka_unit_test(test_plugin_has_member_by_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

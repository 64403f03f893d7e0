/* Unit tests for conf.c: INI files from tests/unit/data loaded with the
 * fixture plugins; error output compared byte for byte with golden files,
 * which are written by hand only: nothing here rewrites what it compares
 * against. Runs from the data directory so file names in messages are
 * stable. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "daemon/conf.h"

#define DATA_DIR SOURCE_DIR "/tests/unit/data"

/* The loader reads lines with getdelim(), which this executable links
 * wrapped (-Wl,--wrap=getdelim in meson.build) so a test can make the
 * n-th line read fail the way it does when memory runs out. Test-only
 * state: 0 leaves getdelim() alone. */
static unsigned getline_fail_at, getline_calls;

ssize_t __real_getdelim(char **line, size_t *cap, int delim, FILE *f);
ssize_t __wrap_getdelim(char **line, size_t *cap, int delim, FILE *f);

ssize_t __wrap_getdelim(char **line, size_t *cap, int delim, FILE *f)
{
	if (delim == '\n' && getline_fail_at != 0 &&
	    ++getline_calls == getline_fail_at) {
		errno = ENOMEM;
		return -1;
	}
	return __real_getdelim(line, cap, delim, f);
}

/* Replaces every from in s with to; returns a new string. */
static char *replace_all(const char *s, const char *from, const char *to)
{
	size_t fl = strlen(from), tl = strlen(to);
	char *out = malloc(strlen(s) * (tl + 1) + 1), *o = out;
	const char *p;

	assert_non_null(out);
	while ((p = strstr(s, from)) != NULL) {
		memcpy(o, s, p - s);
		o += p - s;
		memcpy(o, to, tl);
		o += tl;
		s = p + fl;
	}
	strcpy(o, s);
	return out;
}

static char *file_slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0, n;

	if (f == NULL)
		return strdup("(no golden file)\n");
	n = getdelim(&buf, &cap, '\0', f);
	fclose(f);
	if (n == (size_t)-1) {
		free(buf);
		return strdup("");
	}
	return buf;
}

/* Points at the first line that differs, so a mismatch reads like a diff
 * hunk instead of two walls of text to compare by eye. */
static void golden_report(const char *golden, const char *want,
			  const char *got)
{
	unsigned line = 1;
	size_t wl, gl;

	while (*want != '\0' && *got != '\0') {
		wl = strcspn(want, "\n");
		gl = strcspn(got, "\n");
		if (wl != gl || memcmp(want, got, wl) != 0)
			break;
		want += wl + (want[wl] == '\n');
		got += gl + (got[gl] == '\n');
		line++;
	}
	fprintf(stderr, "golden/%s: first difference at line %u\n"
		"-%.*s\n+%.*s\n", golden, line, (int)strcspn(want, "\n"),
		want, (int)strcspn(got, "\n"), got);
}

static void golden_compare(const char *got, const char *golden)
{
	char path[512], *want_raw, *want;

	snprintf(path, sizeof(path), "%s/%s", GOLDEN_DIR, golden);
	want_raw = file_slurp(path);
	want = replace_all(want_raw, "@FIXTURE_DIR@", FIXTURE_DIR);
	if (strcmp(got, want) != 0) {
		golden_report(golden, want, got);
		fprintf(stderr, "--- %s expected:\n%s--- got:\n%s", golden,
			want, got);
	}
	assert_string_equal(got, want);
	free(want);
	free(want_raw);
}

/* Every error is one line of output, whatever text it quotes. */
static size_t lines_count(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

static void expect_errors(const char *ini, const char *const *sets,
			  size_t nsets, const char *golden)
{
	struct conf_errors errs = { 0 };
	struct ringd_conf *c = NULL;
	char *got = NULL;
	size_t len = 0;
	FILE *f;

	assert_int_equal(conf_load(ini, sets, nsets, FIXTURE_DIR, &c, &errs),
			 -1);
	assert_null(c);
	assert_true(errs.n > 0);
	f = open_memstream(&got, &len);
	assert_non_null(f);
	conf_errors_print(&errs, f);
	fclose(f);
	assert_int_equal(lines_count(got), errs.n);
	golden_compare(got, golden);
	free(got);
	conf_errors_free(&errs);
}

/* The http plugin's route errors, with the real plugin and loader: a
 * list item's error carries its own line. */
static void test_conf_http_route_errors_name_their_line(void **state)
{
	struct conf_errors errs = { 0 };
	struct ringd_conf *c = NULL;
	char *got = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	assert_int_equal(conf_load("http_routes.ini", NULL, 0,
				   BUILD_PLUGIN_DIR, &c, &errs), -1);
	f = open_memstream(&got, &len);
	assert_non_null(f);
	conf_errors_print(&errs, f);
	fclose(f);
	golden_compare(got, "http_routes.txt");
	free(got);
	conf_errors_free(&errs);
}

static struct ringd_conf *load_ok(const char *ini, const char *const *sets,
				  size_t nsets)
{
	struct conf_errors errs = { 0 };
	struct ringd_conf *c = NULL;
	int rc = conf_load(ini, sets, nsets, FIXTURE_DIR, &c, &errs);

	conf_errors_print(&errs, stderr);
	assert_int_equal(errs.n, 0);
	assert_int_equal(rc, 0);
	assert_non_null(c);
	return c;
}

/* A plugin config field found through the plugin's own key table. */
static const void *pval(const struct service_conf *s, const char *key)
{
	for (const struct ringd_key *k = s->plugin->p->keys; k->name; k++)
		if (strcmp(k->name, key) == 0)
			return (const char *)s->pconf + k->offset;
	fail_msg("no key %s", key);
	return NULL;
}

static int64_t pint(const struct service_conf *s, const char *key)
{
	int64_t v;

	memcpy(&v, pval(s, key), sizeof(v));
	return v;
}

static const char *pstr(const struct service_conf *s, const char *key)
{
	const char *v;

	memcpy(&v, pval(s, key), sizeof(v));
	return v;
}

static void test_conf_load_good_file_typed_values(void **state)
{
	struct ringd_conf *c = load_ok("good.ini", NULL, 0);
	const struct service_conf *g = &c->svc[0];
	const struct ringd_list *tags;
	char buf[160];

	assert_string_equal(c->path, "good.ini");
	assert_int_equal(c->backend, CONF_BACKEND_EPOLL);
	assert_int_equal(c->workers_n, 3);
	assert_string_equal(c->plugin_dir, FIXTURE_DIR);
	assert_int_equal(conf_log_level(c), RINGD_LOG_DEBUG);
	assert_int_equal(c->max_connections, 1000);
	assert_int_equal(c->shutdown_timeout_ms, 2000);
	assert_string_equal(c->user, "nobody");
	assert_false(c->reuseport);
	assert_int_equal(c->nsvc, 2);

	assert_string_equal(g->name, "good");
	assert_string_equal(g->plugin_name, "good");
	assert_int_equal(g->line, 11);
	assert_true(g->checked);
	assert_int_equal(g->nlisten, 3);
	listen_addr_format(&g->listen[0], buf, sizeof(buf));
	assert_string_equal(buf, "tcp://127.0.0.1:0");
	listen_addr_format(&g->listen[1], buf, sizeof(buf));
	assert_string_equal(buf, "udp://[::1]:0");
	assert_int_equal(g->listen[2].kind, LISTEN_UNIX);
	assert_string_equal(g->listen[2].path, "/tmp/ringd-test.sock");
	assert_int_equal(g->idle_timeout_ms, 300000);
	assert_int_equal(g->socket_mode, 0600);
	assert_string_equal(pstr(g, "token"), "abc");
	assert_string_equal(pstr(g, "greeting"), "hi there");
	/* count = 010: a leading zero is decimal outside file modes. */
	assert_int_equal(pint(g, "count"), 10);
	assert_true(*(const bool *)pval(g, "loud"));
	assert_int_equal(pint(g, "wait"), 60000);
	assert_int_equal(pint(g, "buffer"), 65536);
	assert_int_equal(*(const int *)pval(g, "mode"), 1);
	tags = pval(g, "tag");
	assert_int_equal(tags->n, 2);
	assert_string_equal(tags->items[0], "first");
	assert_string_equal(tags->items[1], "second one");
	/* A list key left out is an empty list. */
	tags = pval(&c->svc[1], "tag");
	assert_int_equal(tags->n, 0);
	conf_free(c);
}

static void test_conf_load_applies_defaults(void **state)
{
	struct ringd_conf *c = load_ok("good.ini", NULL, 0);
	const struct service_conf *p = &c->svc[1];
	const struct ringd_list *tags;
	char buf[160];

	assert_string_equal(p->name, "plain");
	assert_string_equal(p->plugin_name, "good");
	assert_ptr_equal(p->plugin, c->svc[0].plugin);
	assert_int_equal(p->nlisten, 2);
	assert_true(p->listen[0].any);
	listen_addr_format(&p->listen[1], buf, sizeof(buf));
	assert_string_equal(buf, "udp://127.0.0.1:7007");
	assert_int_equal(p->idle_timeout_ms, 60000);
	assert_int_equal(p->socket_mode, 0660);
	assert_string_equal(pstr(p, "greeting"), "hello");
	assert_int_equal(pint(p, "count"), 3);
	assert_false(*(const bool *)pval(p, "loud"));
	assert_int_equal(pint(p, "wait"), 250);
	assert_int_equal(pint(p, "buffer"), 4096);
	assert_int_equal(*(const int *)pval(p, "mode"), 0);
	conf_free(c);

	/* Without a [ringd] section every daemon key takes its default. */
	c = load_ok("check.ini", (const char *const[]){ "a.token=ok",
							"a.tag=ok",
							"b.count=1",
							"b.mode=fast" }, 4);
	assert_int_equal(c->backend, CONF_BACKEND_AUTO);
	/* -s replaces every line of a list key with its one value. */
	tags = pval(&c->svc[0], "tag");
	assert_int_equal(tags->n, 1);
	assert_string_equal(tags->items[0], "ok");
	assert_true(c->workers_n >= 1);
	assert_int_equal(conf_log_level(c), RINGD_LOG_INFO);
	assert_int_equal(c->max_connections, 65536);
	assert_int_equal(c->shutdown_timeout_ms, 10000);
	assert_string_equal(c->user, "");
	assert_true(c->reuseport);
	assert_int_equal(c->udp_rate, 10);
	assert_int_equal(c->udp_burst, 20);
	assert_int_equal(c->udp_global_rate, 1000);
	conf_free(c);
}

static void assert_cidr(const struct cidr_list *l, size_t i, int family,
			const char *text, unsigned len)
{
	char buf[INET6_ADDRSTRLEN];

	assert_true(i < l->n);
	assert_int_equal(l->v[i].family, family);
	assert_non_null(inet_ntop(family, l->v[i].addr, buf, sizeof(buf)));
	assert_string_equal(buf, text);
	assert_int_equal(l->v[i].len, len);
}

static void test_conf_load_admission_keys_inherit_from_ringd(void **state)
{
	struct ringd_conf *c = load_ok("acl.ini", NULL, 0);
	const struct service_conf *a = &c->svc[0], *b = &c->svc[1];

	assert_int_equal(c->max_buffered, 1073741824);
	assert_int_equal(c->max_per_source, 4);
	assert_int_equal(c->allow.n, 2);
	assert_cidr(&c->allow, 1, AF_INET6, "2001:db8::", 32);
	/* A service that sets none holds its own copy of [ringd]'s. */
	assert_int_equal(a->allow.n, 2);
	assert_ptr_not_equal(a->allow.v, c->allow.v);
	assert_cidr(&a->allow, 0, AF_INET, "10.0.0.0", 8);
	assert_cidr(&a->allow, 1, AF_INET6, "2001:db8::", 32);
	assert_int_equal(a->deny.n, 1);
	assert_cidr(&a->deny, 0, AF_INET, "10.9.0.0", 16);
	assert_int_equal(a->max_per_source, 4);
	/* A section's own value, an empty one and 0 included, wins. */
	assert_int_equal(b->allow.n, 3);
	assert_cidr(&b->allow, 0, AF_INET, "192.0.2.0", 24);
	assert_cidr(&b->allow, 1, AF_INET, "198.51.100.0", 24);
	assert_cidr(&b->allow, 2, AF_INET6, "::1", 128);
	assert_int_equal(b->deny.n, 0);
	assert_int_equal(b->max_per_source, 0);
	conf_free(c);

	/* Without [ringd]: everyone admitted, no limit, 64 MiB. */
	c = load_ok("check.ini", (const char *const[]){ "a.token=ok",
							"a.tag=ok",
							"b.count=1",
							"b.mode=fast" }, 4);
	assert_int_equal(c->max_buffered, 64 << 20);
	assert_int_equal(c->allow.n + c->deny.n, 0);
	assert_int_equal(c->svc[0].allow.n + c->svc[0].deny.n, 0);
	assert_int_equal(c->svc[0].max_per_source, 0);
	conf_free(c);

	/* -s on [ringd] reaches the services that inherit. */
	c = load_ok("acl.ini", (const char *const[]){
			    "ringd.allow=192.0.2.0/25",
			    "ringd.max_connections_per_source=9" }, 2);
	assert_int_equal(c->svc[0].allow.n, 1);
	assert_cidr(&c->svc[0].allow, 0, AF_INET, "192.0.2.0", 25);
	assert_int_equal(c->svc[0].max_per_source, 9);
	assert_int_equal(c->svc[1].allow.n, 3);
	conf_free(c);
}

static void test_conf_load_admission_key_errors(void **state)
{
	expect_errors("acl_errors.ini", NULL, 0, "acl_errors.txt");
}

static void test_conf_load_resolves_paths_against_ini_dir(void **state)
{
	char cwd[512], want[600];
	struct ringd_conf *c;

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	c = load_ok("good.ini", NULL, 0);
	snprintf(want, sizeof(want), "%s/sub/data.txt", cwd);
	assert_string_equal(pstr(&c->svc[0], "file"), want);
	/* A relative default is a file shipped with ringd, not one beside
	 * the INI file: these fixtures are not the build tree's plugins. */
	assert_string_equal(pstr(&c->svc[1], "file"), RINGD_DATADIR "/good.txt");
	conf_free(c);

	c = load_ok("../data/good.ini", NULL, 0);
	snprintf(want, sizeof(want), "%s/../data/sub/data.txt", cwd);
	assert_string_equal(pstr(&c->svc[0], "file"), want);
	conf_free(c);

	c = load_ok(DATA_DIR "/good.ini", (const char *const[]){
			    "plain.file=/abs/x", "good.file=rel/y" }, 2);
	snprintf(want, sizeof(want), "%s/rel/y", cwd);
	assert_string_equal(pstr(&c->svc[0], "file"), want);
	assert_string_equal(pstr(&c->svc[1], "file"), "/abs/x");
	assert_string_equal(pstr(&c->svc[1], "greeting"), "hello");
	conf_free(c);

	c = load_ok(DATA_DIR "/good.ini", NULL, 0);
	assert_string_equal(pstr(&c->svc[0], "file"), DATA_DIR "/sub/data.txt");
	conf_free(c);
}

/* qotd without quotes = reads the quotes ringd ships: from the build
 * tree's plugins, the source tree's conf/quotes (installed, datadir's:
 * tests/integration/test_install.py). A path written in the file still
 * wins. */
static void test_conf_load_qotd_default_quotes(void **state)
{
	struct conf_errors errs = { 0 };
	struct ringd_conf *c = NULL;

	(void)state;
	assert_int_equal(conf_load(DATA_DIR "/qotd_default.ini", NULL, 0,
				   BUILD_PLUGIN_DIR, &c, &errs), 0);
	assert_string_equal(pstr(&c->svc[0], "quotes"),
			    SOURCE_DIR "/conf/quotes");
	assert_string_equal(pstr(&c->svc[1], "quotes"),
			    DATA_DIR "/../../../conf/quotes");
	conf_free(c);
}

static void test_conf_load_set_overrides(void **state)
{
	static const char *const sets[] = {
		"ringd.workers=auto",
		"ringd.backend= io_uring ",
		"good.listen=tcp://127.0.0.1:9, udp://127.0.0.1:9",
		"good.token=replaced",
		"good.token=twice",
		"newsvc.plugin=stream_only",
		"newsvc.listen=unix:/tmp/ringd-new.sock",
		"ringd.max_connections=010",
		"plain.socket_mode=640",
	};
	struct ringd_conf *c = load_ok("good.ini", sets, 9);
	char buf[160];

	assert_int_equal(c->workers_n, sysconf(_SC_NPROCESSORS_ONLN));
	assert_int_equal(c->backend, CONF_BACKEND_IO_URING);
	assert_int_equal(c->max_connections, 10);
	assert_int_equal(c->svc[1].socket_mode, 0640);
	assert_int_equal(c->svc[0].nlisten, 2);
	listen_addr_format(&c->svc[0].listen[1], buf, sizeof(buf));
	assert_string_equal(buf, "udp://127.0.0.1:9");
	assert_string_equal(pstr(&c->svc[0], "token"), "twice");
	assert_int_equal(c->nsvc, 3);
	assert_string_equal(c->svc[2].name, "newsvc");
	assert_string_equal(c->svc[2].plugin->p->name, "stream_only");
	assert_string_equal(c->svc[2].listen[0].path, "/tmp/ringd-new.sock");
	assert_int_equal(c->svc[2].line, 0);
	conf_free(c);
}

static void test_conf_load_set_errors(void **state)
{
	static const char *const sets[] = {
		"ringd.backend=fast",
		"nodot=1",
		"ringd.=x",
		"good.listen",
		"good.listen=tcp://localhost:1",
		"good.count=0",
		"newsvc.plugin=nosuch",
		"other.token=1",
		"bad section.x=1",
	};

	expect_errors("good.ini", sets, 9, "set_errors.txt");
}

static void test_conf_load_reports_every_error_in_line_order(void **state)
{
	expect_errors("all_errors.ini", NULL, 0, "all_errors.txt");
}

static void test_conf_load_syntax_errors_on_every_line(void **state)
{
	expect_errors("syntax.ini", NULL, 0, "syntax.txt");
}

static void test_conf_load_required_key_at_section_line(void **state)
{
	expect_errors("required.ini", NULL, 0, "required.txt");
}

static void test_conf_load_duplicate_keys(void **state)
{
	expect_errors("dupkeys.ini", NULL, 0, "dupkeys.txt");
}

static void test_conf_load_unknown_keys(void **state)
{
	expect_errors("unknown.ini", NULL, 0, "unknown.txt");
}

static void test_conf_load_unknown_plugin(void **state)
{
	expect_errors("noplugin.ini", NULL, 0, "noplugin.txt");
}

static void test_conf_load_plugin_failing_to_load(void **state)
{
	expect_errors("badplugin.ini", NULL, 0, "badplugin.txt");
}

static void test_conf_load_transport_mismatch(void **state)
{
	expect_errors("transport.ini", NULL, 0, "transport.txt");
}

static void test_conf_load_duplicate_address(void **state)
{
	expect_errors("dupaddr.ini", NULL, 0, "dupaddr.txt");
}

static void test_conf_load_check_errors(void **state)
{
	expect_errors("check.ini", NULL, 0, "check.txt");
}

/* check() knows the INI file's directory, for paths inside its own
 * values. */
static void test_conf_load_check_gets_config_dir(void **state)
{
	expect_errors("check.ini", (const char *const[]){ "a.token=dir",
							  "a.tag=ok",
							  "b.count=1",
							  "b.mode=fast" }, 4,
		      "config_dir.txt");
}

static void test_conf_load_no_services(void **state)
{
	expect_errors("empty.ini", NULL, 0, "empty.txt");
}

static void test_conf_load_missing_file(void **state)
{
	expect_errors("nosuch.ini", NULL, 0, "nosuch.txt");
}

/* A refused plugin line is its own error, not "out of memory", and the
 * section's other keys are still checked. */
static void test_conf_load_refused_plugin_line(void **state)
{
	expect_errors("refused_plugin.ini", NULL, 0, "refused_plugin.txt");
}

/* A getline() failure that is not the end of the file is an error at the
 * line it could not read, never a shorter file that checks "ok". */
static void test_conf_load_read_failure_is_an_error(void **state)
{
	getline_fail_at = 3;
	getline_calls = 0;
	expect_errors("good.ini", NULL, 0, "read_enomem.txt");
	getline_fail_at = 0;
}

/* A FIFO would block open() and a device would never end: neither is a
 * configuration file. */
static void test_conf_load_refuses_what_is_not_a_regular_file(void **state)
{
	char dir[] = "/tmp/ringd-test-XXXXXX", fifo[64], want[128];
	struct conf_errors errs = { 0 };
	struct ringd_conf *c = NULL;

	expect_errors("/dev/zero", NULL, 0, "not_regular.txt");
	assert_non_null(mkdtemp(dir));
	snprintf(fifo, sizeof(fifo), "%s/fifo.ini", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(conf_load(fifo, NULL, 0, FIXTURE_DIR, &c, &errs), -1);
	snprintf(want, sizeof(want), "%s: not a regular file", fifo);
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.msg[0], want);
	conf_errors_free(&errs);
	unlink(fifo);
	rmdir(dir);
}

/* The -s text is quoted in the location: its control characters are
 * escaped there as they are in the message. */
static void test_conf_load_set_text_sanitized(void **state)
{
	static const char *const sets[] = { "good.count=\x1b[31m\x07" };

	expect_errors("good.ini", sets, 1, "set_sanitized.txt");
}

static void test_conf_print_keys_aligned(void **state)
{
	struct plugin_set set = { 0 };
	struct plugin *pl;
	char err[512], *got = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&got, &len);

	assert_int_equal(plugin_load(&set, FIXTURE_DIR, "good", &pl, err,
				     sizeof(err)), 0);
	conf_print_keys(f, "good: test fixture", pl->p->keys);
	conf_print_daemon_keys(f, "every service section:",
			       conf_service_keys);
	fclose(f);
	golden_compare(got, "keys.txt");
	free(got);
	plugin_set_free(&set);

	f = open_memstream(&got, &len);
	conf_print_daemon_keys(f, "[ringd]", conf_core_keys);
	fclose(f);
	assert_non_null(strstr(got, "\n  backend                     enum       "
				    "default auto"));
	assert_non_null(strstr(got, "default " RINGD_PLUGIN_DIR));
	assert_non_null(strstr(got, "per-worker SO_REUSEPORT listeners instead "
				    "of one shared listener\n"));
	free(got);
}

static int data_dir_enter(void **state)
{
	return chdir(DATA_DIR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conf_load_good_file_typed_values),
		cmocka_unit_test(test_conf_load_applies_defaults),
		cmocka_unit_test(test_conf_load_admission_keys_inherit_from_ringd),
		cmocka_unit_test(test_conf_load_admission_key_errors),
		cmocka_unit_test(test_conf_load_resolves_paths_against_ini_dir),
		cmocka_unit_test(test_conf_load_qotd_default_quotes),
		cmocka_unit_test(test_conf_load_set_overrides),
		cmocka_unit_test(test_conf_load_set_errors),
		cmocka_unit_test(test_conf_load_reports_every_error_in_line_order),
		cmocka_unit_test(test_conf_load_syntax_errors_on_every_line),
		cmocka_unit_test(test_conf_load_required_key_at_section_line),
		cmocka_unit_test(test_conf_load_duplicate_keys),
		cmocka_unit_test(test_conf_load_unknown_keys),
		cmocka_unit_test(test_conf_load_unknown_plugin),
		cmocka_unit_test(test_conf_load_plugin_failing_to_load),
		cmocka_unit_test(test_conf_load_transport_mismatch),
		cmocka_unit_test(test_conf_load_duplicate_address),
		cmocka_unit_test(test_conf_load_check_errors),
		cmocka_unit_test(test_conf_load_check_gets_config_dir),
		cmocka_unit_test(test_conf_load_no_services),
		cmocka_unit_test(test_conf_load_missing_file),
		cmocka_unit_test(test_conf_load_refused_plugin_line),
		cmocka_unit_test(test_conf_load_read_failure_is_an_error),
		cmocka_unit_test(test_conf_load_refuses_what_is_not_a_regular_file),
		cmocka_unit_test(test_conf_load_set_text_sanitized),
		cmocka_unit_test(test_conf_print_keys_aligned),
		cmocka_unit_test(test_conf_http_route_errors_name_their_line),
	};

	return cmocka_run_group_tests(tests, data_dir_enter, NULL);
}

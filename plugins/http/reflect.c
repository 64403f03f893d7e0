/* reflect: see reflect.h. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "reflect.h"

void peer_format(const struct sockaddr *sa, socklen_t len, char out[PEER_MAX])
{
	char ip[INET6_ADDRSTRLEN];

	if (sa && sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(out, PEER_MAX, "%s:%u", ip, ntohs(in->sin_port));
	} else if (sa && sa->sa_family == AF_INET6 &&
		   len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(out, PEER_MAX, "[%s]:%u", ip, ntohs(in6->sin6_port));
	} else {
		snprintf(out, PEER_MAX, "%s",
			 sa && sa->sa_family == AF_UNIX ? "unix" : "-");
	}
}

bool reflect_wants_json(const char *buf, const struct http_request *req)
{
	const struct http_field *f = http_field_find(req, buf, "accept");

	return f && http_list_has(buf, f->value, "application/json");
}

/* JSON strings: quote, backslash and controls escaped; bytes over 0x7f
 * (obs-text, not UTF-8 as far as HTTP is concerned) as \u00XX, so the
 * output is always valid UTF-8. */
static void put_json(struct hbuf *b, const char *s, size_t n)
{
	hbuf_puts(b, "\"");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			hbuf_printf(b, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			hbuf_printf(b, "\\u%04x", c);
		else
			hbuf_put(b, &s[i], 1);
	}
	hbuf_puts(b, "\"");
}

static void reflect_json(struct hbuf *b, const char *buf,
			 const struct http_request *req, const char *peer)
{
	char proto[16];

	snprintf(proto, sizeof(proto), "HTTP/%u.%u", req->major, req->minor);
	hbuf_puts(b, "{\"remote_addr\":");
	put_json(b, peer, strlen(peer));
	hbuf_puts(b, ",\"method\":");
	put_json(b, buf + req->method_name.off, req->method_name.len);
	hbuf_puts(b, ",\"target\":");
	put_json(b, buf + req->target.off, req->target.len);
	hbuf_puts(b, ",\"proto\":");
	put_json(b, proto, strlen(proto));
	hbuf_puts(b, ",\"headers\":[");
	for (unsigned i = 0; i < req->nfields; i++) {
		const struct http_field *f = &req->fields[i];

		hbuf_puts(b, i ? ",[" : "[");
		put_json(b, buf + f->name.off, f->name.len);
		hbuf_puts(b, ",");
		put_json(b, buf + f->value.off, f->value.len);
		hbuf_puts(b, "]");
	}
	hbuf_puts(b, "]}\n");
}

void reflect_render(struct hbuf *b, const char *buf,
		    const struct http_request *req, const char *peer, bool json)
{
	if (json) {
		reflect_json(b, buf, req, peer);
		return;
	}
	hbuf_printf(b, "RemoteAddr: %s\n%.*s %.*s HTTP/%u.%u\n", peer,
		    (int)req->method_name.len, buf + req->method_name.off,
		    (int)req->target.len, buf + req->target.off, req->major,
		    req->minor);
	for (unsigned i = 0; i < req->nfields; i++) {
		const struct http_field *f = &req->fields[i];

		hbuf_printf(b, "%.*s: %.*s\n", (int)f->name.len,
			    buf + f->name.off, (int)f->value.len,
			    buf + f->value.off);
	}
}

/* The reflect route kind (like traefik/whoami): the request line, its
 * fields and the peer's address as text, or as JSON for a client whose
 * Accept holds application/json. Also the peer formatter the request
 * log shares. Knows no host and no connection. */
#ifndef RINGD_HTTP_REFLECT_H
#define RINGD_HTTP_REFLECT_H

#include <stdbool.h>
#include <sys/socket.h>

#include "parse.h"
#include "response.h"

/* "127.0.0.1:5131", "[::1]:5131", "unix" or "-". */
#define PEER_MAX 64
void peer_format(const struct sockaddr *sa, socklen_t len, char out[PEER_MAX]);

/* Appends the body answering req (whose head is buf) from peer. */
void reflect_render(struct hbuf *b, const char *buf,
		    const struct http_request *req, const char *peer,
		    bool json);

/* Whether req asks for JSON. */
bool reflect_wants_json(const char *buf, const struct http_request *req);

#endif

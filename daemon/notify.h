/* The sd_notify protocol without libsystemd: one datagram to the unix
 * socket named by NOTIFY_SOCKET (a path, or '@' for the abstract
 * namespace). A no-op when the variable is unset, so ringd behaves the
 * same outside systemd. */
#ifndef RINGD_NOTIFY_H
#define RINGD_NOTIFY_H

/* Send text ("READY=1\nSTATUS=...") as one datagram. Returns 0 when sent
 * or when there is nobody to tell, -errno otherwise. */
int notify_send(const char *text);

#endif

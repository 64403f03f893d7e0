#!/usr/bin/env python3
"""Writes ringd.ini(5) from `ringd -K`, the same key tables that validate
the file, so the manual cannot drift from the code. Usage:
keys2man.py RINGD VERSION OUT PLUGIN..."""

import re
import subprocess
import sys


def keys(ringd, name):
    out = subprocess.run([ringd, '-K', name], check=True, capture_output=True,
                         text=True).stdout
    # For a plugin, only its own keys: the common ones have their section;
    # and not the path the build tree loaded it from.
    out = out.split('\nand those of every service section')[0].rstrip()
    return re.sub(r' \(/[^)]*\.so\)$', '', out, flags=re.M)


def troff_block(text):
    lines = [l.replace('\\', '\\e') for l in text.splitlines()]
    # A line starting with a dot or quote would be a troff request.
    lines = ['\\&' + l if l[:1] in ('.', "'") else l for l in lines]
    return '.nf\n.ft CR\n' + '\n'.join(lines) + '\n.ft R\n.fi\n'


# Prose the key tables cannot carry: what allow/deny mean together and how
# xinetd's access keys translate.
ACCESS = [
    '.SH ACCESS CONTROL',
    '.B deny',
    'wins over',
    '.BR allow ;',
    'an empty',
    '.B allow',
    'admits everyone. A service that sets either list replaces the',
    '.B [ringd]',
    'default instead of adding to it. An IPv4 client of a dual-stack listener',
    'is matched as IPv4. A refused TCP client is reset at accept, before any',
    'plugin sees it; a refused UDP datagram is dropped by the UDP guard.',
    '.B unix:',
    'listeners are governed by',
    '.B socket_mode',
    'instead.',
    '.B max_connections_per_source',
    'counts open connections per service and IPv4 address or IPv6 /64.',
    'Refusals are logged at most once per 10 s per worker, with counts by',
    'reason and the last peer.',
    '.SS From xinetd',
    '.TS',
    'l l.',
    'only_from = 10.0.0.0/8 192.0.2.7\tallow = 10.0.0.0/8, 192.0.2.7',
    'no_access = 10.1.0.0/16\tdeny = 10.1.0.0/16',
    'per_source = 8\tmax_connections_per_source = 8',
    'instances = 100\tmax_connections = 100 ([ringd], all services)',
    '.TE',
    'Host names are not accepted; give their addresses.',
]


def main():
    ringd, version, out, plugins = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    parts = ['.TH RINGD.INI 5 2026-11-22 "ringd %s" "File Formats"' % version,
             '.SH NAME', 'ringd.ini \\- ringd configuration file',
             '.SH DESCRIPTION',
             'An INI file: comments start with ; or #.',
             '.B [ringd]',
             'configures the daemon; every other section is one service instance',
             'named by its section, running the plugin named by',
             '.B plugin',
             '(default: the section name).',
             'Errors are reported as FILE:LINE: [section] key: message, all at once;',
             '.B ringd \\-t',
             'checks a file without binding anything.',
             'Durations take ms, s, m, h (a bare number is seconds); sizes take k, m, g, t (1024-based).',
             'Numbers are decimal, a leading zero included (010 is ten);',
             'only a file mode (socket_mode) is octal, as chmod reads it.',
             'This page is generated from the tables that validate the file;',
             '.B ringd \\-K',
             '.I NAME',
             'prints the same.',
             '.SH THE DAEMON AND EVERY SERVICE', troff_block(keys(ringd, 'ringd'))]
    for p in plugins:
        parts += ['.SH PLUGIN %s' % p.upper(), troff_block(keys(ringd, p))]
    parts += ACCESS
    parts += ['.SH SEE ALSO', '.BR ringd (8)']
    with open(out, 'w') as f:
        f.write('\n'.join(parts) + '\n')


if __name__ == '__main__':
    main()

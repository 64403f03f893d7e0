#!/usr/bin/env bash
# End-to-end test under a booted systemd: a Debian bookworm tree made by
# debootstrap (cached between runs), ringd put into a copy of it with
# `meson install --destdir`, booted with systemd-nspawn and driven from
# the host with nsenter: systemctl and journalctl run inside the
# container, the Python clients (client.py) run in its network namespace,
# so the image needs no Python. Each check prints one verdict line and a
# summary follows. Root only; never run by `meson test` (SPEC: no test
# there needs root or the network), but by .ci/run.
#
# Exit: 0 when every check that ran passed, 1 when one failed, 77 when
# this machine cannot run the test at all (the line before says why).
#
# Environment:
#   RINGD_E2E_FEATURES  checks off by default (FEATURE_OFF below) to run
#                       anyway: any of "reload watchdog activate", or "all"
#   RINGD_E2E_CACHE     the debootstrap tree's home (/var/cache/ringd-e2e)
#   RINGD_E2E_MIRROR    the Debian archive (http://deb.debian.org/debian)
#   RINGD_E2E_BUILD     the meson build dir (SRC/build-systemd)
#   RINGD_E2E_KEEP=1    keep the run's directory (tree, console log)
set -euo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
CLIENT=$SRC/tests/systemd/client.py
CACHE=${RINGD_E2E_CACHE:-/var/cache/ringd-e2e}
MIRROR=${RINGD_E2E_MIRROR:-http://deb.debian.org/debian}
BUILD=${RINGD_E2E_BUILD:-$SRC/build-systemd}
FEATURES=${RINGD_E2E_FEATURES:-}
SUITE=bookworm
# liburing2 and libinih1 are ringd's run-time libraries; the build on the
# host (also Debian 12) links against the same versions.
PACKAGES=systemd,systemd-sysv,dbus,liburing2,libinih1
# Bump when image_configure changes, so cached trees are made again.
IMAGE_REV=2
# The whole container's life, whatever happens to this script.
CONTAINER_LIFETIME=420
CONF=/etc/ringd/ringd.ini

WORK='' ROOT='' MACHINE='' TIMEOUT_PID='' LEADER='' BOOTED=no
VERDICTS=()
# HOST PORT ANY of [echo], [http] and [daytime] in the installed config
# (listen_of); "${ECHO[@]:0:2}" is what a client dials.
ECHO=() HTTP=() DAYTIME=()

note() { printf '  %s\n' "$*"; }

skip_all() {
	echo "SKIP: $*"
	exit 77
}

die() {
	echo "ERROR: $*" >&2
	exit 1
}

# The checks off by default, by the feature they need, and why: a check
# whose feature is not listed here runs. Delete an entry once its checks
# pass on main; until then RINGD_E2E_FEATURES turns it on.
declare -A FEATURE_OFF=(
)

feature_on() {
	[[ -z ${FEATURE_OFF[$1]+set} ||
		" ${FEATURES//,/ } " == *" all "* ||
		" ${FEATURES//,/ } " == *" $1 "* ]]
}

# --- the machine, the image, the build ------------------------------------

preflight() {
	local tool
	[[ $(id -u) == 0 ]] || skip_all "needs root (debootstrap, systemd-nspawn)"
	# Root of a user namespace cannot make the devices and mounts of a
	# container, nor keep the image's file owners.
	[[ $(awk 'NR == 1 { print $1, $2, $3 }' /proc/self/uid_map) == "0 0 4294967295" ]] ||
		skip_all "runs in a user namespace (uid_map: $(awk 'NR == 1 { print $1, $2, $3 }' /proc/self/uid_map)); systemd-nspawn needs the host's root"
	(($(printf '%d' "0x$(awk '/^CapEff:/ { print $2 }' /proc/self/status)") >> 21 & 1)) ||
		skip_all "no CAP_SYS_ADMIN in the effective set; systemd-nspawn needs it"
	for tool in debootstrap systemd-nspawn nsenter python3 meson wget; do
		command -v "$tool" >/dev/null ||
			skip_all "$tool not installed (apt-get install debootstrap systemd-container python3 meson wget)"
	done
}

image_dir() {
	echo "$CACHE/$SUITE-$(echo "$PACKAGES $IMAGE_REV" | md5sum | cut -c1-8)"
}

# Only asked when the tree must be made: a cached tree needs no network.
# Prints wget's reason when the archive does not answer.
archive_unreachable() {
	local out
	out=$(wget --spider -nv --timeout=15 --tries=2 "$MIRROR/dists/$SUITE/InRelease" 2>&1) &&
		return 1
	printf '%s\n' "$out" | grep -v '^$' | tail -1
}

# Quiet units that would only compete with the test for the two cores;
# debootstrap copied the host's name, which the journal would show.
image_configure() {
	local root=$1 unit
	echo ringd-e2e >"$root/etc/hostname"
	for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
		dpkg-db-backup.timer fstrim.timer; do
		ln -sf /dev/null "$root/etc/systemd/system/$unit"
	done
}

image_ensure() {
	local dir=$1 tmp why
	[[ -f $dir/complete ]] && { note "image: cached in $dir"; return 0; }
	why=$(archive_unreachable) &&
		skip_all "the Debian archive cannot be reached ($MIRROR/dists/$SUITE/InRelease: $why); the image cannot be made"
	mkdir -p "$CACHE"
	rm -rf "$dir"
	# What an interrupted run left (a run still making one is younger),
	# and the trees of earlier IMAGE_REVs or package lists.
	find "$CACHE" -maxdepth 1 -name '.new.*' -mmin +60 -exec rm -rf {} +
	find "$CACHE" -maxdepth 1 -name "$SUITE-*" ! -path "$dir" -exec rm -rf {} +
	tmp=$(mktemp -d "$CACHE/.new.XXXXXX")
	note "image: debootstrap $SUITE from $MIRROR into $dir (about a minute, once)"
	if ! timeout 900 debootstrap --variant=minbase --include="$PACKAGES" \
		"$SUITE" "$tmp/root" "$MIRROR" >"$tmp/debootstrap.log" 2>&1; then
		why=$(grep -m1 -iE "couldn't download|failed getting release|temporary failure|unable to connect|could not resolve" \
			"$tmp/debootstrap.log") || true
		if [[ -n $why ]]; then
			rm -rf "$tmp"
			skip_all "the Debian archive $MIRROR stopped answering during debootstrap ($why)"
		fi
		tail -20 "$tmp/debootstrap.log" >&2
		rm -rf "$tmp"
		die "debootstrap failed (the archive answered; the log's end is above)"
	fi
	image_configure "$tmp/root"
	touch "$tmp/complete"
	# Another run may have won the race; its tree is as good as ours.
	mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"
}

build_ringd() {
	if [[ ! -f $BUILD/build.ninja ]]; then
		meson setup "$BUILD" "$SRC" --prefix=/usr --sysconfdir=/etc \
			-Dsystemdunitdir=/usr/lib/systemd/system >"$WORK/meson-setup.log" 2>&1 ||
			{ tail -20 "$WORK/meson-setup.log" >&2; die "meson setup $BUILD failed"; }
	fi
	meson compile -C "$BUILD" >"$WORK/meson-compile.log" 2>&1 ||
		{ tail -30 "$WORK/meson-compile.log" >&2; die "meson compile -C $BUILD failed"; }
	note "build: $BUILD"
}

# ringd and its files as `meson install` lays them out, plus the hang
# fixture (test-only, never installed) for the watchdog check.
install_ringd() {
	local plugdir
	meson install -C "$BUILD" --no-rebuild --destdir "$ROOT" >"$WORK/meson-install.log" 2>&1 ||
		{ tail -20 "$WORK/meson-install.log" >&2; die "meson install --destdir failed"; }
	plugdir=$(dirname "$(find "$ROOT/usr/lib" -path '*/ringd/echo.so' | head -1)")
	[[ -f $BUILD/tests/unit/fixtures/hang.so ]] &&
		cp "$BUILD/tests/unit/fixtures/hang.so" "$plugdir/"
	cp "$ROOT$CONF" "$WORK/ringd.ini.installed"
	note "installed: $(cd "$ROOT" && ls usr/sbin/ringd usr/bin/ringd-probe usr/lib/systemd/system/ringd.* | tr '\n' ' ')"
}

# --- the container --------------------------------------------------------

# nspawn's child in a new PID namespace where it is PID 1: the container's
# systemd. (nspawn forks an intermediate child first, which exits.)
leader_of() {
	local nspawn=$1 c
	for c in $(cat /proc/"$nspawn"/task/*/children 2>/dev/null); do
		if awk '/^NSpid:/ { found = NF > 2 && $NF == 1 } END { exit !found }' \
			/proc/"$c"/status 2>/dev/null; then
			echo "$c"
			return 0
		fi
	done
	return 1
}

container_start() {
	local nspawn='' i
	timeout --kill-after=10 "$CONTAINER_LIFETIME" systemd-nspawn -b \
		-D "$ROOT" --machine="$MACHINE" --register=no --keep-unit \
		--private-network --console=read-only >"$WORK/console.log" 2>&1 &
	TIMEOUT_PID=$!
	for ((i = 0; i < 300; i++)); do
		[[ -z $nspawn ]] && nspawn=$(cat /proc/$TIMEOUT_PID/task/*/children 2>/dev/null | awk '{ print $1 }')
		[[ -n $nspawn ]] && LEADER=$(leader_of "$nspawn") && return 0
		kill -0 "$TIMEOUT_PID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# Stops only what this script started, by PID: a clean poweroff from
# inside first; then SIGKILL to the container's PID 1, which ends its
# whole PID namespace (killing nspawn or timeout would orphan it).
container_stop() {
	local i
	[[ -n $TIMEOUT_PID ]] && kill -0 "$TIMEOUT_PID" 2>/dev/null || return 0
	[[ -n $LEADER ]] && timeout 10 nsenter -t "$LEADER" -a systemctl poweroff --no-block >/dev/null 2>&1
	for ((i = 0; i < 400; i++)); do
		kill -0 "$TIMEOUT_PID" 2>/dev/null || break
		((i == 250)) && [[ -n $LEADER ]] &&
			[[ $(awk '/^NSpid:/ { print $NF }' /proc/"$LEADER"/status 2>/dev/null) == 1 ]] &&
			kill -KILL "$LEADER" 2>/dev/null
		sleep 0.1
	done
	kill -0 "$TIMEOUT_PID" 2>/dev/null && echo "warning: systemd-nspawn (under PID $TIMEOUT_PID) did not exit" >&2
	wait "$TIMEOUT_PID" 2>/dev/null || true
}

# A check that failed early may leave a background client behind.
clients_stop() {
	local pid
	[[ -f $WORK/clients.pids ]] || return 0
	for pid in $(cat "$WORK/clients.pids"); do
		grep -qs client.py "/proc/$pid/cmdline" && kill "$pid" 2>/dev/null
	done
	return 0
}

cleanup() {
	local rc=$?
	clients_stop
	container_stop || true
	# nspawn leaves this behind on a /run that is not a tmpfs.
	[[ -n $MACHINE ]] && rm -rf "/run/systemd/nspawn/propagate/$MACHINE"
	if [[ -n $WORK ]]; then
		if [[ ${RINGD_E2E_KEEP:-} == 1 || $rc == 1 ]]; then
			echo "kept: $WORK (console.log has the container's console)"
		else
			rm -rf "$WORK"
		fi
	fi
}

ct() { timeout "${CT_TIMEOUT:-60}" nsenter -t "$LEADER" -a "$@"; }
ctl() { ct systemctl --no-pager "$@"; }
client() { timeout "${CT_TIMEOUT:-60}" nsenter -t "$LEADER" -n python3 "$CLIENT" "$@"; }
# For `client_bg ... &`: exec makes $! timeout's own PID, and timeout
# passes a SIGTERM on to the client, so `kill $!` ends the client itself.
client_bg() {
	echo "$BASHPID" >>"$WORK/clients.pids"
	exec timeout "${CT_TIMEOUT:-60}" nsenter -t "$LEADER" -n python3 "$CLIENT" "$@"
}
prop() { ctl show -P "$2" "$1"; }

# --- steps ------------------------------------------------------------------

verdict() {
	VERDICTS+=("$(printf '%-4s  %-18s %s' "$1" "$2" "$3")")
	printf '%-4s  %-18s %s\n' "$1" "$2" "$3"
}

# Inside a step's subshell: say why and end the step.
fail() {
	echo "$*" >"$WORK/why"
	note "FAIL: $*"
	exit 1
}

# An unexpected failure in a check: name the check's own line, which says
# more than the helper's command that failed inside it.
err_at() {
	local i line=''
	for ((i = 1; i < ${#FUNCNAME[@]}; i++)); do
		if [[ ${FUNCNAME[i]} == check_* || ${FUNCNAME[i]} == activation_* ]]; then
			line=${BASH_LINENO[i - 1]}
			break
		fi
	done
	[[ -n $line ]] || line=${BASH_LINENO[0]}
	# fail() inside $(...) said why already.
	[[ -s $WORK/why ]] && return 0
	echo "exit $1 at run.sh:$line: $(sed -n "${line}s/^[[:space:]]*//p" "$0")" >"$WORK/why"
	note "FAIL: $(cat "$WORK/why")"
}

# step NAME FEATURE WHAT FUNCTION: FEATURE is '' or a key of FEATURE_OFF
# (the check runs only when feature_on says so). A check runs in a subshell with errexit, so the first
# failing command ends it, and its state is what systemd says, not shell
# variables left by an earlier check.
step() {
	local name=$1 feature=$2 what=$3 fn=$4 rc t0=$SECONDS since
	if [[ -n $feature ]] && ! feature_on "$feature"; then
		verdict SKIP "$name" "off: ${FEATURE_OFF[$feature]}; RINGD_E2E_FEATURES=$feature runs it"
		return 0
	fi
	if [[ $BOOTED != yes ]]; then
		verdict SKIP "$name" "not run: the container did not boot"
		return 0
	fi
	echo "== $name: $what"
	rm -f "$WORK/why"
	since=$(date +%s)
	set +e
	(
		set -eE
		# Not from inside $(...), whose failures end nothing.
		trap '((BASH_SUBSHELL > 1)) || err_at $?' ERR
		"$fn"
	)
	rc=$?
	set -e
	# A check that failed half-way must not leave the next one its
	# config or its clients.
	clients_stop
	conf_restore
	dropins_restore || true
	if ((rc == 0)); then
		verdict PASS "$name" "$what ($((SECONDS - t0)) s)"
	else
		# What ringd and systemd said meanwhile is most of a diagnosis.
		{ ct journalctl -u ringd.service --since "@$since" -t ringd -p warning \
			--no-pager -o cat 2>/dev/null || true; } | awk '!seen[$0]++' | tail -4 | sed 's/^/  ringd: /'
		{ ct journalctl -u ringd.service -u ringd.socket --since "@$since" \
			--no-pager -o cat 2>/dev/null || true; } | tail -4 | sed 's/^/  journal: /'
		verdict FAIL "$name" "$(cat "$WORK/why" 2>/dev/null || echo "exit $rc")"
	fi
}

# wait_until SECONDS COMMAND...: true once COMMAND succeeds, polling.
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || return 1
		sleep 0.2
	done
}

main_pid() { prop ringd.service MainPID; }
state_is() { [[ "$(prop ringd.service ActiveState)/$(prop ringd.service SubState)" == "$1" ]]; }
running_other_than() {
	local pid
	pid=$(main_pid)
	[[ $pid != 0 && $pid != "$1" ]] && state_is active/running
}

# The first tcp:// address of SECTION's listen line in the installed
# config, as "HOST PORT ANY": * is dialled as 127.0.0.1, with ANY 1.
listen_of() {
	awk -v sec="[$1]" '
		/^\[/ { insec = ($1 == sec) }
		insec && $1 == "listen" {
			if (match($0, /tcp:\/\/(\[[^]]*\]|[^:, ]+):[0-9]+/)) {
				a = substr($0, RSTART + 6, RLENGTH - 6)
				n = split(a, p, ":"); host = substr(a, 1, length(a) - length(p[n]) - 1)
				gsub(/[][]/, "", host); any = host == "*"
				if (any) host = "127.0.0.1"
				print host, p[n], any; exit
			}
		}' "$WORK/ringd.ini.installed"
}

# A duration key of [ringd] (the daemon's default when absent) in whole
# seconds, rounded up: the ms, s and m forms.
ringd_seconds() {
	awk -v key="$1" -v def="$2" '
		/^\[/ { insec = ($1 == "[ringd]") }
		insec && $1 == key { v = $3 }
		END {
			if (v == "") v = def
			t = v ~ /ms$/ ? v / 1000 : v ~ /m$/ ? v * 60 : v + 0
			print int(t + 0.999)
		}' "$WORK/ringd.ini.installed"
}

# systemd's time span ("10s", "1min 30s", "500ms") in whole seconds,
# rounded up.
span_seconds() {
	awk '{
		for (i = 1; i <= NF; i++) {
			v = $i + 0; u = $i; sub(/^[0-9.]+/, "", u)
			t += u == "min" ? v * 60 : u == "ms" ? v / 1000 : u == "h" ? v * 3600 : v
		}
		print int(t + 0.999)
	}' <<<"$1"
}

conf_restore() { cp "$WORK/ringd.ini.installed" "$ROOT$CONF"; }

# conf_with SECTION LINE: the installed config with LINE added at the top
# of SECTION (appended as a new section when it has none).
conf_with() {
	awk -v sec="[$1]" -v line="$2" '
		{ print }
		$1 == sec { print line; done = 1 }
		END { if (!done) { print ""; print sec; print line } }' \
		"$WORK/ringd.ini.installed" >"$ROOT$CONF"
}

ensure_running() {
	state_is active/running && return 0
	ctl reset-failed ringd.service 2>/dev/null || true
	ctl start ringd.service
}

# --- the checks ---------------------------------------------------------------

check_start() {
	local type
	ctl start ringd.service ||
		fail "systemctl start ringd failed: $(status_tail 3)"
	state_is active/running ||
		fail "after start: $(prop ringd.service ActiveState)/$(prop ringd.service SubState)"
	type=$(prop ringd.service Type)
	# Only Type=notify makes "active" mean READY=1 came, not just exec().
	[[ $type == notify ]] || fail "ringd.service has Type=$type, not notify"
	note "MainPID=$(main_pid) Status=\"$(prop ringd.service StatusText)\""
}

check_answers() {
	ensure_running
	# Larger than any buffer of the daemon, so short sends are exercised.
	client echo "${ECHO[@]:0:2}" 1 4096 200000
	if ((ECHO[2])); then client echo ::1 "${ECHO[1]}" 6; fi
	client http "${HTTP[@]:0:2}" /healthz 200 ok
	client http "${HTTP[@]:0:2}" /readyz 200
}

# The installed ringd-probe, run inside the container on the installed
# config, is the smoke test of every listener that file configures; a
# copy with one more service on a port nothing listens on must fail.
check_probe() {
	local out rc=0 want dead=/etc/ringd/e2e-dead.ini
	ensure_running
	want=$(probe_listeners)
	out=$(ct /usr/bin/ringd-probe --config "$CONF") || rc=$?
	((rc == 0)) || fail "ringd-probe --config $CONF exit $rc: $(printf '%s' "$out" | grep -v '^OK' | head -2 | tr '\n' ' ')"
	[[ $(grep -c '^OK - ' <<<"$out") == "$want" && $(wc -l <<<"$out") == "$want" ]] ||
		fail "ringd-probe --config printed $(wc -l <<<"$out") lines, want $want OK lines: $(tr '\n' ' ' <<<"$out")"
	note "$want OK lines, e.g. $(head -1 <<<"$out")"
	{ cat "$WORK/ringd.ini.installed"; printf '\n[e2e-dead]\nplugin = echo\nlisten = tcp://127.0.0.1:1\n'; } >"$ROOT$dead"
	rc=0
	out=$(ct /usr/bin/ringd-probe --config "$dead") || rc=$?
	rm -f "$ROOT$dead"
	((rc == 2)) || fail "ringd-probe on a config with a dead port: exit $rc, want 2"
	grep -q '^CRITICAL - \[e2e-dead\] echo://127.0.0.1:1 connection refused' <<<"$out" ||
		fail "no CRITICAL line for the dead port: $(tail -1 <<<"$out")"
}

# How many lines ringd-probe --config must print for the installed
# config: its tcp://, udp:// and unix: addresses, less discard's and
# chargen's udp:// (nothing to judge there).
probe_listeners() {
	awk '
		/^\[/ { sec = $1; gsub(/[][]/, "", sec) }
		$1 == "listen" {
			sub(/^[^=]*=/, ""); sub(/[;#].*/, "")
			n = split($0, a, /[, \t]+/)
			for (i = 1; i <= n; i++)
				if (a[i] ~ /^(tcp:|unix:)/ || (a[i] ~ /^udp:/ && sec != "discard" && sec != "chargen"))
					count++
		}
		END { print count + 0 }' "$WORK/ringd.ini.installed"
}

# The README's ExecStartPost= line, as a drop-in: the probe runs after
# READY=1 under the unit's own sandbox (DynamicUser, the syscall and
# address family filters) and passes; a failing probe fails the start.
check_start_post() {
	local since
	dropin_set "ExecStartPost=/usr/bin/ringd-probe --config $CONF"
	since=$(date +%s)
	ctl restart ringd.service ||
		fail "start with ExecStartPost= ringd-probe failed: $(journal_since "$since" 'ringd-probe|UNKNOWN|CRITICAL' | tail -2 | tr '\n' ' ')"
	state_is active/running || fail "after start: $(prop ringd.service SubState)"
	journal_since "$since" '^OK - \[echo\] ' >/dev/null ||
		fail "the journal has no OK line of the probe for [echo]"
	note "journal: $(journal_since "$since" '^OK - \[echo\] ' | tail -1)"
	# Restart=no: with on-failure, systemd would retry the failing start.
	dropin_set "ExecStartPost=/usr/bin/ringd-probe --config $CONF echo://127.0.0.1:1" "Restart=no"
	if ctl restart ringd.service 2>/dev/null; then
		fail "the start succeeded although ExecStartPost= ringd-probe failed"
	fi
	[[ $(prop ringd.service Result) == exit-code ]] ||
		fail "a failing probe left Result=$(prop ringd.service Result), not exit-code"
	journal_since "$since" '^CRITICAL - echo://127.0.0.1:1 connection refused' >/dev/null ||
		fail "the failed start's journal has no CRITICAL line of the probe"
	note "with a dead target: start failed, Result=exit-code"
	dropins_restore
	ctl reset-failed ringd.service 2>/dev/null || true
	ctl start ringd.service
}

DROPIN_DIR=/etc/systemd/system/ringd.service.d

# dropin_set LINE...: a drop-in of ringd.service with these [Service] lines.
dropin_set() {
	mkdir -p "$ROOT$DROPIN_DIR"
	printf '[Service]\n' >"$ROOT$DROPIN_DIR/e2e.conf"
	printf '%s\n' "$@" >>"$ROOT$DROPIN_DIR/e2e.conf"
	ctl daemon-reload
}

dropins_restore() {
	[[ -e $ROOT$DROPIN_DIR/e2e.conf ]] || return 0
	rm -f "$ROOT$DROPIN_DIR/e2e.conf"
	ctl daemon-reload
}

# A connection open across the reload must stay open (SPEC: a valid file
# is applied without dropping established connections).
check_reload() {
	local pid since idle
	ensure_running
	pid=$(main_pid)
	client http "${HTTP[@]:0:2}" /e2e-reload 404
	client_bg idle "${ECHO[@]:0:2}" >"$WORK/reload-idle.out" 2>&1 &
	idle=$!
	wait_until 10 grep -q 'connection open' "$WORK/reload-idle.out" ||
		fail "the idle client did not connect: $(cat "$WORK/reload-idle.out")"
	conf_with http 'route = /e2e-reload 200 body="reloaded"'
	since=$(date +%s)
	ctl reload ringd.service ||
		fail "systemctl reload ringd failed: $(journal_since "$since" . | tail -3 | tr '\n' ' ')"
	[[ $(main_pid) == "$pid" ]] || fail "MainPID changed across reload: $pid -> $(main_pid)"
	state_is active/running || fail "after reload: $(prop ringd.service SubState)"
	client http "${HTTP[@]:0:2}" /e2e-reload 200 reloaded
	kill -0 "$idle" 2>/dev/null || fail "the reload closed an open connection: $(cat "$WORK/reload-idle.out")"
	kill "$idle"
	conf_restore
	ctl reload ringd.service
	client http "${HTTP[@]:0:2}" /e2e-reload 404
}

# An unknown key. Whatever ExecReload= checks before it signals, the
# daemon's own SIGHUP path must refuse the file too, keep running and
# say FILE:LINE where systemctl status shows it.
check_reload_broken() {
	local pid want
	ensure_running
	pid=$(main_pid)
	want="ringd.ini:[0-9]+:.*e2e_no_such_key"
	conf_with echo 'e2e_no_such_key = 1'
	if ctl reload ringd.service; then
		note "systemctl reload returned success (the daemon keeps its config)"
	else
		note "systemctl reload refused the file"
	fi
	ctl kill -s HUP --kill-who=main ringd.service
	wait_until 10 status_says "ringd\[$pid\]: .*$want" ||
		fail "after SIGHUP, systemctl status shows no error of ringd[$pid]: $(status_tail 2)"
	note "status: $(status_says "ringd\[$pid\]: .*$want" | tail -1 | sed 's/^ *//')"
	[[ $(main_pid) == "$pid" ]] || fail "MainPID changed: $pid -> $(main_pid)"
	state_is active/running || fail "after a broken reload: $(prop ringd.service SubState)"
	client echo "${ECHO[@]:0:2}" 6
	conf_restore
}

journal_since() {
	ct journalctl -u ringd.service --since "@$1" --no-pager -o cat | grep -E "$2"
}

# systemctl status exits 3 for a unit that is not running; only grep's
# answer counts here.
status_says() {
	{ ctl status ringd.service -n 50 -l || true; } | grep -E "$1"
}

# The last lines of systemctl status, for a failure's message.
status_tail() {
	{ ctl status ringd.service -n "$1" -l 2>&1 || true; } | tail -"$1" | tr '\n' ' '
}

check_kill() {
	local pid restarts
	ensure_running
	pid=$(main_pid) restarts=$(prop ringd.service NRestarts)
	ctl kill -s KILL ringd.service
	wait_until 20 running_other_than "$pid" ||
		fail "no restart after SIGKILL: $(prop ringd.service ActiveState)/$(prop ringd.service SubState)"
	[[ $(prop ringd.service NRestarts) == $((restarts + 1)) ]] ||
		fail "NRestarts went $restarts -> $(prop ringd.service NRestarts), not +1"
	note "MainPID $pid -> $(main_pid), NRestarts=$(prop ringd.service NRestarts)"
	client echo "${ECHO[@]:0:2}" 6
}

# The watchdog period of ringd.service in whole seconds; fails the check
# when the unit sets none.
watchdog_seconds() {
	local wd
	wd=$(prop ringd.service WatchdogUSec)
	[[ $wd != 0 && $wd != infinity ]] || fail "ringd.service sets no WatchdogSec="
	span_seconds "$wd"
}

# A daemon that never pings is killed after one period: a well one must
# outlive it, pinging.
check_watchdog_idle() {
	local wd pid restarts since
	ensure_running
	wd=$(watchdog_seconds)
	pid=$(main_pid) restarts=$(prop ringd.service NRestarts) since=$(date +%s)
	sleep $((wd + 2))
	{ [[ $(main_pid) == "$pid" ]] && state_is active/running; } ||
		fail "ringd was restarted within WatchdogSec=${wd}s while nothing hung: $(journal_since "$since" 'Watchdog|Failed with' | tail -2 | tr '\n' ' ')"
	[[ $(prop ringd.service NRestarts) == "$restarts" ]] || fail "NRestarts went $restarts -> $(prop ringd.service NRestarts)"
	note "MainPID $pid up for more than WatchdogSec=${wd}s"
}

# The hang fixture blocks one worker's thread in on_data(); only the
# watchdog can end that, with SIGABRT and a restart. The restart with
# the fixture's section must first outlive a period, as above, or a
# daemon that never pings would pass.
check_watchdog() {
	local wd pid since
	wd=$(watchdog_seconds)
	ls "$ROOT"/usr/lib/*/ringd/hang.so >/dev/null 2>&1 ||
		fail "the hang fixture (tests/unit/fixtures/hang.so) was not built"
	# conf_with's awk -v turns the \n into a line break.
	conf_with hang 'listen = tcp://127.0.0.1:7099\nhang_ms = 120s'
	ctl restart ringd.service
	pid=$(main_pid)
	sleep $((wd + 2))
	{ [[ $(main_pid) == "$pid" ]] && state_is active/running; } ||
		fail "restarted before the hang: $(prop ringd.service Result)"
	since=$(date +%s)
	client hang 127.0.0.1 7099
	wait_until $((wd * 3 + 10)) running_other_than "$pid" || fail "no restart within $((wd * 3 + 10)) s of the hang"
	journal_since "$since" "Watchdog timeout" >/dev/null ||
		fail "restarted, but the journal has no 'Watchdog timeout'"
	note "WatchdogSec=${wd}s: MainPID $pid -> $(main_pid) after a watchdog timeout"
	conf_restore
	ctl restart ringd.service
}

# An idle connection is open, so the stop must wait for the drain and
# end it within shutdown_timeout (+ drain_delay), not TimeoutStopSec.
check_stop() {
	local bound t0 ms idle
	ensure_running
	bound=$(($(ringd_seconds shutdown_timeout 10s) + $(ringd_seconds drain_delay 0s) + 3))
	client_bg idle "${ECHO[@]:0:2}" >"$WORK/idle.out" 2>&1 &
	idle=$!
	wait_until 10 grep -q 'connection open' "$WORK/idle.out" ||
		fail "the idle client did not connect: $(cat "$WORK/idle.out")"
	t0=$(date +%s%N)
	ctl stop ringd.service
	ms=$((($(date +%s%N) - t0) / 1000000))
	note "systemctl stop took $ms ms (bound ${bound}s)"
	((ms <= bound * 1000)) || fail "stop took $ms ms, over the ${bound}s drain bound"
	[[ $(prop ringd.service Result) == success && $(prop ringd.service ExecMainStatus) == 0 ]] ||
		fail "stop ended with Result=$(prop ringd.service Result) status=$(prop ringd.service ExecMainStatus)"
	wait "$idle" || fail "idle client: $(cat "$WORK/idle.out")"
	note "$(tail -1 "$WORK/idle.out")"
	if client echo "${ECHO[@]:0:2}" 1 2>/dev/null; then fail "echo still answers after stop"; fi
}

# A port taken before the start: the start fails, says why, and works
# once the port is free. It also leaves an error line for check_journal.
check_busy_port() {
	local port=${DAYTIME[1]} holder since
	ctl stop ringd.service
	since=$(date +%s)
	client_bg hold :: "$port" 60 >"$WORK/hold.out" 2>&1 &
	holder=$!
	wait_until 10 grep -q holding "$WORK/hold.out" || fail "cannot hold port $port: $(cat "$WORK/hold.out")"
	if ctl start ringd.service 2>/dev/null; then
		kill "$holder"
		fail "ringd started although port $port was taken"
	fi
	# Not systemctl status: after the start limit it shows the last
	# invocation, which ran nothing and so logged no reason.
	wait_until 10 journal_since "$since" "bind.*:$port\b.*Address already in use" ||
		{ kill "$holder"; fail "the journal does not say the port is in use"; }
	note "journal: $(journal_since "$since" "bind.*:$port\b.*Address already in use" | tail -1)"
	# No restart attempt may run while the port is still held.
	ctl stop ringd.service
	kill "$holder"
	wait "$holder" 2>/dev/null || true
	ctl reset-failed ringd.service 2>/dev/null || true
	ctl start ringd.service
	state_is active/running || fail "no start after the port was freed"
}

# `journalctl -p warning` keeps only lines whose <N> prefix journald
# parsed as warning or worse; ringd's info lines must stay out.
check_journal() {
	local text
	text=$(ct journalctl -u ringd.service -p warning --no-pager -t ringd -o cat)
	[[ -n $text ]] || fail "journalctl -u ringd -p warning shows no line of ringd's"
	printf '%s\n' "$text" | awk '!seen[$0]++' | tail -3 | while read -r line; do note "$line"; done
	! grep -q '^<[0-7]>' <<<"$text" || fail "a <N> prefix reached the journal unparsed"
	# Untagged lines would all be info, stderr's default: warnings and
	# info lines side by side show that each line carries its own.
	[[ -n $(ct journalctl -u ringd.service -p info..info --no-pager -t ringd -o cat) ]] ||
		fail "no line of ringd's has priority info: every line has one priority"
}

# Ports from ringd.socket: systemd binds them, ringd adopts them, and the
# listening socket ringd serves from is the very one PID 1 holds.
check_activation() {
	local ports
	[[ -f $ROOT/usr/lib/systemd/system/ringd.socket ]] || fail "ringd.socket is not installed"
	ctl stop ringd.service
	ctl start ringd.socket
	ports=$(prop ringd.socket Listen | grep -oE ':[0-9]+ \(Stream\)' | grep -oE '[0-9]+' | sort -u | tr '\n' ' ')
	[[ -n $ports ]] || fail "ringd.socket listens on no stream port"
	note "ringd.socket: ports $ports"
	state_is inactive/dead || fail "ringd.service runs before any client came"
	activation_probe "$ports"
	wait_until 10 state_is active/running || fail "a client did not start ringd.service"
	activation_same_sockets "$ports"
	ctl restart ringd.service
	activation_same_sockets "$ports"
	activation_probe "$ports"
	ctl stop ringd.service
	activation_probe "$ports"
	wait_until 10 state_is active/running || fail "a client did not start ringd.service again"
	ctl stop ringd.socket ringd.service
}

activation_probe() {
	local p ok=''
	for p in $1; do
		if [[ $p == "${ECHO[1]}" ]]; then client echo 127.0.0.1 "$p" 6; ok=1; fi
		if [[ $p == "${HTTP[1]}" ]]; then client http "${HTTP[0]}" "$p" /healthz 200 ok; ok=1; fi
	done
	[[ -n $ok ]] || fail "ringd.socket has neither the echo port (${ECHO[1]}) nor the http port (${HTTP[1]})"
}

activation_same_sockets() {
	local p hostpid
	hostpid=$(client hostpid "$LEADER" "$(main_pid)")
	for p in $1; do
		client same-socket "$p" "$LEADER" "$hostpid"
	done
}

# --- the run ------------------------------------------------------------------

boot() {
	local out
	echo "== boot: systemd-nspawn -b $MACHINE"
	# A container that cannot even run /bin/true is this machine's limit
	# (capabilities, cgroups, namespaces), not a fault of ringd.
	if ! out=$(timeout 60 systemd-nspawn -q -D "$ROOT" --machine="$MACHINE" \
		--register=no --keep-unit --private-network /bin/true 2>&1); then
		skip_all "systemd-nspawn cannot run a container here: $(printf '%s' "$out" | grep -v '^$' | tail -1)"
	fi
	rm -rf "/run/systemd/nspawn/propagate/$MACHINE"
	if ! container_start; then
		tail -20 "$WORK/console.log" | sed 's/^/  console: /'
		verdict FAIL boot "systemd-nspawn exited or showed no PID 1 within 30 s"
		return 0
	fi
	# PID 1 exists before its bus does; --wait needs the bus.
	wait_until 30 ct test -S /run/systemd/private || true
	out=$(ct systemctl is-system-running --wait 2>&1) || true
	if [[ $out != running && $out != degraded ]]; then
		tail -20 "$WORK/console.log" | sed 's/^/  console: /'
		verdict FAIL boot "the container's systemd is '$out', not running"
		return 0
	fi
	[[ $out == degraded ]] && ctl --failed --plain | sed 's/^/  failed unit: /'
	BOOTED=yes
	verdict PASS boot "container PID 1 is host PID $LEADER, system $out"
}

summary() {
	local fails=0 line
	echo "== summary"
	for line in "${VERDICTS[@]}"; do
		echo "$line"
		[[ $line == FAIL* ]] && fails=$((fails + 1))
	done
	echo "$(grep -c '^PASS' <<<"$(printf '%s\n' "${VERDICTS[@]}")") passed, $fails failed," \
		"$(grep -c '^SKIP' <<<"$(printf '%s\n' "${VERDICTS[@]}")") skipped"
	((fails == 0))
}

main() {
	local image
	preflight
	image=$(image_dir)
	image_ensure "$image"
	WORK=$(mktemp -d /var/tmp/ringd-e2e.XXXXXX)
	ROOT=$WORK/root MACHINE=ringd-e2e-$$
	trap cleanup EXIT
	build_ringd
	cp -a "$image/root" "$ROOT" || die "cannot copy the image $image/root to $ROOT"
	install_ringd
	read -ra ECHO <<<"$(listen_of echo)"
	read -ra HTTP <<<"$(listen_of http)"
	read -ra DAYTIME <<<"$(listen_of daytime)"
	((${#ECHO[@]} == 3 && ${#HTTP[@]} == 3 && ${#DAYTIME[@]} == 3)) ||
		die "the installed $CONF lacks a tcp:// listen for [echo], [http] or [daytime]"
	boot
	step start "" "systemctl start ringd reaches active after READY=1" check_start
	step answers "" "echo and /healthz answer" check_answers
	step probe "" "ringd-probe --config $CONF: every listener OK" check_probe
	step start-post "" "ExecStartPost= ringd-probe passes in the sandbox; failing fails" check_start_post
	step reload reload "systemctl reload keeps the PID and applies a change" check_reload
	step reload-broken reload "a broken file on reload: still up, status says why" check_reload_broken
	step kill-restart "" "systemctl kill -s KILL is followed by a restart" check_kill
	step watchdog-idle watchdog "ringd outlives WatchdogSec while nothing hangs" check_watchdog_idle
	step watchdog watchdog "a hung worker is restarted by the watchdog" check_watchdog
	step stop "" "systemctl stop completes within the drain bound" check_stop
	step busy-port "" "a taken port fails the start, the journal says why" check_busy_port
	step journal "" "journalctl -u ringd -p warning shows ringd's tagged lines" check_journal
	step activation activate "socket activation: adopted ports, across a restart" check_activation
	summary
}

main "$@"

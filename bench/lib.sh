# shellcheck shell=bash
# Shared by run.sh, http.sh and listeners.sh (sourced): building the load
# tools, running a load, watching and stopping the one server process a
# script started, whose PID is in SPID. Only that PID is ever signalled.

# True while the server we started runs (a zombie counts as gone).
server_alive() {
	local state
	state=$(sed -n 's/^[0-9]* (.*) \([A-Z]\).*/\1/p' "/proc/$SPID/stat" 2>/dev/null) || return 1
	[[ -n $state && $state != Z && $state != X ]]
}

# Polls until the server accepts a connection: at most 10 s. Returns 1 if
# the process died first, 2 on timeout.
wait_ready() {
	local port=$1 i
	for ((i = 0; i < 200; i++)); do
		server_alive || return 1
		if timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
			return 0
		fi
		sleep 0.05
	done
	return 2
}

# Stops the server we started: SIGTERM, then SIGKILL after $1 tenths of a
# second. Leaves its exit status in SRC. The ps listing on a timeout goes to
# the server's log ($2).
stop_server() {
	local grace=$1 log=$2 i
	SRC=0
	kill "$SPID" 2>/dev/null || true
	for ((i = 0; i < grace * 2; i++)); do
		server_alive || break
		sleep 0.05
	done
	if server_alive; then
		{
			echo "${0##*/}: server $SPID still running $((grace / 10)) s after SIGTERM; killing it"
			ps -o pid,ppid,stat,wchan:24,args -p "$SPID" --ppid "$SPID" || true
		} >>"$log"
		kill -KILL "$SPID" 2>/dev/null || true
	fi
	# shellcheck disable=SC2034 # SRC is the caller's to read
	wait "$SPID" 2>/dev/null || SRC=$?
	SPID=
}

# A free loopback TCP port, as the kernel picks one.
free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# Sets PROBE (the build's ringd-probe, whose --load mode drives every
# benchmark) and FLOOR (bench/floor, the kernel floor's echo server),
# configuring BUILDDIR from ROOT if needed and building only those two.
build_tools() {
	PROBE=$BUILDDIR/probe/ringd-probe
	FLOOR=$BUILDDIR/bench/floor
	if { [[ -f $BUILDDIR/build.ninja ]] || meson setup "$BUILDDIR" "$ROOT"; } &&
		ninja -C "$BUILDDIR" probe/ringd-probe bench/floor; then
		return 0
	fi >"$OUT/build.log" 2>&1
	die "cannot build ringd-probe and bench/floor (see $OUT/build.log)"
}

# The load of one run: ringd-probe --load on CPU $LG_CPU against URL $1,
# with the server's CPU time from SPID; the rest of the arguments are
# ringd-probe's (--name, --size, --no-keepalive...). Exit 2 means some
# request failed; the RESULT line says how many. The probe ends itself
# after the warm-up and DURATION; timeout is only a backstop.
probe_load() {
	local target=$1
	shift
	timeout $((${DURATION%.*} + 60)) taskset -c "$LG_CPU" "$PROBE" --load -c "$CONNS" -d "$DURATION" --warmup "$WARMUP" \
		--server-pid "$SPID" "$@" "$target"
}

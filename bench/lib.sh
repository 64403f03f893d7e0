# shellcheck shell=bash
# Shared by run.sh and listeners.sh (sourced): watching and stopping the
# one server process a script started, whose PID is in SPID. Only that
# PID is ever signalled.

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

# Sets LOADGEN: the build's bench/loadgen (configuring BUILDDIR from ROOT
# if needed), or, when the tree does not build, loadgen.c compiled alone
# into OUT. $1 names the calling script in the message.
build_loadgen() {
	LOADGEN=$BUILDDIR/bench/loadgen
	if { [[ -f $BUILDDIR/build.ninja ]] || meson setup "$BUILDDIR" "$ROOT"; } &&
		ninja -C "$BUILDDIR" bench/loadgen; then
		return 0
	fi >"$OUT/build.log" 2>&1
	echo "$1: meson build of loadgen failed (see $OUT/build.log); compiling bench/loadgen.c directly" >&2
	LOADGEN=$OUT/loadgen
	cc -std=c17 -O2 -D_GNU_SOURCE -Wall -Wextra -pthread "$ROOT/bench/loadgen.c" -o "$LOADGEN" ||
		die "cannot build loadgen"
}

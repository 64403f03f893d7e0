#!/usr/bin/env bash
# bench/http.sh: ringd's http plugin (io_uring and epoll engines, one worker)
# against nginx-light's `return 200`, and the kernel floor, under wrk, ab,
# ringd-probe --load's HTTP modes and an idle-connection memory probe. For each
# load it runs interleaved rounds (every server once per round, a fresh
# process per run, server on one CPU, load on the other) and prints medians
# and per-round ratios as markdown. See bench/README.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
BENCH=$ROOT/bench

PAIRS=7
CONNS=50
DURATION=8
WARMUP=1.5
AB_REQUESTS=20000
IDLE_CONNS=10000
URLPATH=/healthz
SERVERS="ringd-uring,ringd-epoll,nginx,floor"
LOADS="wrk,ab,probe,probe-churn,idle"
BUILDDIR=$ROOT/build
RINGD=
PLUGIN_DIR=
SRV_CPU=0
LG_CPU=1
OUTROOT=$BENCH/out
QUICK=0

usage() {
	cat <<EOF
usage: bench/http.sh [options]
  --pairs N         rounds per load; every server runs once per round (default $PAIRS)
  --loads LIST      comma-separated, from wrk, ab, probe, probe-churn, idle
                    (default $LOADS)
  --servers LIST    comma-separated, from ringd-uring, ringd-epoll, nginx,
                    nginx-deferred (nginx with `listen ... deferred`),
                    floor (default $SERVERS)
  --conns N         concurrent connections of wrk, ab and ringd-probe (default $CONNS)
  --duration S      measured seconds of wrk and ringd-probe runs, whole (default $DURATION)
  --warmup S        warm-up seconds before each wrk and ringd-probe run (default $WARMUP)
  --ab-requests N   requests per ab run (default $AB_REQUESTS)
  --idle-conns N    idle keep-alive connections of the memory probe (default $IDLE_CONNS)
  --path PATH       the URL path every load requests (default $URLPATH)
  --builddir DIR    meson build directory (default build)
  --ringd PATH      ringd binary (default BUILDDIR/daemon/ringd)
  --plugin-dir DIR  ringd.plugin_dir (default: what the binary picks; a
                    build tree's ringd uses that tree's plugins)
  --server-cpu C    CPU for the server (default $SRV_CPU)
  --load-cpu C      CPU for the load (default $LG_CPU)
  --out DIR         where run directories go (default bench/out)
  --quick           smoke test: 1 round, 2 s runs, 2000 ab requests,
                    2000 idle connections
EOF
}

die() {
	echo "http.sh: $*" >&2
	exit 1
}

while (($#)); do
	case $1 in
	--pairs) PAIRS=$2; shift 2 ;;
	--loads) LOADS=$2; shift 2 ;;
	--servers) SERVERS=$2; shift 2 ;;
	--conns) CONNS=$2; shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--warmup) WARMUP=$2; shift 2 ;;
	--ab-requests) AB_REQUESTS=$2; shift 2 ;;
	--idle-conns) IDLE_CONNS=$2; shift 2 ;;
	--path) URLPATH=$2; shift 2 ;;
	--builddir) BUILDDIR=$(realpath -m "$2"); shift 2 ;;
	--ringd) RINGD=$(realpath -m "$2"); shift 2 ;;
	--plugin-dir) PLUGIN_DIR=$(realpath -m "$2"); shift 2 ;;
	--server-cpu) SRV_CPU=$2; shift 2 ;;
	--load-cpu) LG_CPU=$2; shift 2 ;;
	--out) OUTROOT=$(realpath -m "$2"); shift 2 ;;
	--quick) QUICK=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown option: $1" ;;
	esac
done
if ((QUICK)); then
	PAIRS=1
	DURATION=2
	WARMUP=0.5
	AB_REQUESTS=2000
	IDLE_CONNS=2000
fi
posint() { [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1: expected a positive integer, got $2"; }
posint --pairs "$PAIRS"
posint --conns "$CONNS"
posint --ab-requests "$AB_REQUESTS"
posint --idle-conns "$IDLE_CONNS"
# wrk takes whole seconds only.
posint --duration "$DURATION"
[[ $WARMUP =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--warmup: expected seconds, got $WARMUP"
[[ $URLPATH =~ ^/[^[:space:]]*$ ]] || die "--path: expected /..., got $URLPATH"
RINGD=${RINGD:-$BUILDDIR/daemon/ringd}
IFS=, read -r -a SERVER_LIST <<<"$SERVERS"
IFS=, read -r -a LOAD_LIST <<<"$LOADS"
((${#SERVER_LIST[@]})) || die "--servers: empty list"
((${#LOAD_LIST[@]})) || die "--loads: empty list"

want() {
	local s
	for s in "${SERVER_LIST[@]}"; do
		[[ $s == "$1" ]] && return 0
	done
	return 1
}
want_load() {
	local l
	for l in "${LOAD_LIST[@]}"; do
		[[ $l == "$1" ]] && return 0
	done
	return 1
}
for s in "${SERVER_LIST[@]}"; do
	case $s in
	ringd-uring | ringd-epoll | nginx | nginx-deferred | floor) ;;
	*) die "--servers: unknown server '$s' (known: ringd-uring ringd-epoll nginx nginx-deferred floor)" ;;
	esac
done
for l in "${LOAD_LIST[@]}"; do
	case $l in
	wrk | ab | probe | probe-churn | idle) ;;
	*) die "--loads: unknown load '$l' (known: wrk ab probe probe-churn idle)" ;;
	esac
done

# Tools: install what is missing with apt-get, as run.sh does. Debian's
# nginx-light package also enables its own nginx on port 80; this script
# never touches that one (it signals only the PIDs it started).
export PATH=$PATH:/usr/sbin:/sbin
missing=()
command -v taskset >/dev/null || missing+=(util-linux)
command -v python3 >/dev/null || missing+=(python3)
if want nginx || want nginx-deferred; then command -v nginx >/dev/null || missing+=(nginx-light); fi
if want_load wrk; then command -v wrk >/dev/null || missing+=(wrk); fi
if want_load ab; then command -v ab >/dev/null || missing+=(apache2-utils); fi
command -v meson >/dev/null || missing+=(meson)
command -v ninja >/dev/null || missing+=(ninja-build)
command -v cc >/dev/null || missing+=(gcc)
if ((${#missing[@]})); then
	((EUID == 0)) || die "missing packages: ${missing[*]} (run as root or install them)"
	echo "http.sh: installing ${missing[*]}" >&2
	apt-get update -q >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi
PYTHON=$(python3 -c 'import sys; print(sys.executable)')

ncpu=$(nproc --all)
((SRV_CPU < ncpu && LG_CPU < ncpu && SRV_CPU != LG_CPU)) ||
	die "need two distinct CPUs (server $SRV_CPU, load $LG_CPU; this machine has $ncpu)"

if want ringd-uring || want ringd-epoll; then
	if [[ ! -x $RINGD ]]; then
		die "ringd binary not found at $RINGD
  build it first (ninja -C build), point --ringd at it, or leave ringd out:
  bench/http.sh --servers nginx,floor"
	fi
fi

# Every server gets room for the idle connections plus the loads; both
# sides of the idle probe raise their RLIMIT_NOFILE to it.
NOFILE=$((IDLE_CONNS + 1024))
if (($(ulimit -Hn) < NOFILE)); then
	ulimit -Hn "$NOFILE" 2>/dev/null ||
		die "RLIMIT_NOFILE hard limit $(ulimit -Hn) < $NOFILE and cannot be raised; lower --idle-conns"
fi
ulimit -Sn "$NOFILE"

OUT=$OUTROOT/http-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
build_tools

SPID=
IDLE_PID=
cleanup() {
	if [[ -n $IDLE_PID ]]; then
		kill "$IDLE_PID" 2>/dev/null || true
	fi
	if [[ -n $SPID ]]; then
		stop_server 10 /dev/null
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts server $1 on port $2 with its output in $3; sets SPID. The
# subshell raises the file limit, then execs taskset, which execs the
# server: SPID is the server itself.
start_server() {
	local name=$1 port=$2 log=$3 cfg
	case $name in
	ringd-uring | ringd-epoll)
		local backend=io_uring
		[[ $name == ringd-epoll ]] && backend=epoll
		cfg=${log%.server.log}.ini
		{
			printf '[ringd]\nworkers = 1\nlog_level = warning\nmax_connections = %s\n' "$NOFILE"
			[[ -n $PLUGIN_DIR ]] && printf 'plugin_dir = %s\n' "$PLUGIN_DIR"
			printf '[web]\nplugin = http\nlisten = tcp://127.0.0.1:%s\n' "$port"
		} >"$cfg"
		(exec taskset -c "$SRV_CPU" "$RINGD" -c "$cfg" -s ringd.backend=$backend) >"$log" 2>&1 &
		;;
	nginx | nginx-deferred)
		local prefix=${log%.server.log}.nginx deferred=
		# nginx's own name for TCP_DEFER_ACCEPT, which ringd's
		# defer_accept sets by default: the like-for-like peer.
		[[ $name == nginx-deferred ]] && deferred=deferred
		mkdir -p "$prefix"
		cfg=$prefix/nginx.conf
		sed -e "s|@PORT@|$port|" -e "s|@LISTEN_FLAGS@|$deferred|" -e "s|@PREFIX@|$prefix|g" -e "s|@CONNS@|$NOFILE|" \
			-e "s|@NOFILE@|$NOFILE|" "$BENCH/peers/nginx-http.conf" >"$cfg"
		(exec taskset -c "$SRV_CPU" nginx -p "$prefix" -c "$cfg" -e stderr) >"$log" 2>&1 &
		;;
	floor)
		(exec taskset -c "$SRV_CPU" "$FLOOR" "$port" "$CONNS" 64) >"$log" 2>&1 &
		;;
	esac
	SPID=$!
}

# utime + stime of the server, in clock ticks (all its threads).
cpu_ticks() {
	local s
	s=$(<"/proc/$1/stat") || return 1
	s=${s##*) }
	# shellcheck disable=SC2086 # split the fields on purpose
	set -- $s
	echo $((${12} + ${13}))
}
TICK_US=$((1000000 / $(getconf CLK_TCK)))

# The same CPU time to the nanosecond: the sum of every thread's
# sum_exec_runtime. An ab run of 20000 requests is a few hundred ticks, so
# this second figure shows what the 10 ms rounding of the first costs.
cpu_ns() {
	local f run total=0
	for f in /proc/"$1"/task/*/schedstat; do
		read -r run _ 2>/dev/null <"$f" || continue
		total=$((total + run))
	done
	echo "$total"
}

# VmRSS and Pss (smaps_rollup) of the server, in kB.
mem_kb() {
	local rss pss
	rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$1/status")
	pss=$(awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup" 2>/dev/null || echo NA)
	echo "$rss ${pss:-NA}"
}

# Busy and total jiffies of the server's and the load's CPUs, from
# /proc/stat: "busy0 total0 busy1 total1". Busy is everything but idle and
# iowait, whoever ran: set beside the server's and the load's own CPU time,
# it shows how much other work shared their CPUs during a run.
cpus_stat() {
	awk -v a="cpu$SRV_CPU" -v b="cpu$LG_CPU" '
		$1 == a || $1 == b {
			t = 0
			for (i = 2; i <= NF; i++) t += $i
			busy[$1] = t - $5 - $6
			tot[$1] = t
		}
		END { print busy[a], tot[a], busy[b], tot[b] }' /proc/stat
}
cpus_busy() { # cpus_busy "BEFORE" "AFTER": the RESULT words
	awk -v s0="$1" -v s1="$2" 'BEGIN {
		split(s0, x, " "); split(s1, y, " ")
		d0 = y[2] - x[2]; d1 = y[4] - x[4]
		printf "cpu0_busy=%.3f cpu1_busy=%.3f", d0 ? (y[1] - x[1]) / d0 : 0, d1 ? (y[3] - x[3]) / d1 : 0
	}'
}

field() { # field KEY LINE
	sed -n "s/.*\(^\|[[:space:]]\)$1=\([^[:space:]]*\).*/\2/p" <<<"$2"
}

# wrk and ab report their own request counts; the server's CPU time is read
# just before the measured run starts and just after it ends. Fills R_*.
ext_window_begin() {
	T0=$(cpu_ticks "$SPID")
	N0=$(cpu_ns "$SPID")
	W0=$EPOCHREALTIME
}
ext_window_end() {
	local t1 n1 w1
	t1=$(cpu_ticks "$SPID")
	n1=$(cpu_ns "$SPID")
	w1=$EPOCHREALTIME
	R_CPU_US=$(((t1 - T0) * TICK_US))
	R_CPU_NS=$((n1 - N0))
	R_WALL=$(awk -v a="$W0" -v b="$w1" 'BEGIN { printf "%.3f", b - a }')
}

WRK_WARM=$(awk -v w="$WARMUP" 'BEGIN { s = int(w); if (s < w) s++; if (s < 1) s = 1; print s }')

# One measured run of load $1 against the running server $4 on port $2;
# the logs go to $3.*. Prints one RESULT-style line of key=value words.
run_load() {
	local load=$1 port=$2 base=$3 server=$4 url="http://127.0.0.1:$2$URLPATH" line
	case $load in
	wrk)
		timeout 60 taskset -c "$LG_CPU" wrk -t1 -c"$CONNS" -d"${WRK_WARM}s" "$url" \
			>"$base.warmup.log" 2>&1 || return 1
		ext_window_begin
		timeout $((DURATION + 60)) taskset -c "$LG_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" \
			--latency "$url" >"$base.log" 2>&1 || return 1
		ext_window_end
		line=$("$PYTHON" "$BENCH/http_parse.py" wrk "$base.log") || return 1
		;;
	ab)
		timeout 60 taskset -c "$LG_CPU" ab -q -n $((AB_REQUESTS / 10)) -c "$CONNS" "$url" \
			>"$base.warmup.log" 2>&1 || return 1
		ext_window_begin
		timeout 300 taskset -c "$LG_CPU" ab -n "$AB_REQUESTS" -c "$CONNS" -e "$base.ab.csv" "$url" \
			>"$base.log" 2>&1 || return 1
		ext_window_end
		line=$("$PYTHON" "$BENCH/http_parse.py" ab "$base.log" "$base.ab.csv") || return 1
		;;
	probe | probe-churn)
		local target=$url extra=()
		[[ $load == probe-churn ]] && extra=(--no-keepalive)
		# The floor is an echo server: its load is 64-byte echo requests.
		[[ $server == floor ]] && target=echo://127.0.0.1:$port extra=(--size 64)
		probe_load "$target" "${extra[@]}" --name "$load" \
			>"$base.log" 2>&1 || return 1
		line=$(grep '^RESULT ' "$base.log") || return 1
		echo "$line"
		return 0
		;;
	idle)
		run_idle "$port" "$base" || return 1
		return 0
		;;
	esac
	local reqs
	reqs=$(field reqs "$line")
	((reqs > 0)) || return 1
	echo "$line cpu_us_per_req=$(awk -v c="$R_CPU_US" -v n="$reqs" 'BEGIN { printf "%.3f", c / n }')" \
		"cpu_ns_us_per_req=$(awk -v c="$R_CPU_NS" -v n="$reqs" 'BEGIN { printf "%.3f", c / 1e3 / n }')" \
		"srv_util=$(awk -v c="$R_CPU_US" -v w="$R_WALL" 'BEGIN { printf "%.3f", c / 1e6 / w }')"
}

# The memory probe: the client opens IDLE_CONNS keep-alive connections,
# one request each, and holds them; the server's VmRSS after minus before
# (both after a warm-up of 100 connections) divided by the count.
run_idle() {
	local port=$1 base=$2 m0 m1
	coproc IDLE {
		exec timeout 300 taskset -c "$LG_CPU" "$PYTHON" "$BENCH/idle_conns.py" \
			--port "$port" --conns "$IDLE_CONNS" --path "$URLPATH" 2>"$base.log"
	}
	local in=${IDLE[0]} out=${IDLE[1]}
	if ! idle_expect "$in" 60 warm; then idle_fail; return 1; fi
	sleep 0.5
	m0=$(mem_kb "$SPID")
	echo go >&"$out"
	if ! idle_expect "$in" 240 open; then idle_fail; return 1; fi
	echo "$REPLY" >>"$base.log"
	# Let the last responses' buffers go back before reading.
	sleep 1
	m1=$(mem_kb "$SPID")
	echo close >&"$out"
	if ! idle_expect "$in" 60 idle; then idle_fail; return 1; fi
	echo "$REPLY" >>"$base.log"
	wait "$IDLE_PID" || { IDLE_PID=; return 1; }
	IDLE_PID=
	local r0=${m0% *} p0=${m0#* } r1=${m1% *} p1=${m1#* }
	echo "RESULT name=idle conns=$IDLE_CONNS rss0_kb=$r0 rss1_kb=$r1 pss0_kb=$p0 pss1_kb=$p1" \
		"mem_b_per_conn=$(awk -v a="$r0" -v b="$r1" -v n="$IDLE_CONNS" 'BEGIN { printf "%.1f", (b - a) * 1024 / n }')" \
		"pss_b_per_conn=$(awk -v a="$p0" -v b="$p1" -v n="$IDLE_CONNS" 'BEGIN { if (a == "NA" || b == "NA") print "NA"; else printf "%.1f", (b - a) * 1024 / n }')" \
		"errors=0" | tee -a "$base.log"
}
# Reads the client's next line (into REPLY) within $2 s; true if its first
# word is $3.
idle_expect() {
	read -r -t "$2" <&"$1" || return 1
	[[ ${REPLY%% *} == "$3" ]]
}
idle_fail() {
	if [[ -n $IDLE_PID ]]; then
		kill "$IDLE_PID" 2>/dev/null || true
		wait "$IDLE_PID" 2>/dev/null || true
	fi
	IDLE_PID=
}

{
	echo "date: $(date -Is)"
	echo "git: $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
	echo "kernel: $(uname -r)   cpus: $ncpu   loadavg: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "servers: ${SERVER_LIST[*]}   loads: ${LOAD_LIST[*]}   rounds: $PAIRS   path: $URLPATH"
	echo "conns: $CONNS   duration: ${DURATION}s + ${WARMUP}s warm-up (wrk: ${WRK_WARM}s)   ab: $AB_REQUESTS requests   idle: $IDLE_CONNS"
	echo "server cpu: $SRV_CPU   load cpu: $LG_CPU   RLIMIT_NOFILE: $NOFILE"
	echo "load: $PROBE --load ($(date -r "$PROBE" -Is))   floor: $FLOOR"
	if want ringd-uring || want ringd-epoll; then
		echo "ringd: $RINGD ($(date -r "$RINGD" -Is))${PLUGIN_DIR:+   plugin_dir: $PLUGIN_DIR}"
	fi
	if want nginx || want nginx-deferred; then echo "nginx: $(nginx -v 2>&1)"; fi
	if want_load wrk; then echo "wrk: $(wrk -v 2>&1 | head -n 1)"; fi
	if want_load ab; then echo "ab: $(ab -V 2>&1 | head -n 1)"; fi
} | tee "$OUT/env.txt" >&2

if awk '{ exit !($1 >= 1.0) }' /proc/loadavg; then
	echo "http.sh: warning: load average $(cut -d' ' -f1 /proc/loadavg): other work is running and will skew the figures" >&2
fi

# Which servers a load runs against: the floor is an echo server, so it
# appears once per round, beside ringd-probe's keep-alive HTTP load.
servers_for() {
	local s
	for s in "${SERVER_LIST[@]}"; do
		if [[ $s == floor ]]; then
			[[ $1 == probe ]] && echo "$s"
		else
			echo "$s"
		fi
	done
	return 0
}

est=0
for load in "${LOAD_LIST[@]}"; do
	n=$(servers_for "$load" | wc -l)
	case $load in
	wrk) per=$(awk -v d="$DURATION" -v w="$WRK_WARM" 'BEGIN { print d + w + 1.5 }') ;;
	probe | probe-churn) per=$(awk -v d="$DURATION" -v w="$WARMUP" 'BEGIN { print d + w + 1 }') ;;
	ab) per=$(awk -v n="$AB_REQUESTS" 'BEGIN { print n / 8000 + 1.5 }') ;;
	idle) per=$(awk -v n="$IDLE_CONNS" 'BEGIN { print n / 4000 + 4 }') ;;
	esac
	est=$(awk -v e="$est" -v n="$n" -v p="$PAIRS" -v s="$per" 'BEGIN { print e + n * p * s }')
done
echo "http.sh: about $(awk -v e="$est" 'BEGIN { printf "%.0f", e / 60 + 0.5 }') min; logs in $OUT" >&2

TSV=$OUT/results.tsv
COLS=(rps p50_us p99_us cpu_us_per_req errors reqs srv_util lg_util resp_bytes mem_b_per_conn
	pss_b_per_conn rss0_kb rss1_kb cpu_ns_us_per_req cpu0_busy cpu1_busy)
{
	printf 'load\tround\tserver\tstatus'
	printf '\t%s' "${COLS[@]}"
	printf '\n'
} >"$TSV"

for load in "${LOAD_LIST[@]}"; do
	mapfile -t order < <(servers_for "$load")
	k=${#order[@]}
	((k)) || continue
	mkdir -p "$OUT/$load"
	for ((round = 1; round <= PAIRS; round++)); do
		# Rotate the order each round so no server always runs first.
		for ((j = 0; j < k; j++)); do
			name=${order[$(((j + round - 1) % k))]}
			base=$OUT/$load/r$round-$name
			status=ok
			line=
			port=$(free_port)
			start_server "$name" "$port" "$base.server.log"
			ready=0
			wait_ready "$port" || ready=$?
			if ((ready == 0)); then
				st0=$(cpus_stat)
				line=$(run_load "$load" "$port" "$base" "$name") || status="load-failed"
				[[ -n $line ]] && line="$line $(cpus_busy "$st0" "$(cpus_stat)")"
			fi
			# ringd gets 5 s to drain and exit 0, nginx 1 s.
			if [[ $name == ringd-* ]]; then
				stop_server 50 "$base.server.log"
			else
				stop_server 10 "$base.server.log"
			fi
			if ((ready == 1)); then
				status=server-died
				echo "http.sh: $name exited with status $SRC before accepting connections on 127.0.0.1:$port" >>"$base.log"
			elif ((ready == 2)); then
				status=not-ready
				echo "http.sh: $name did not accept connections on 127.0.0.1:$port within 10 s" >>"$base.log"
			fi
			# ringd must exit 0 on SIGTERM; nginx dies of the signal.
			if [[ $name == ringd-* && $SRC != 0 && $status == ok ]]; then
				tail -n 3 "$base.server.log" >&2
				status="server-exit-$SRC"
			fi
			vals=()
			for key in "${COLS[@]}"; do
				v=$(field "$key" "$line")
				vals+=("${v:-}")
			done
			errs=${vals[4]:-0}
			if [[ $status == ok && -n $line && $errs != 0 && $errs != NA ]]; then
				status=errors
			fi
			if [[ -z $line ]]; then
				[[ $status == ok ]] && status=no-result
			fi
			{
				printf '%s\t%s\t%s\t%s' "$load" "$round" "$name" "$status"
				printf '\t%s' "${vals[@]}"
				printf '\n'
			} >>"$TSV"
			if [[ $status != ok ]]; then
				echo "  [$load, round $round/$PAIRS] $name: FAILED ($status), see $base.log" >&2
				tail -n 3 "$base.log" "$base.server.log" 2>/dev/null | sed 's/^/    /' >&2
			elif [[ $load == idle ]]; then
				printf '  [%s, round %d/%d] %-12s %8s B/conn  (VmRSS %s -> %s kB, Pss %s B/conn)\n' \
					"$load" "$round" "$PAIRS" "$name" "${vals[9]}" "${vals[11]}" "${vals[12]}" \
					"${vals[10]}" >&2
			else
				printf '  [%s, round %d/%d] %-12s cpu %8s us/req  %10s req/s  p99 %9s us  srv %s\n' \
					"$load" "$round" "$PAIRS" "$name" "${vals[3]}" "${vals[0]}" "${vals[2]}" \
					"${vals[6]}" >&2
			fi
		done
	done
done

"$PYTHON" "$BENCH/http_summary.py" "$TSV" "${SERVER_LIST[@]}" | tee "$OUT/summary.md"
ln -sfn "$(basename "$OUT")" "$OUTROOT/http-latest"
echo "http.sh: raw logs and summary.md in $OUT" >&2

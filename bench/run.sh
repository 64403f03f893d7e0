#!/usr/bin/env bash
# bench/run.sh: compares echo servers under ringd-probe --load. For each
# payload size it runs interleaved rounds (every server once per round, a
# fresh process per run, server on one CPU, the load on the other), then prints
# medians and per-round ratios as markdown. See bench/README.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
BENCH=$ROOT/bench

PAIRS=7
SIZES="64 4096 65536"
CONNS=50
DURATION=8
WARMUP=1.5
SERVERS="ringd-uring,ringd-epoll,xinetd,asyncio,floor"
BUILDDIR=$ROOT/build
RINGD=
SRV_CPU=0
LG_CPU=1
OUTROOT=$BENCH/out
QUICK=0

usage() {
	cat <<EOF
usage: bench/run.sh [options]
  --pairs N         rounds per size; every server runs once per round (default $PAIRS)
  --sizes "A B"     payload sizes in bytes (default "$SIZES")
  --conns N         connections (default $CONNS)
  --duration S      measured seconds per run (default $DURATION)
  --warmup S        warm-up seconds per run, excluded (default $WARMUP)
  --servers LIST    comma-separated, from ringd-uring, ringd-epoll, xinetd,
                    asyncio, floor (default $SERVERS)
  --builddir DIR    meson build directory (default build)
  --ringd PATH      ringd binary (default BUILDDIR/daemon/ringd)
  --server-cpu C    CPU for the server (default $SRV_CPU)
  --load-cpu C      CPU for the load, ringd-probe (default $LG_CPU)
  --out DIR         where run directories go (default bench/out)
  --quick           smoke test: 1 round, 2 s runs
EOF
}

die() {
	echo "run.sh: $*" >&2
	exit 1
}

while (($#)); do
	case $1 in
	--pairs) PAIRS=$2; shift 2 ;;
	--sizes) SIZES=$2; shift 2 ;;
	--conns) CONNS=$2; shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--warmup) WARMUP=$2; shift 2 ;;
	--servers) SERVERS=$2; shift 2 ;;
	--builddir) BUILDDIR=$(realpath -m "$2"); shift 2 ;;
	--ringd) RINGD=$(realpath -m "$2"); shift 2 ;;
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
fi
[[ $PAIRS =~ ^[1-9][0-9]*$ ]] || die "--pairs: expected a positive integer, got $PAIRS"
RINGD=${RINGD:-$BUILDDIR/daemon/ringd}
IFS=, read -r -a SERVER_LIST <<<"$SERVERS"
((${#SERVER_LIST[@]})) || die "--servers: empty list"

want() {
	local s
	for s in "${SERVER_LIST[@]}"; do
		[[ $s == "$1" ]] && return 0
	done
	return 1
}

for s in "${SERVER_LIST[@]}"; do
	case $s in
	ringd-uring | ringd-epoll | xinetd | asyncio | floor) ;;
	*) die "--servers: unknown server '$s' (known: ringd-uring ringd-epoll xinetd asyncio floor)" ;;
	esac
done

# Tools: install what is missing, as the kit promises to run on a bare
# Debian 12 machine.
export PATH=$PATH:/usr/sbin:/sbin
missing=()
command -v taskset >/dev/null || missing+=(util-linux)
command -v python3 >/dev/null || missing+=(python3)
if want xinetd; then command -v xinetd >/dev/null || missing+=(xinetd); fi
command -v meson >/dev/null || missing+=(meson)
command -v ninja >/dev/null || missing+=(ninja-build)
command -v cc >/dev/null || missing+=(gcc)
if ((${#missing[@]})); then
	((EUID == 0)) || die "missing packages: ${missing[*]} (run as root or install them)"
	echo "run.sh: installing ${missing[*]}" >&2
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
  bench/run.sh --servers xinetd,asyncio,floor"
	fi
fi

# ringd-probe and the floor come from the meson build.
OUT=$OUTROOT/$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
build_tools

SPID=
cleanup() {
	if [[ -n $SPID ]]; then
		stop_server 10 /dev/null
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts server $1 on port $2 with its output in $3; sets SPID.
start_server() {
	local name=$1 port=$2 log=$3 cfg
	case $name in
	ringd-uring | ringd-epoll)
		local backend=io_uring
		[[ $name == ringd-epoll ]] && backend=epoll
		cfg=${log%.log}.ini
		printf '[ringd]\nworkers = 1\nlog_level = warning\n[echo]\nlisten = tcp://127.0.0.1:%s\n' \
			"$port" >"$cfg"
		taskset -c "$SRV_CPU" "$RINGD" -c "$cfg" -s ringd.backend=$backend >"$log" 2>&1 &
		;;
	xinetd)
		cfg=${log%.log}.conf
		sed "s/@PORT@/$port/" "$BENCH/peers/xinetd.conf" >"$cfg"
		taskset -c "$SRV_CPU" xinetd -dontfork -f "$cfg" >"$log" 2>&1 &
		;;
	asyncio)
		taskset -c "$SRV_CPU" "$PYTHON" "$BENCH/peers/asyncio_echo.py" --port "$port" >"$log" 2>&1 &
		;;
	floor)
		taskset -c "$SRV_CPU" "$FLOOR" "$port" "$CONNS" "$size" >"$log" 2>&1 &
		;;
	esac
	SPID=$!
}

field() { # field KEY LINE
	sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" <<<"$2"
}

{
	echo "date: $(date -Is)"
	echo "git: $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
	echo "kernel: $(uname -r)   cpus: $ncpu   loadavg: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "servers: ${SERVER_LIST[*]}   sizes: $SIZES   conns: $CONNS   rounds: $PAIRS"
	echo "duration: ${DURATION}s + ${WARMUP}s warm-up   server cpu: $SRV_CPU   load cpu: $LG_CPU"
	echo "load: $PROBE --load ($(date -r "$PROBE" -Is))   floor: $FLOOR"
	if want ringd-uring || want ringd-epoll; then
		echo "ringd: $RINGD ($(date -r "$RINGD" -Is))"
	fi
} | tee "$OUT/env.txt" >&2

if awk '{ exit !($1 >= 1.0) }' /proc/loadavg; then
	echo "run.sh: warning: load average $(cut -d' ' -f1 /proc/loadavg): other work is running and will skew the figures" >&2
fi

nruns=$(($(wc -w <<<"$SIZES") * PAIRS * ${#SERVER_LIST[@]}))
echo "run.sh: $nruns runs, about $(awk -v n="$nruns" -v d="$DURATION" -v w="$WARMUP" \
	'BEGIN { printf "%.0f", n * (d + w + 0.5) / 60 }') min; logs in $OUT" >&2

TSV=$OUT/results.tsv
printf 'size\tround\tserver\tstatus\trps\tp50_us\tp99_us\tp999_us\tcpu_us_per_req\terrors\tsrv_util\tlg_util\n' >"$TSV"
k=${#SERVER_LIST[@]}
for size in $SIZES; do
	mkdir -p "$OUT/$size"
	for ((round = 1; round <= PAIRS; round++)); do
		# Rotate the order each round so no server always runs first.
		for ((j = 0; j < k; j++)); do
			name=${SERVER_LIST[$(((j + round - 1) % k))]}
			base=$OUT/$size/r$round-$name
			status=ok
			port=$(free_port)
			start_server "$name" "$port" "$base.server.log"
			ready=0
			wait_ready "$port" || ready=$?
			if ((ready == 0)); then
				probe_load "echo://127.0.0.1:$port" --size "$size" --name "$name" \
					>"$base.log" 2>&1 || status="load-exit-$?"
			fi
			# ringd gets 5 s to drain and exit 0; xinetd sometimes stops
			# reaping its children and ignores SIGTERM, so peers get 1 s.
			if [[ $name == ringd-* ]]; then
				stop_server 50 "$base.server.log"
			else
				stop_server 10 "$base.server.log"
			fi
			if ((ready == 1)); then
				status=server-died
				echo "run.sh: $name exited with status $SRC before accepting connections on 127.0.0.1:$port" >"$base.log"
			elif ((ready == 2)); then
				status=not-ready
				echo "run.sh: $name did not accept connections on 127.0.0.1:$port within 10 s" >"$base.log"
			fi
			# ringd must exit 0 on SIGTERM; the peers die of the signal.
			if [[ $name == ringd-* && $SRC != 0 && $status == ok ]]; then
				tail -n 3 "$base.server.log" >&2
				status="server-exit-$SRC"
			fi
			line=$(grep '^RESULT ' "$base.log" || true)
			if [[ -z $line ]]; then
				[[ $status == ok ]] && status=no-result
				printf '%s\t%s\t%s\t%s\t\t\t\t\t\t\t\t\n' "$size" "$round" "$name" "$status" >>"$TSV"
				echo "  [$size B, round $round/$PAIRS] $name: FAILED ($status), see $base.log" >&2
				tail -n 3 "$base.log" "$base.server.log" 2>/dev/null | sed 's/^/    /' >&2
				continue
			fi
			vals=()
			for key in rps p50_us p99_us p999_us cpu_us_per_req errors srv_util lg_util; do
				vals+=("$(field "$key" "$line")")
			done
			printf '%s\t%s\t%s\t%s' "$size" "$round" "$name" "$status" >>"$TSV"
			printf '\t%s' "${vals[@]}" >>"$TSV"
			printf '\n' >>"$TSV"
			printf '  [%s B, round %d/%d] %-12s cpu %9s us/req  %10s req/s  p99 %9s us  srv %s lg %s %s\n' \
				"$size" "$round" "$PAIRS" "$name" "${vals[4]}" "${vals[0]}" "${vals[2]}" \
				"${vals[6]}" "${vals[7]}" "$([[ $status == ok ]] || echo "[$status]")" >&2
		done
	done
done

"$PYTHON" "$BENCH/summarize.py" "$TSV" "${SERVER_LIST[@]}" | tee "$OUT/summary.md"
ln -sfn "$(basename "$OUT")" "$OUTROOT/latest"
echo "run.sh: raw logs and summary.md in $OUT" >&2

#!/usr/bin/env bash
# bench/listeners.sh: ringd's shared listening socket (reuseport = no) against
# one SO_REUSEPORT socket per worker (reuseport = yes), with workers = 2, on
# both engines, for persistent ping-pong and for connection churn, in two
# placements. Interleaved A/B pairs with a fresh server per run; per-thread
# CPU of the server shows how evenly the workers shared the load.
# See bench/README.md and bench/RESULTS.md (listener modes).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
BENCH=$ROOT/bench

PAIRS=7
CONNS=50
SIZE=64
WORKERS=2
DURATION=3
WARMUP=0.5
ENGINES="io_uring epoll"
WORKLOADS="persistent churn"
PLACEMENTS="pinned unpinned"
BUILDDIR=$ROOT/build
RINGD=
OUTROOT=$BENCH/out
QUIET_S=20
QUIET_MAX_S=1800

usage() {
	cat <<EOF
usage: bench/listeners.sh [options]
  --pairs N          A/B pairs per cell, order alternating (default $PAIRS)
  --conns N          connections, or parallel churn clients (default $CONNS)
  --size S           payload bytes (default $SIZE)
  --workers N        ringd workers (default $WORKERS)
  --duration S       measured seconds per run (default $DURATION)
  --warmup S         warm-up seconds per run (default $WARMUP)
  --engines "A B"    from io_uring, epoll (default "$ENGINES")
  --workloads "A B"  from persistent, churn (default "$WORKLOADS")
  --placements "A B" pinned: server on CPU 0, ringd-probe on CPU 1;
                     unpinned: neither pinned (default "$PLACEMENTS")
  --builddir DIR     meson build directory (default build)
  --ringd PATH       ringd binary (default BUILDDIR/daemon/ringd)
  --out DIR          where run directories go (default bench/out)
  --quiet-max S      longest wait for a quiet machine per series (default $QUIET_MAX_S)
  --quick            smoke test: 1 pair, 1 s runs, no quiet wait
EOF
}

die() {
	echo "listeners.sh: $*" >&2
	exit 1
}

while (($#)); do
	case $1 in
	--pairs) PAIRS=$2; shift 2 ;;
	--conns) CONNS=$2; shift 2 ;;
	--size) SIZE=$2; shift 2 ;;
	--workers) WORKERS=$2; shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--warmup) WARMUP=$2; shift 2 ;;
	--engines) ENGINES=$2; shift 2 ;;
	--workloads) WORKLOADS=$2; shift 2 ;;
	--placements) PLACEMENTS=$2; shift 2 ;;
	--builddir) BUILDDIR=$(realpath -m "$2"); shift 2 ;;
	--ringd) RINGD=$(realpath -m "$2"); shift 2 ;;
	--out) OUTROOT=$(realpath -m "$2"); shift 2 ;;
	--quiet-max) QUIET_MAX_S=$2; shift 2 ;;
	--quick) PAIRS=1; DURATION=1; WARMUP=0.2; QUIET_MAX_S=0; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown option: $1" ;;
	esac
done
[[ $PAIRS =~ ^[1-9][0-9]*$ ]] || die "--pairs: expected a positive integer, got $PAIRS"
RINGD=${RINGD:-$BUILDDIR/daemon/ringd}
[[ -x $RINGD ]] || die "ringd binary not found at $RINGD (ninja -C build, or --ringd)"
(($(nproc --all) >= 2)) || die "need two CPUs for the pinned placement"
for e in $ENGINES; do [[ $e == io_uring || $e == epoll ]] || die "unknown engine $e"; done
for w in $WORKLOADS; do [[ $w == persistent || $w == churn ]] || die "unknown workload $w"; done
for p in $PLACEMENTS; do [[ $p == pinned || $p == unpinned ]] || die "unknown placement $p"; done

# Another benchmark on this machine would skew every figure. Before each
# series, wait until no foreign run.sh, http.sh, ringd-probe or ringd has
# been seen for QUIET_S seconds (polling every 10 s), at most QUIET_MAX_S.
# Our own server and load are never running at that point, but are
# excluded anyway.
is_ours() { # is_ours PID: true for this script and its descendants
	local p=$1 i
	for ((i = 0; i < 32 && p > 1; i++)); do
		[[ $p == "$$" ]] && return 0
		# The parent follows the state letter, after the ")" of the name.
		p=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $2 }') || return 1
		[[ -n $p ]] || return 1
	done
	return 1
}

foreign_busy() {
	local pid
	for pid in $(pgrep -f '(^|[/ ])(run\.sh|http\.sh|ringd-probe|ringd)( |$)' || true); do
		is_ours "$pid" || echo "$pid"
	done
}

wait_quiet() {
	local waited=0 quiet_since=0 busy
	[[ $QUIET_MAX_S == 0 ]] && return 0
	while :; do
		busy=$(foreign_busy | tr '\n' ' ')
		if [[ -n $busy ]]; then
			quiet_since=$waited
			echo "listeners.sh: waiting for a quiet machine; busy: $busy" >&2
		elif ((waited - quiet_since >= QUIET_S)); then
			return 0
		fi
		((waited < QUIET_MAX_S)) || die "machine not quiet after $QUIET_MAX_S s; giving up"
		sleep 10
		waited=$((waited + 10))
	done
}

# ringd-probe comes from the meson build (only that target, not ringd);
# built after the first quiet wait so that a running benchmark keeps its
# binary.
PROBE=$BUILDDIR/probe/ringd-probe
OUT=$OUTROOT/listeners-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"

SPID=
cleanup() {
	if [[ -n $SPID ]]; then
		stop_server 50 /dev/null
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Per-thread CPU ticks of the server: "tid:comm:utime+stime" per thread.
# The command name is read from comm, as stat's may contain spaces.
thread_ticks() {
	local t
	for t in /proc/"$SPID"/task/*; do
		[[ -r $t/stat ]] || continue
		printf '%s:%s:%s\n' "${t##*/}" "$(cat "$t/comm" 2>/dev/null)" \
			"$(sed 's/.*) //' "$t/stat" 2>/dev/null | awk '{ print $12 + $13 }')"
	done
}

# thread_split PID BEFORE AFTER: differences two thread_ticks snapshots
# of server PID into "w0 w1 other" ticks: the
# workers are the non-main threads named like the process (tid order =
# creation order); io_uring's own threads (iou-*) and the main thread
# count as "other".
thread_split() {
	awk -F: -v main="$1" '
		NR == FNR { before[$1] = $3; next }
		{
			d = $3 - before[$1]
			if ($1 != main && $2 !~ /^iou-/) { w[n++] = d; tid[n - 1] = $1 }
			else other += d
		}
		END {
			if (n != 2) { printf "NA NA NA\n"; exit }
			if (tid[0] + 0 > tid[1] + 0) { t = w[0]; w[0] = w[1]; w[1] = t }
			printf "%d %d %d\n", w[0], w[1], other
		}' "$2" "$3"
}

field() { # field KEY LINE
	sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" <<<"$2"
}

# One run: fresh ringd with reuseport $5, ringd-probe --load, per-thread
# CPU; one TSV row.
run_one() {
	local placement=$1 engine=$2 workload=$3 pair=$4 mode=$5
	local base=$OUT/$placement-$engine-$workload-p$pair-$mode port status=ok ready=0
	local srvpin=() lgpin=() lgargs line t w0 w1 other spid
	[[ $placement == pinned ]] && srvpin=(taskset -c 0) && lgpin=(taskset -c 1)
	port=$(free_port)
	printf '[ringd]\nworkers = %s\nlog_level = warning\nreuseport = %s\n[echo]\nlisten = tcp://127.0.0.1:%s\n' \
		"$WORKERS" "$([[ $mode == reuseport ]] && echo yes || echo no)" "$port" >"$base.ini"
	"${srvpin[@]}" "$RINGD" -c "$base.ini" -s ringd.backend="$engine" >"$base.server.log" 2>&1 &
	SPID=$!
	spid=$SPID
	wait_ready "$port" || ready=$?
	if ((ready == 0)); then
		lgargs=(--load --server-pid "$SPID" -c "$CONNS" --size "$SIZE"
			-d "$DURATION" --warmup "$WARMUP" --name "ringd-$engine-$mode")
		[[ $workload == churn ]] && lgargs+=(--no-keepalive)
		thread_ticks >"$base.ticks0"
		"${lgpin[@]}" "$PROBE" "${lgargs[@]}" "echo://127.0.0.1:$port" >"$base.log" 2>&1 ||
			status="load-exit-$?"
		thread_ticks >"$base.ticks1"
	else
		status=$([[ $ready == 1 ]] && echo server-died || echo not-ready)
	fi
	stop_server 50 "$base.server.log"
	[[ $SRC == 0 || $status != ok ]] || status="server-exit-$SRC"
	line=$(grep '^RESULT ' "$base.log" 2>/dev/null || true)
	[[ -n $line || $status != ok ]] || status=no-result
	read -r w0 w1 other < <([[ -f $base.ticks1 ]] && thread_split "$spid" "$base.ticks0" "$base.ticks1" ||
		echo NA NA NA)
	printf '%s\t%s\t%s\t%s\t%s\t%s' "$placement" "$engine" "$workload" "$pair" "$mode" "$status" >>"$TSV"
	for t in rps p50_us p99_us p999_us cpu_us_per_req errors srv_util lg_util; do
		printf '\t%s' "$(field "$t" "$line")" >>"$TSV"
	done
	printf '\t%s\t%s\t%s\t%s\t%s\n' "$w0" "$w1" "$other" \
		"$(grep -c . "$base.server.log" || true)" "$(cut -d' ' -f1 /proc/loadavg)" >>"$TSV"
	printf '  %-8s %-8s %-10s pair %d %-9s cpu %7s us/req %9s req/s p99 %8s us workers %s/%s ticks %s\n' \
		"$placement" "$engine" "$workload" "$pair" "$mode" "$(field cpu_us_per_req "$line")" \
		"$(field rps "$line")" "$(field p99_us "$line")" "$w0" "$w1" \
		"$([[ $status == ok ]] || echo "[$status]")" >&2
}

TSV=$OUT/results.tsv
printf 'placement\tengine\tworkload\tpair\tmode\tstatus\trps\tp50_us\tp99_us\tp999_us\tcpu_us_per_req\terrors\tsrv_util\tlg_util\tw0_ticks\tw1_ticks\tother_ticks\tlog_lines\tloadavg\n' >"$TSV"
built=0
RINGD_SHA=
for placement in $PLACEMENTS; do
	for engine in $ENGINES; do
		for workload in $WORKLOADS; do
			wait_quiet
			if ((!built)); then
				ninja -C "$BUILDDIR" probe/ringd-probe >"$OUT/build.log" 2>&1 ||
					die "cannot build ringd-probe (see $OUT/build.log)"
				RINGD_SHA=$(sha256sum <"$RINGD" | cut -c1-16)
				{
					echo "date: $(date -Is)   kernel: $(uname -r)   cpus: $(nproc --all)"
					echo "git: $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
					echo "ringd: $RINGD ($(date -r "$RINGD" -Is), sha256 $RINGD_SHA)"
					echo "pairs: $PAIRS  conns: $CONNS  size: $SIZE  workers: $WORKERS  run: ${WARMUP}s + ${DURATION}s"
				} | tee "$OUT/env.txt" >&2
				built=1
			fi
			echo "listeners.sh: $placement / $engine / $workload, loadavg $(cut -d' ' -f1 /proc/loadavg)" >&2
			for ((pair = 1; pair <= PAIRS; pair++)); do
				# Alternate which mode runs first so neither always
				# follows the other.
				if ((pair % 2)); then order="shared reuseport"; else order="reuseport shared"; fi
				for mode in $order; do
					run_one "$placement" "$engine" "$workload" "$pair" "$mode"
				done
			done
		done
	done
done

# Someone may rebuild ringd while this runs; the comparison would then
# straddle two binaries.
if [[ -n $RINGD_SHA && $(sha256sum <"$RINGD" | cut -c1-16) != "$RINGD_SHA" ]]; then
	echo "listeners.sh: WARNING: $RINGD changed during the measurement" | tee -a "$OUT/env.txt" >&2
fi
python3 "$BENCH/listeners_summary.py" "$TSV" | tee "$OUT/summary.md"
ln -sfn "$(basename "$OUT")" "$OUTROOT/listeners-latest"
echo "listeners.sh: raw logs and summary.md in $OUT" >&2

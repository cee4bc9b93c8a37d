#!/usr/bin/env bash
# Side-by-side comparison of muxloop with what a user would pick instead,
# measured in one run on this machine, alternating A/B, medians of ROUNDS.
#
#   scripts/compare.sh                 # everything (~15 min on 2 cores)
#   scripts/compare.sh dispatch echo   # some sections: dispatch echo http memory udp
#   ROUNDS=5 ECHO_SECS=5 HTTP_SECS=10 UDP_SECS=5 scripts/compare.sh
#
# Peers (../shared/peers, or PEERS=dir): libevent_ring (bench.c method),
# raw_epoll_echo, libevent_echo, pingpong_client (independent load tool),
# nginx (nginx-hello.conf), raw_udp_echo (recvmmsg/sendmmsg). Needs gcc, libevent-dev, nginx-light, wrk; as
# root with apt-get it installs what is missing. Everything runs on loopback.
# Writes the table to stdout and to $WORK/results.md, and the dispatch chart
# to docs/dispatch.svg.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/peers}
WORK=${WORK:-/tmp/muxloop-compare}
ROUNDS=${ROUNDS:-3}
ECHO_SECS=${ECHO_SECS:-5}
HTTP_SECS=${HTTP_SECS:-10}
UDP_SECS=${UDP_SECS:-5}
SECTIONS=${*:-dispatch echo http memory udp}
BIN=$WORK/bin
EX=$ROOT/target/release/examples
mkdir -p "$BIN" "$WORK/logs"
RESULTS=$WORK/results.md
: > "$RESULTS"

log() { printf '\n### %s\n' "$*" >&2; }
row() { printf '%s\n' "$*" | tee -a "$RESULTS"; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b == 0) print "-"; else printf "%.2f", a/b }'; }

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ -f /tmp/nginx-hello/nginx.pid ]; then nginx -p /tmp/nginx-hello -c "$WORK/nginx-hello.conf" -s quit 2>/dev/null || true; fi
}
trap cleanup EXIT

need_packages() {
    local missing=()
    command -v gcc >/dev/null || missing+=(gcc)
    [ -f /usr/include/event2/event.h ] || missing+=(libevent-dev)
    command -v nginx >/dev/null || missing+=(nginx-light)
    command -v wrk >/dev/null || missing+=(wrk)
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            log "installing ${missing[*]}"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
        else
            echo "missing: ${missing[*]} (install them, or run as root with apt-get)" >&2
            exit 1
        fi
    fi
}

build() {
    log "building peers and muxloop (release)"
    gcc -O2 -o "$BIN/libevent_ring" "$PEERS/libevent_ring.c" -levent_core
    gcc -O2 -o "$BIN/raw_epoll_echo" "$PEERS/raw_epoll_echo.c"
    gcc -O2 -o "$BIN/libevent_echo" "$PEERS/libevent_echo.c" -levent_core
    gcc -O2 -o "$BIN/pingpong_client" "$PEERS/pingpong_client.c"
    gcc -O2 -o "$BIN/raw_udp_echo" "$PEERS/raw_udp_echo.c"
    (cd "$ROOT" && cargo build --release --examples -q)
}

wait_port() { # port
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "nothing listens on port $1" >&2
    exit 1
}

LAST_PID=
start() { # port command... ; sets LAST_PID
    local port=$1
    shift
    "$@" >"$WORK/logs/$port.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
    wait_port "$port"
}

# --- 1. dispatch: libevent_ring vs the backends example, same N/A/W -------------
dispatch() {
    log "dispatch: bench.c ring, a=1 w=100, 25 runs per round, $ROUNDS rounds"
    row "| dispatch (us per run, a=1 w=100) | N | muxloop | libevent | muxloop/libevent |"
    row "|---|---|---|---|---|"
    local csv=$WORK/dispatch.csv
    echo "backend,n,muxloop_us,libevent_us" > "$csv"
    for method in epoll poll select; do
        for n in 100 1000 5000 9000; do
            local mux=() lev=()
            for _ in $(seq "$ROUNDS"); do
                mux+=("$("$EX/backends" --csv --only "$method" --sizes "$n" --runs 25 | tail -1 | cut -d, -f6)")
                local out
                if out=$("$BIN/libevent_ring" -n "$n" -a 1 -w 100 -r 25 -m "$method" 2>/dev/null); then
                    lev+=("$(echo "$out" | sed 's/.*us=//' | median)")
                else
                    lev+=(nan)
                fi
            done
            local m l
            m=$(printf '%s\n' "${mux[@]}" | median)
            l=$(printf '%s\n' "${lev[@]}" | { grep -v nan || true; } | median)
            [ "$l" = nan ] && l="aborts"
            row "| $method | $n | $m | $l | $(ratio "$m" "$l") |"
            echo "$method,$n,$m,$l" >> "$csv"
        done
    done
    python3 - "$csv" "$ROOT/docs/dispatch.svg" <<'PY'
import csv, math, sys
rows = list(csv.DictReader(open(sys.argv[1])))
W, H, L, B, T, R = 640, 400, 70, 50, 40, 150
ns = sorted({int(r["n"]) for r in rows})
vals = [float(r["muxloop_us"]) for r in rows]
lo, hi = math.log10(min(vals) / 1.5), math.log10(max(vals) * 1.5)
x = lambda n: L + (math.log10(n) - math.log10(ns[0])) / (math.log10(ns[-1]) - math.log10(ns[0])) * (W - L - R)
y = lambda v: H - B - (math.log10(v) - lo) / (hi - lo) * (H - B - T)
colors = {"select": "#d62728", "poll": "#ff7f0e", "epoll": "#2ca02c"}
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{W/2}" y="22" text-anchor="middle" font-size="14">muxloop dispatch: time per ring run vs registered fds (log-log)</text>',
       f'<line x1="{L}" y1="{H-B}" x2="{W-R}" y2="{H-B}" stroke="black"/><line x1="{L}" y1="{T}" x2="{L}" y2="{H-B}" stroke="black"/>']
for n in ns:
    out.append(f'<text x="{x(n):.1f}" y="{H-B+18}" text-anchor="middle">{n}</text>')
for e in range(math.ceil(lo), math.floor(hi) + 1):
    v = 10 ** e
    out.append(f'<line x1="{L}" y1="{y(v):.1f}" x2="{W-R}" y2="{y(v):.1f}" stroke="#ddd"/><text x="{L-6}" y="{y(v)+4:.1f}" text-anchor="end">{v:g} us</text>')
out.append(f'<text x="{(L+W-R)/2}" y="{H-12}" text-anchor="middle">N socket pairs registered (1 active)</text>')
for i, (name, color) in enumerate(colors.items()):
    pts = [(int(r["n"]), float(r["muxloop_us"])) for r in rows if r["backend"] == name]
    if not pts:
        continue
    out.append('<polyline fill="none" stroke-width="2.5" stroke="%s" points="%s"/>' % (color, " ".join(f"{x(n):.1f},{y(v):.1f}" for n, v in pts)))
    out += [f'<circle cx="{x(n):.1f}" cy="{y(v):.1f}" r="3.5" fill="{color}"/>' for n, v in pts]
    out.append(f'<rect x="{W-R+20}" y="{T+10+i*22}" width="14" height="4" fill="{color}"/><text x="{W-R+40}" y="{T+16+i*22}">{name}</text>')
out.append("</svg>")
open(sys.argv[2], "w").write("\n".join(out) + "\n")
PY
    log "wrote docs/dispatch.svg"
}

# --- 2. echo throughput: pingpong_client against each server --------------------
echo_throughput() {
    log "echo: pingpong_client, 16 KiB blocks, ${ECHO_SECS}s per run, $ROUNDS rounds"
    declare -A port=([raw_epoll_echo]=9100 [libevent_echo]=9101 [muxloop_select]=9102 [muxloop_poll]=9103 [muxloop_epoll]=9104)
    start 9100 "$BIN/raw_epoll_echo" 127.0.0.1 9100
    start 9101 "$BIN/libevent_echo" 127.0.0.1 9101
    for d in select poll epoll; do
        start "${port[muxloop_$d]}" "$EX/echo" "127.0.0.1:${port[muxloop_$d]}" --dispatcher "$d"
    done
    row ""
    row "| echo MiB/s (16 KiB) | sessions | muxloop select | muxloop poll | muxloop epoll | raw_epoll_echo | libevent_echo | epoll/raw | epoll/libevent |"
    row "|---|---|---|---|---|---|---|---|---|"
    local servers=(raw_epoll_echo muxloop_epoll libevent_echo muxloop_poll muxloop_select)
    for sessions in 1 10 100 1000; do
        declare -A runs=()
        local failures=0
        for round in $(seq "$ROUNDS"); do
            # Alternate the order every round so drift does not favour one server.
            local order=("${servers[@]}")
            [ $((round % 2)) = 0 ] && order=($(printf '%s\n' "${servers[@]}" | tac))
            for s in "${order[@]}"; do
                local out
                out=$("$BIN/pingpong_client" 127.0.0.1 "${port[$s]}" "$sessions" 16384 "$ECHO_SECS")
                runs[$s]+="$(echo "$out" | sed 's/.*MiB\/s=\([0-9.]*\).*/\1/') "
                failures=$((failures + $(echo "$out" | sed 's/.*failed=\([0-9]*\).*/\1/')))
            done
        done
        declare -A med=()
        for s in "${servers[@]}"; do med[$s]=$(printf '%s\n' ${runs[$s]} | median); done
        row "| | $sessions | ${med[muxloop_select]} | ${med[muxloop_poll]} | ${med[muxloop_epoll]} | ${med[raw_epoll_echo]} | ${med[libevent_echo]} | $(ratio "${med[muxloop_epoll]}" "${med[raw_epoll_echo]}") | $(ratio "${med[muxloop_epoll]}" "${med[libevent_echo]}") |"
        [ "$failures" = 0 ] || row "| | $sessions | $failures failed sessions in total | | | | | | |"
        unset runs med
    done
}

# --- 3. HTTP: wrk against nginx and http_server ------------------------------------
wrk_rps() { # url -> "req/s errors non2xx"
    local out
    out=$(wrk -t2 -c100 -d"${HTTP_SECS}s" "$1")
    local rps errors non2xx
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    errors=$(echo "$out" | awk '/Socket errors/ {s=0; for (i=1;i<=NF;i++) if ($i ~ /^[0-9]+,?$/) s+=$i; print s}')
    non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
    echo "$rps ${errors:-0} ${non2xx:-0}"
}

http() {
    log "http: wrk -t2 -c100 -d${HTTP_SECS}s /hello, $ROUNDS rounds"
    cp "$PEERS/nginx-hello.conf" "$WORK/nginx-hello.conf"
    mkdir -p /tmp/nginx-hello
    row ""
    row "| HTTP /hello req/s | workers/threads | muxloop select | muxloop poll | muxloop epoll | nginx | epoll/nginx | errors, non-2xx (muxloop) |"
    row "|---|---|---|---|---|---|---|---|"
    for workers in 1 2; do
        nginx -p /tmp/nginx-hello -c "$WORK/nginx-hello.conf" -g "worker_processes $workers;"
        wait_port 8081
        # --threads 0: one loop does everything; --threads 2: two sub-loops (plus the accepting loop).
        local threads=$([ "$workers" = 1 ] && echo 0 || echo 2)
        declare -A pids=() runs=()
        local bad=0 port=8082
        for d in select poll epoll; do
            start $port "$EX/http_server" "127.0.0.1:$port" --threads "$threads" --dispatcher "$d"
            pids[$d]=$LAST_PID
            port=$((port + 1))
        done
        for round in $(seq "$ROUNDS"); do
            local r
            r=$(wrk_rps http://127.0.0.1:8081/hello); runs[nginx]+="${r%% *} "
            port=8082
            for d in select poll epoll; do
                r=$(wrk_rps "http://127.0.0.1:$port/hello")
                runs[$d]+="${r%% *} "
                bad=$((bad + $(echo "$r" | awk '{print $2 + $3}')))
                port=$((port + 1))
            done
        done
        nginx -p /tmp/nginx-hello -c "$WORK/nginx-hello.conf" -s quit
        for d in select poll epoll; do kill "${pids[$d]}"; done
        sleep 0.5
        declare -A med=()
        for k in nginx select poll epoll; do med[$k]=$(printf '%s\n' ${runs[$k]} | median); done
        row "| | $workers | ${med[select]} | ${med[poll]} | ${med[epoll]} | ${med[nginx]} | $(ratio "${med[epoll]}" "${med[nginx]}") | $bad |"
        unset pids runs med
    done
}

# --- 4. memory: RSS of an echo server holding 10,000 idle connections ------------------
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# Opens COUNT connections to PORT and holds them until its stdin closes.
HOLD_PY='
import resource, socket, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 100), hard))
conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
print("connected", flush=True)
sys.stdin.read()
'

memory() {
    log "memory: RSS of an echo server before and after 10,000 idle connections"
    row ""
    row "| RSS per idle connection (10,000) | bytes |"
    row "|---|---|"
    local port=9200
    local servers=("muxloop_select:$EX/echo 127.0.0.1:9200 --dispatcher select"
                   "muxloop_poll:$EX/echo 127.0.0.1:9201 --dispatcher poll"
                   "muxloop_epoll:$EX/echo 127.0.0.1:9202 --dispatcher epoll"
                   "libevent_echo:$BIN/libevent_echo 127.0.0.1 9203"
                   "raw_epoll_echo:$BIN/raw_epoll_echo 127.0.0.1 9204")
    for entry in "${servers[@]}"; do
        local name=${entry%%:*} cmd=${entry#*:}
        local pid before after
        # shellcheck disable=SC2086
        start $port $cmd
        pid=$LAST_PID
        before=$(rss_kib "$pid")
        coproc HOLD { python3 -c "$HOLD_PY" "$port" 10000; }
        read -r _ <&"${HOLD[0]}"
        for _ in $(seq 200); do
            [ "$(ls /proc/$pid/fd | wc -l)" -ge 10000 ] && break
            sleep 0.05
        done
        sleep 0.5
        after=$(rss_kib "$pid")
        local hold_in=${HOLD[1]} hold_pid=$HOLD_PID
        exec {hold_in}>&-
        wait "$hold_pid" 2>/dev/null || true
        kill "$pid"
        row "| $name | $(( (after - before) * 1024 / 10000 )) |"
        port=$((port + 1))
    done
}

# --- 5. UDP: datagrams/s through udp_echo vs raw_udp_echo -------------------------
start_udp() { # port command... ; waits for the "listening on" line (no TCP port to probe)
    local port=$1
    shift
    "$@" >"$WORK/logs/udp-$port.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
    for _ in $(seq 100); do
        grep -q "listening on" "$WORK/logs/udp-$port.log" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "UDP server on port $port did not start" >&2
    exit 1
}

udp() {
    log "udp: udp_echo flood client (64 in flight, ${UDP_SECS}s), server on cpu 1, client on cpu 0, $ROUNDS rounds"
    start_udp 9300 taskset -c 1 "$BIN/raw_udp_echo" 127.0.0.1 9300
    local raw_pid=$LAST_PID
    start_udp 9301 taskset -c 1 "$EX/udp_echo" 127.0.0.1:9301 --dispatcher epoll
    local mux_pid=$LAST_PID
    declare -A port=([raw]=9300 [muxloop]=9301)
    row ""
    row "| UDP echo datagrams/s | size | muxloop epoll | raw_udp_echo (C) | muxloop/C | lost (all runs) |"
    row "|---|---|---|---|---|---|"
    for size in 64 1400; do
        declare -A runs=()
        local lost=0
        for round in $(seq "$ROUNDS"); do
            local order=(raw muxloop)
            [ $((round % 2)) = 0 ] && order=(muxloop raw)
            for s in "${order[@]}"; do
                local out
                out=$(taskset -c 0 "$EX/udp_echo" flood "127.0.0.1:${port[$s]}" --seconds "$UDP_SECS" --size "$size" --inflight 64)
                runs[$s]+="$(echo "$out" | sed 's/.*datagrams\/s=\([0-9.]*\).*/\1/') "
                lost=$((lost + $(echo "$out" | sed 's/.*lost=\([0-9]*\).*/\1/')))
            done
        done
        local m r
        m=$(printf '%s\n' ${runs[muxloop]} | median)
        r=$(printf '%s\n' ${runs[raw]} | median)
        row "| | $size | $m | $r | $(ratio "$m" "$r") | $lost |"
        unset runs
    done
    kill "$raw_pid" "$mux_pid" 2>/dev/null || true
}

need_packages
build
ulimit -n 20000
row "# muxloop vs peers — $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r), medians of $ROUNDS rounds"
row ""
for section in $SECTIONS; do
    case $section in
        dispatch) dispatch ;;
        echo) echo_throughput ;;
        http) http ;;
        memory) memory ;;
        udp) udp ;;
        *) echo "unknown section $section (dispatch echo http memory udp)" >&2; exit 2 ;;
    esac
done
log "results in $RESULTS"

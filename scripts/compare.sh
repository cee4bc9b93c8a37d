#!/usr/bin/env bash
# Side-by-side comparison of muxloop with what a user would pick instead,
# measured in one run on this machine, alternating A/B, medians of ROUNDS.
#
#   scripts/compare.sh                 # everything (~40 min on 2 cores)
#   scripts/compare.sh http kv         # some sections: dispatch echo http kv latency idle memory udp unix proxy edge files
#   SKIP_BUILD=1 ROUNDS=5 HTTP_SECS=5 scripts/compare.sh edge   # edge- vs level-triggered, binaries already built
#   HTTP_BASELINE=/tmp/old/http_server BACKENDS=epoll scripts/compare.sh http   # a row for another build (before a change), same rounds
#   ROUNDS=5 ECHO_SECS=5 HTTP_SECS=10 UDP_SECS=5 KV_N=100000 FILES_SECS=10 scripts/compare.sh
#
# Method (see README "Benchmarks"): the server runs on SERVER_CPU (1), the load
# generator on CLIENT_CPU (0), servers are alternated (order reversed every
# other round) and each figure is the median of ROUNDS runs. The headline is
# the server's CPU time per request, user and system apart, from the
# utime/stime deltas of /proc/PID/stat (children included, e.g. nginx's
# worker) divided by the requests served, beside pinned requests/s. The old
# unpinned HTTP table stays as a second, labelled table.
#
# Rust peers (peers/, its own workspace): tokio_echo and hyper_hello, built
# here with cargo. Latency uses oha (cargo install oha --locked) if it is on
# PATH or in ~/.cargo/bin, else h2load (apt nghttp2-client).
#
# Peers (../shared/peers, or PEERS=dir): libevent_ring (bench.c method),
# raw_epoll_echo, libevent_echo, pingpong_client (independent load tool),
# nginx (nginx-hello.conf), raw_udp_echo (recvmmsg/sendmmsg). Needs gcc, libevent-dev, nginx-light, wrk; as
# root with apt-get it installs what is missing (also redis-server, redis-tools). Everything runs on loopback.
# Writes the table to stdout and to $WORK/results.md, and the dispatch chart
# to docs/dispatch.svg.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/peers}
[ -d "$PEERS" ] || PEERS=/work/shared/peers   # from a git worktree under /work/wt
WORK=${WORK:-/tmp/muxloop-compare}
ROUNDS=${ROUNDS:-3}
ECHO_SECS=${ECHO_SECS:-5}
HTTP_SECS=${HTTP_SECS:-10}
UDP_SECS=${UDP_SECS:-5}
FILES_SECS=${FILES_SECS:-10}      # wrk -d for the files section
FILES_MIB=${FILES_MIB:-100}      # size of the file served in the files section
KV_N=${KV_N:-100000}            # redis-benchmark -n (per test; set+get = 2N requests)
ECHO_SESSIONS=${ECHO_SESSIONS:-1 10 100 1000}
IDLE_COUNTS=${IDLE_COUNTS:-1000 5000}
LAT_RATE=${LAT_RATE:-10000}      # fixed request rate for the latency section (req/s)
LAT_SECS=${LAT_SECS:-10}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
BACKENDS=${BACKENDS:-select poll epoll uring}
SECTIONS=${*:-dispatch echo http kv latency idle memory udp unix proxy edge files}
RUST_PEERS=$ROOT/peers/target/release
CLK_TCK=$(getconf CLK_TCK)
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
HOLDERS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${HOLDERS[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ -f /tmp/nginx-hello/nginx.pid ]; then nginx -p /tmp/nginx-hello -c "$WORK/nginx-hello.conf" -s quit 2>/dev/null || true; fi
    if [ -f /tmp/nginx-files/nginx.pid ]; then nginx -p /tmp/nginx-files -c "$WORK/nginx-files.conf" -s quit 2>/dev/null || true; fi
}
trap cleanup EXIT

need_packages() {
    local missing=()
    command -v gcc >/dev/null || missing+=(gcc)
    [ -f /usr/include/event2/event.h ] || missing+=(libevent-dev)
    command -v nginx >/dev/null || missing+=(nginx-light)
    command -v wrk >/dev/null || missing+=(wrk)
    command -v redis-server >/dev/null || missing+=(redis-server)
    command -v redis-benchmark >/dev/null || missing+=(redis-tools)
    command -v oha >/dev/null || [ -x "$HOME/.cargo/bin/oha" ] || command -v h2load >/dev/null || missing+=(nghttp2-client)
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
    # The Rust peers (tokio, hyper) are slow to build; only these sections use them.
    case " $SECTIONS " in
        *" echo "* | *" http "* | *" latency "* | *" idle "*)
            cargo build --release -q --manifest-path "$ROOT/peers/Cargo.toml" ;;
    esac
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

# try_start port command... : like start, but returns 1 (and logs why) when
# the server exits or never listens, e.g. a backend this build lacks.
try_start() {
    local port=$1
    shift
    "$@" >"$WORK/logs/$port.log" 2>&1 &
    LAST_PID=$!
    for _ in $(seq 100); do
        if ! kill -0 "$LAST_PID" 2>/dev/null; then
            echo "server on port $port did not start: $(tail -1 "$WORK/logs/$port.log")" >&2
            return 1
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then PIDS+=("$LAST_PID"); return 0; fi
        sleep 0.05
    done
    kill "$LAST_PID" 2>/dev/null || true
    echo "server on port $port never listened" >&2
    return 1
}

# An array, not a function: "$@" & must run taskset itself (which execs the
# server), so that $! is the server's pid and kill reaches it.
ON_SERVER=(taskset -c "$SERVER_CPU")
pinned_client() { taskset -c "$CLIENT_CPU" "$@"; }

# The process and its children (nginx master + worker): their CPU is summed.
family() { echo "$1"; ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' '; }

# cpu_ticks PID -> "utime stime" in clock ticks, summed over family(PID).
cpu_ticks() {
    local u=0 s=0 p t
    for p in $(family "$1"); do
        # Fields after "pid (comm) ": utime and stime are the 12th and 13th.
        t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12, $13}') || continue
        [ -n "$t" ] || continue
        u=$((u + ${t% *})); s=$((s + ${t#* }))
    done
    echo "$u $s"
}

# per_unit BEFORE AFTER UNITS -> "user_us sys_us" per unit (request, MiB, ...)
per_unit() {
    awk -v b="$1" -v a="$2" -v n="$3" -v tck="$CLK_TCK" 'BEGIN {
        split(b, x, " "); split(a, y, " ")
        if (n <= 0) { print "- -"; exit }
        printf "%.2f %.2f\n", (y[1]-x[1])*1e6/tck/n, (y[2]-x[2])*1e6/tck/n }'
}
sum2() { awk -v a="$1" -v b="$2" 'BEGIN { if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/) print "-"; else printf "%.2f", a+b }'; }
fds_of() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }

# hold PORT COUNT: a python process opens COUNT connections and holds them
# (idle) until it is killed; waits until they are all connected.
hold() {
    local port=$1 count=$2
    local fifo=$WORK/hold-$port
    rm -f "$fifo"; mkfifo "$fifo"
    python3 -c "$HOLD_IDLE_PY" "$port" "$count" >"$fifo" 2>"$WORK/logs/hold-$port.log" &
    HOLDERS+=("$!")
    local line
    line=$(timeout 120 head -1 "$fifo") || true
    echo "holder on $port: ${line:-no answer $(tail -1 "$WORK/logs/hold-$port.log")}" >&2
    rm -f "$fifo"
}
release_holders() {
    for pid in "${HOLDERS[@]}"; do kill "$pid" 2>/dev/null || true; done
    HOLDERS=()
    sleep 0.5
}

# order ROUND names... -> names, reversed on even rounds (A/B alternation)
order() {
    local round=$1; shift
    if [ $((round % 2)) = 0 ]; then printf '%s\n' "$@" | tac; else printf '%s\n' "$@"; fi
}

# Opens COUNT connections to PORT (2 s connect deadline each, failures
# counted) and holds them, idle, until killed.
HOLD_IDLE_PY='
import resource, socket, sys, time
port, count = int(sys.argv[1]), int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 100), hard))
conns, failed = [], 0
for _ in range(count):
    try:
        conns.append(socket.create_connection(("127.0.0.1", port), timeout=2))
    except OSError:
        failed += 1
print("connected %d failed %d" % (len(conns), failed), flush=True)
while True:
    time.sleep(3600)
'

nginx_start() { # workers ; pinned to SERVER_CPU unless "unpinned" is given second
    cp "$PEERS/nginx-hello.conf" "$WORK/nginx-hello.conf"
    mkdir -p /tmp/nginx-hello
    if [ "${2:-}" = unpinned ]; then
        nginx -p /tmp/nginx-hello -c "$WORK/nginx-hello.conf" -g "worker_processes $1;"
    else
        "${ON_SERVER[@]}" nginx -p /tmp/nginx-hello -c "$WORK/nginx-hello.conf" -g "worker_processes $1;"
    fi
    wait_port 8081
    NGINX_PID=$(cat /tmp/nginx-hello/nginx.pid)
}
nginx_stop() {
    nginx -p /tmp/nginx-hello -c "$WORK/nginx-hello.conf" -s quit 2>/dev/null || true
    for _ in $(seq 100); do
        (exec 3<>/dev/tcp/127.0.0.1/8081) 2>/dev/null || return 0
        sleep 0.05
    done
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

# --- 2. echo throughput: pingpong_client against each server, pinned ------------
echo_throughput() {
    log "echo: pingpong_client on cpu $CLIENT_CPU, servers on cpu $SERVER_CPU, 16 KiB blocks, ${ECHO_SECS}s per run, $ROUNDS rounds"
    declare -A port=([raw_epoll_echo]=9100 [libevent_echo]=9101 [tokio_echo]=9105)
    declare -A pid=()
    local servers=(raw_epoll_echo libevent_echo tokio_echo)
    start 9100 "${ON_SERVER[@]}" "$BIN/raw_epoll_echo" 127.0.0.1 9100; pid[raw_epoll_echo]=$LAST_PID
    start 9101 "${ON_SERVER[@]}" "$BIN/libevent_echo" 127.0.0.1 9101; pid[libevent_echo]=$LAST_PID
    start 9105 "${ON_SERVER[@]}" "$RUST_PEERS/tokio_echo" 127.0.0.1:9105; pid[tokio_echo]=$LAST_PID
    local p=9110
    for d in $BACKENDS; do
        if try_start $p "${ON_SERVER[@]}" "$EX/echo" "127.0.0.1:$p" --dispatcher "$d"; then
            servers+=("muxloop_$d"); port[muxloop_$d]=$p; pid[muxloop_$d]=$LAST_PID
        fi
        p=$((p + 1))
    done
    row ""
    row "| echo, pinned (16 KiB blocks) | sessions | server | MiB/s | user µs/MiB | sys µs/MiB | MiB/s vs raw_epoll_echo | vs tokio_echo | failed sessions |"
    row "|---|---|---|---|---|---|---|---|---|"
    for sessions in $ECHO_SESSIONS; do
        declare -A mib=() usr=() sys=() fail=()
        for round in $(seq "$ROUNDS"); do
            for s in $(order "$round" "${servers[@]}"); do
                local out before after rate cpu
                before=$(cpu_ticks "${pid[$s]}")
                out=$(pinned_client "$BIN/pingpong_client" 127.0.0.1 "${port[$s]}" "$sessions" 16384 "$ECHO_SECS")
                after=$(cpu_ticks "${pid[$s]}")
                rate=$(echo "$out" | sed 's/.*MiB\/s=\([0-9.]*\).*/\1/')
                cpu=$(per_unit "$before" "$after" "$(awk -v r="$rate" -v t="$ECHO_SECS" 'BEGIN {print r*t}')")
                mib[$s]+="$rate "; usr[$s]+="${cpu% *} "; sys[$s]+="${cpu#* } "
                fail[$s]=$(( ${fail[$s]:-0} + $(echo "$out" | sed 's/.*failed=\([0-9]*\).*/\1/') ))
            done
        done
        local raw tok
        raw=$(printf '%s\n' ${mib[raw_epoll_echo]} | median)
        tok=$(printf '%s\n' ${mib[tokio_echo]} | median)
        for s in "${servers[@]}"; do
            local m
            m=$(printf '%s\n' ${mib[$s]} | median)
            row "| | $sessions | $s | $m | $(printf '%s\n' ${usr[$s]} | median) | $(printf '%s\n' ${sys[$s]} | median) | $(ratio "$m" "$raw") | $(ratio "$m" "$tok") | ${fail[$s]} |"
        done
        unset mib usr sys fail
    done
    for s in "${servers[@]}"; do kill "${pid[$s]}" 2>/dev/null || true; done
    sleep 0.5
}

# --- 3. HTTP: wrk against nginx, hyper and http_server ---------------------------
# http_pinned IDLE: every server on SERVER_CPU (one worker / one loop), wrk -t1
# -c100 on CLIENT_CPU; IDLE extra idle connections held open to each server.
http_pinned() {
    local idle=${1:-0}
    log "http pinned: taskset -c $CLIENT_CPU wrk -t1 -c100 -d${HTTP_SECS}s /hello, $idle idle connections, $ROUNDS rounds"
    nginx_start 1
    declare -A port=([nginx]=8081 [hyper_hello]=8090) pid=([nginx]=$NGINX_PID)
    local servers=(nginx hyper_hello)
    start 8090 "${ON_SERVER[@]}" "$RUST_PEERS/hyper_hello" 127.0.0.1:8090; pid[hyper_hello]=$LAST_PID
    local p=8082
    for d in $BACKENDS; do
        if try_start $p "${ON_SERVER[@]}" "$EX/http_server" "127.0.0.1:$p" --threads 0 --dispatcher "$d"; then
            servers+=("muxloop_$d"); port[muxloop_$d]=$p; pid[muxloop_$d]=$LAST_PID
        fi
        p=$((p + 1))
    done
    # HTTP_BASELINE=PATH: another build of http_server (say, before a change)
    # measured in the same rounds, as the row "baseline".
    if [ -n "${HTTP_BASELINE:-}" ] && try_start 8089 "${ON_SERVER[@]}" "$HTTP_BASELINE" 127.0.0.1:8089 --threads 0 --dispatcher epoll; then
        servers+=(baseline); port[baseline]=8089; pid[baseline]=$LAST_PID
    fi
    declare -A held=()
    if [ "$idle" -gt 0 ]; then
        for s in "${servers[@]}"; do hold "${port[$s]}" "$idle"; done
        sleep 1
        for s in "${servers[@]}"; do
            local f=0 q
            for q in $(family "${pid[$s]}"); do f=$((f + $(fds_of "$q"))); done
            held[$s]=$f
        done
    fi
    declare -A rps=() usr=() sys=() bad=()
    for round in $(seq "$ROUNDS"); do
        for s in $(order "$round" "${servers[@]}"); do
            local out before after n cpu
            before=$(cpu_ticks "${pid[$s]}")
            out=$(pinned_client wrk -t1 -c100 -d"${HTTP_SECS}s" "http://127.0.0.1:${port[$s]}/hello" 2>&1) || true
            after=$(cpu_ticks "${pid[$s]}")
            n=$(echo "$out" | awk '/requests in/ {print $1}')
            cpu=$(per_unit "$before" "$after" "${n:-0}")
            rps[$s]+="$(echo "$out" | awk '/Requests\/sec/ {print $2}') "
            usr[$s]+="${cpu% *} "; sys[$s]+="${cpu#* } "
            bad[$s]=$(( ${bad[$s]:-0} + $(echo "$out" | awk '/Socket errors/ {s=0; for (i=1;i<=NF;i++) if ($i ~ /^[0-9]+,?$/) s+=$i} /Non-2xx/ {s+=$NF} END {print s+0}') ))
        done
    done
    release_holders
    nginx_stop
    for s in "${servers[@]}"; do [ "$s" = nginx ] || kill "${pid[$s]}" 2>/dev/null || true; done
    sleep 0.5
    row ""
    row "| HTTP /hello, pinned, $idle idle conns | server | req/s | user µs/req | sys µs/req | CPU µs/req | req/s vs nginx | CPU vs nginx | req/s vs hyper | server fds | errors+non-2xx |"
    row "|---|---|---|---|---|---|---|---|---|---|---|"
    declare -A med=() cpu=() mu=() my=()
    for s in "${servers[@]}"; do
        med[$s]=$(printf '%s\n' ${rps[$s]} | median)
        mu[$s]=$(printf '%s\n' ${usr[$s]} | median); my[$s]=$(printf '%s\n' ${sys[$s]} | median)
        cpu[$s]=$(sum2 "${mu[$s]}" "${my[$s]}")
    done
    for s in "${servers[@]}"; do
        row "| | $s | ${med[$s]} | ${mu[$s]} | ${my[$s]} | ${cpu[$s]} | $(ratio "${med[$s]}" "${med[nginx]}") | $(ratio "${cpu[$s]}" "${cpu[nginx]}") | $(ratio "${med[$s]}" "${med[hyper_hello]}") | ${held[$s]:--} | ${bad[$s]} |"
    done
    if [ "$idle" = 0 ] && [ -n "${med[muxloop_epoll]:-}" ]; then
        row ""
        row "Targets (epoll): CPU/req vs nginx $(ratio "${cpu[muxloop_epoll]}" "${cpu[nginx]}") (<= 0.85), req/s vs nginx $(ratio "${med[muxloop_epoll]}" "${med[nginx]}") (>= 1.1), req/s vs hyper $(ratio "${med[muxloop_epoll]}" "${med[hyper_hello]}") (>= 1.3)"
    fi
    unset port pid held rps usr sys bad med cpu mu my
}

http() {
    http_pinned 0
    http_unpinned
}

# Unpinned (second table): the scheduler splits 2 cores between server and wrk.
wrk_rps() { # url -> "req/s errors non2xx"
    local out
    out=$(wrk -t2 -c100 -d"${HTTP_SECS}s" "$1")
    local rps errors non2xx
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    errors=$(echo "$out" | awk '/Socket errors/ {s=0; for (i=1;i<=NF;i++) if ($i ~ /^[0-9]+,?$/) s+=$i; print s}')
    non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
    echo "$rps ${errors:-0} ${non2xx:-0}"
}

http_unpinned() {
    log "http unpinned: wrk -t2 -c100 -d${HTTP_SECS}s /hello, $ROUNDS rounds"
    cp "$PEERS/nginx-hello.conf" "$WORK/nginx-hello.conf"
    mkdir -p /tmp/nginx-hello
    row ""
    row "| HTTP /hello req/s, UNPINNED (scheduler share decides) | workers/threads | muxloop select | muxloop poll | muxloop epoll | nginx | epoll/nginx | errors, non-2xx (muxloop) |"
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
        for d in select poll epoll; do kill "${pids[$d]}" 2>/dev/null || true; done
        sleep 0.5
        declare -A med=()
        for k in nginx select poll epoll; do med[$k]=$(printf '%s\n' ${runs[$k]} | median); done
        row "| | $workers | ${med[select]} | ${med[poll]} | ${med[epoll]} | ${med[nginx]} | $(ratio "${med[epoll]}" "${med[nginx]}") | $bad |"
        unset pids runs med
    done
}

# --- 4. KV: redis-benchmark against redis-server and examples/kv ------------------
# kv_pinned IDLE CONFIGS: CONFIGS are "clients:pipeline" pairs; every server on
# SERVER_CPU, redis-benchmark -t set,get -n KV_N on CLIENT_CPU.
kv_pinned() {
    local idle=$1; shift
    local configs=("$@")
    log "kv pinned: redis-benchmark -t set,get -n $KV_N (${configs[*]} clients:pipeline), $idle idle connections, $ROUNDS rounds"
    declare -A port=([redis]=6390) pid=()
    local servers=(redis)
    start 6390 "${ON_SERVER[@]}" redis-server --port 6390 --bind 127.0.0.1 --save '' --appendonly no --maxclients 20000
    pid[redis]=$LAST_PID
    local p=6391
    for d in $BACKENDS; do
        if try_start $p "${ON_SERVER[@]}" "$EX/kv" "127.0.0.1:$p" --dispatcher "$d"; then
            servers+=("muxloop_$d"); port[muxloop_$d]=$p; pid[muxloop_$d]=$LAST_PID
        fi
        p=$((p + 1))
    done
    declare -A held=()
    if [ "$idle" -gt 0 ]; then
        for s in "${servers[@]}"; do hold "${port[$s]}" "$idle"; done
        sleep 1
        for s in "${servers[@]}"; do held[$s]=$(fds_of "${pid[$s]}"); done
    fi
    row ""
    row "| KV set+get, pinned, $idle idle conns | clients | pipeline | server | req/s | user µs/req | sys µs/req | CPU µs/req | CPU vs redis | req/s vs redis | server fds | failed runs |"
    row "|---|---|---|---|---|---|---|---|---|---|---|---|"
    local cfg
    for cfg in "${configs[@]}"; do
        local clients=${cfg%:*} pipe=${cfg#*:}
        declare -A rps=() usr=() sys=() bad=()
        for round in $(seq "$ROUNDS"); do
            for s in $(order "$round" "${servers[@]}"); do
                local out before after t0 t1 n cpu
                redis-cli -p "${port[$s]}" flushall >/dev/null 2>&1 || true
                before=$(cpu_ticks "${pid[$s]}")
                t0=$(date +%s.%N)
                out=$(pinned_client timeout 120 redis-benchmark -p "${port[$s]}" -t set,get -n "$KV_N" -c "$clients" -P "$pipe" -q 2>&1 | tr '\r' '\n') || true
                t1=$(date +%s.%N)
                after=$(cpu_ticks "${pid[$s]}")
                if [ "$(echo "$out" | grep -c 'requests per second')" -ge 2 ]; then
                    n=$((2 * KV_N))
                    cpu=$(per_unit "$before" "$after" "$n")
                    rps[$s]+="$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n/(b-a)}') "
                    usr[$s]+="${cpu% *} "; sys[$s]+="${cpu#* } "
                else
                    bad[$s]=$(( ${bad[$s]:-0} + 1 ))
                fi
            done
        done
        declare -A med=() cpu=()
        for s in "${servers[@]}"; do
            med[$s]=$(printf '%s\n' ${rps[$s]:-} | { grep . || true; } | median)
            cpu[$s]=$(sum2 "$(printf '%s\n' ${usr[$s]:-} | { grep . || true; } | median)" "$(printf '%s\n' ${sys[$s]:-} | { grep . || true; } | median)")
        done
        for s in "${servers[@]}"; do
            row "| | $clients | $pipe | $s | ${med[$s]} | $(printf '%s\n' ${usr[$s]:-} | median) | $(printf '%s\n' ${sys[$s]:-} | median) | ${cpu[$s]} | $(ratio "${cpu[$s]}" "${cpu[redis]}") | $(ratio "${med[$s]}" "${med[redis]}") | ${held[$s]:--} | ${bad[$s]:-0} |"
        done
        unset rps usr sys bad med cpu
    done
    release_holders
    for s in "${servers[@]}"; do kill "${pid[$s]}" 2>/dev/null || true; done
    sleep 0.5
    unset port pid held
}

kv() { kv_pinned 0 50:1 1000:1 50:16 1000:16; }

# --- 5. latency at a fixed rate below saturation ----------------------------------
OHA=$(command -v oha || echo "$HOME/.cargo/bin/oha")

# latency_run URL -> "p50_ms p99_ms p99.9_ms requests"
latency_run() {
    local url=$1
    if [ -x "$OHA" ]; then
        local fmt=--json
        "$OHA" --help 2>/dev/null | grep -q -- --output-format && fmt="--output-format json"
        # shellcheck disable=SC2086
        pinned_client "$OHA" -z "${LAT_SECS}s" -c 50 -q "$LAT_RATE" --latency-correction --no-tui $fmt "$url" 2>/dev/null |
            python3 -c '
import json, sys
d = json.load(sys.stdin)
p = d["latencyPercentiles"]
n = sum(d.get("statusCodeDistribution", {}).values())
print("%.3f %.3f %.3f %d" % (p["p50"] * 1e3, p["p99"] * 1e3, p["p99.9"] * 1e3, n))'
    else
        # h2load: open loop per client at LAT_RATE/50 req/s, per-request log.
        local log=$WORK/h2load.log
        pinned_client h2load --h1 -c 50 --rps=$((LAT_RATE / 50)) -D "$LAT_SECS" --log-file="$log" "$url" >/dev/null 2>&1 || true
        python3 - "$log" <<'PY'
import sys
lat = sorted(int(l.split("\t")[2]) for l in open(sys.argv[1]) if l.count("\t") >= 2)
q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))] / 1e3 if lat else float("nan")
print("%.3f %.3f %.3f %d" % (q(0.5), q(0.99), q(0.999), len(lat)))
PY
    fi
}

latency() {
    local tool=h2load
    [ -x "$OHA" ] && tool="oha -q $LAT_RATE --latency-correction"
    log "latency: $tool, $LAT_RATE req/s over 50 connections, ${LAT_SECS}s, $ROUNDS rounds"
    nginx_start 1
    declare -A port=([nginx]=8081 [hyper_hello]=8090) pid=()
    local servers=(nginx hyper_hello)
    start 8090 "${ON_SERVER[@]}" "$RUST_PEERS/hyper_hello" 127.0.0.1:8090; pid[hyper_hello]=$LAST_PID
    local p=8082
    for d in $BACKENDS; do
        if try_start $p "${ON_SERVER[@]}" "$EX/http_server" "127.0.0.1:$p" --threads 0 --dispatcher "$d"; then
            servers+=("muxloop_$d"); port[muxloop_$d]=$p; pid[muxloop_$d]=$LAST_PID
        fi
        p=$((p + 1))
    done
    declare -A p50=() p99=() p999=() reqs=()
    for round in $(seq "$ROUNDS"); do
        for s in $(order "$round" "${servers[@]}"); do
            local r
            r=$(latency_run "http://127.0.0.1:${port[$s]}/hello")
            read -r a b c n <<<"$r"
            p50[$s]+="$a "; p99[$s]+="$b "; p999[$s]+="$c "; reqs[$s]+="$n "
        done
    done
    nginx_stop
    row ""
    row "| HTTP /hello latency at $LAT_RATE req/s ($tool, 50 conns, ${LAT_SECS}s), pinned | server | p50 ms | p99 ms | p99.9 ms | requests | p99 vs nginx |"
    row "|---|---|---|---|---|---|---|"
    local n99
    n99=$(printf '%s\n' ${p99[nginx]} | median)
    for s in "${servers[@]}"; do
        local m99
        m99=$(printf '%s\n' ${p99[$s]} | median)
        row "| | $s | $(printf '%s\n' ${p50[$s]} | median) | $m99 | $(printf '%s\n' ${p999[$s]} | median) | $(printf '%s\n' ${reqs[$s]} | median) | $(ratio "$m99" "$n99") |"
        [ "$s" = nginx ] || kill "${pid[$s]}" 2>/dev/null || true
    done
    unset port pid p50 p99 p999 reqs
}

# --- 6. idle connections held open during the HTTP and KV runs --------------------
idle() {
    local n
    for n in $IDLE_COUNTS; do
        http_pinned "$n"
        kv_pinned "$n" 50:1
    done
}

# --- 7. memory: RSS of an echo server holding 10,000 idle connections ------------------
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

# --- 8. UDP: datagrams/s through udp_echo vs raw_udp_echo -------------------------
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

# --- 9. Unix vs TCP: one echo server program over both transports ------------------
unix_vs_tcp() {
    log "unix: muxloop pingpong_client on cpu $CLIENT_CPU against examples/echo (epoll) on cpu $SERVER_CPU over TCP and over a Unix socket, 16 KiB blocks, ${ECHO_SECS}s, $ROUNDS rounds"
    local path="$WORK/echo.sock"
    rm -f "$path"
    start_udp 9400 "${ON_SERVER[@]}" "$EX/echo" 127.0.0.1:9400 --dispatcher epoll
    local tcp_pid=$LAST_PID
    start_udp 9401 "${ON_SERVER[@]}" "$EX/echo" --unix "$path" --dispatcher epoll
    local unix_pid=$LAST_PID
    declare -A pid=([tcp]=$tcp_pid [unix]=$unix_pid) target=([tcp]=127.0.0.1:9400 [unix]="--unix $path")
    row ""
    row "| echo over TCP vs Unix, pinned (16 KiB blocks) | sessions | transport | MiB/s | user µs/MiB | sys µs/MiB | vs TCP |"
    row "|---|---|---|---|---|---|---|"
    for sessions in $ECHO_SESSIONS; do
        declare -A mib=() usr=() sys=()
        for round in $(seq "$ROUNDS"); do
            for t in $(order "$round" tcp unix); do
                local out before after rate cpu
                before=$(cpu_ticks "${pid[$t]}")
                # shellcheck disable=SC2086 # target[unix] is two words on purpose
                out=$(pinned_client "$EX/pingpong_client" ${target[$t]} --sessions "$sessions" --block 16384 \
                    --seconds "$ECHO_SECS" --dispatcher epoll)
                after=$(cpu_ticks "${pid[$t]}")
                rate=$(echo "$out" | sed 's/.*MiB\/s=\([0-9.]*\).*/\1/')
                cpu=$(per_unit "$before" "$after" "$(awk -v r="$rate" -v t="$ECHO_SECS" 'BEGIN {print r*t}')")
                mib[$t]+="$rate "; usr[$t]+="${cpu% *} "; sys[$t]+="${cpu#* } "
            done
        done
        local tcp
        tcp=$(printf '%s\n' ${mib[tcp]} | median)
        for t in tcp unix; do
            local m
            m=$(printf '%s\n' ${mib[$t]} | median)
            row "| | $sessions | $t | $m | $(printf '%s\n' ${usr[$t]} | median) | $(printf '%s\n' ${sys[$t]} | median) | $(ratio "$m" "$tcp") |"
        done
        unset mib usr sys
    done
    kill "$tcp_pid" "$unix_pid" 2>/dev/null || true
    sleep 0.5
}

# --- 10. proxy: --splice vs --copy, CPU per GiB relayed ----------------------------
# Client and upstream echo share CLIENT_CPU; only the proxy is on SERVER_CPU, so
# its CPU per GiB is what differs. Every echoed byte crosses the proxy twice.
proxy_relay() {
    log "proxy: pingpong_client -> proxy (cpu $SERVER_CPU) -> echo (cpu $CLIENT_CPU), 64 KiB blocks, ${ECHO_SECS}s, $ROUNDS rounds"
    start 9500 taskset -c "$CLIENT_CPU" "$EX/echo" 127.0.0.1:9500 --dispatcher epoll
    local upstream=$LAST_PID
    start 9501 "${ON_SERVER[@]}" "$EX/proxy" 127.0.0.1:9501 127.0.0.1:9500 --copy
    local copy_pid=$LAST_PID
    start 9502 "${ON_SERVER[@]}" "$EX/proxy" 127.0.0.1:9502 127.0.0.1:9500 --splice
    local splice_pid=$LAST_PID
    declare -A pid=([copy]=$copy_pid [splice]=$splice_pid) port=([copy]=9501 [splice]=9502)
    row ""
    row "| proxy, pinned (64 KiB blocks) | streams | mode | MiB/s echoed | proxy user s/GiB | proxy sys s/GiB | proxy CPU s/GiB | CPU vs copy |"
    row "|---|---|---|---|---|---|---|---|"
    for streams in ${PROXY_STREAMS:-1 10 100}; do
        declare -A mib=() usr=() sys=()
        for round in $(seq "$ROUNDS"); do
            for m in $(order "$round" copy splice); do
                local out before after rate cpu
                before=$(cpu_ticks "${pid[$m]}")
                out=$(pinned_client "$EX/pingpong_client" "127.0.0.1:${port[$m]}" --sessions "$streams" --block 65536 \
                    --seconds "$ECHO_SECS" --dispatcher epoll)
                after=$(cpu_ticks "${pid[$m]}")
                rate=$(echo "$out" | sed 's/.*MiB\/s=\([0-9.]*\).*/\1/')
                # units = GiB relayed (both directions) x 1e6, so per_unit's µs read as s/GiB
                cpu=$(per_unit "$before" "$after" "$(awk -v r="$rate" -v t="$ECHO_SECS" 'BEGIN {print r*t*2*1e6/1024}')")
                mib[$m]+="$rate "; usr[$m]+="${cpu% *} "; sys[$m]+="${cpu#* } "
            done
        done
        local copy_cpu
        copy_cpu=$(sum2 "$(printf '%s\n' ${usr[copy]} | median)" "$(printf '%s\n' ${sys[copy]} | median)")
        for m in copy splice; do
            local u y
            u=$(printf '%s\n' ${usr[$m]} | median); y=$(printf '%s\n' ${sys[$m]} | median)
            row "| | $streams | $m | $(printf '%s\n' ${mib[$m]} | median) | $u | $y | $(sum2 "$u" "$y") | $(ratio "$(sum2 "$u" "$y")" "$copy_cpu") |"
        done
        unset mib usr sys
    done
    kill "$upstream" "$copy_pid" "$splice_pid" 2>/dev/null || true
    sleep 0.5
}

# --- edge vs level: one binary, --trigger level vs --trigger edge ---------------
# The same http_server (wrk /hello) and echo (pingpong_client) on epoll, once
# level-triggered and once edge-triggered, pinned and alternated like the
# sections above; the figure that matters is the server's sys µs per request.
edge_vs_level() {
    log "edge vs level: http_server and echo on epoll, --trigger level|edge, pinned, $ROUNDS rounds"
    local modes=(level edge)
    declare -A pid=() port=([level]=8192 [edge]=8193)
    for t in "${modes[@]}"; do
        start "${port[$t]}" "${ON_SERVER[@]}" "$EX/http_server" "127.0.0.1:${port[$t]}" --threads 0 --dispatcher epoll --trigger "$t"
        pid[$t]=$LAST_PID
    done
    declare -A rps=() usr=() sys=() loads=()
    for round in $(seq "$ROUNDS"); do
        for t in $(order "$round" "${modes[@]}"); do
            local out before after n cpu
            loads[$t]+="$(cut -d' ' -f1 /proc/loadavg) "
            before=$(cpu_ticks "${pid[$t]}")
            out=$(pinned_client wrk -t1 -c100 -d"${HTTP_SECS}s" "http://127.0.0.1:${port[$t]}/hello" 2>&1) || true
            after=$(cpu_ticks "${pid[$t]}")
            n=$(echo "$out" | awk '/requests in/ {print $1}')
            cpu=$(per_unit "$before" "$after" "${n:-0}")
            rps[$t]+="$(echo "$out" | awk '/Requests\/sec/ {print $2}') "
            usr[$t]+="${cpu% *} "; sys[$t]+="${cpu#* } "
        done
    done
    for t in "${modes[@]}"; do kill "${pid[$t]}" 2>/dev/null || true; done
    row ""
    row "| HTTP /hello, epoll, pinned, wrk -t1 -c100 | trigger | req/s | user µs/req | sys µs/req | CPU µs/req | runs: req/s; sys µs/req | 1-min load at each run |"
    row "|---|---|---|---|---|---|---|---|"
    for t in "${modes[@]}"; do
        local mu my
        mu=$(printf '%s\n' ${usr[$t]} | median); my=$(printf '%s\n' ${sys[$t]} | median)
        row "| | $t | $(printf '%s\n' ${rps[$t]} | median) | $mu | $my | $(sum2 "$mu" "$my") | ${rps[$t]}; ${sys[$t]} | ${loads[$t]} |"
    done
    unset pid port rps usr sys loads
    declare -A pid=() port=([level]=9192 [edge]=9193) mib=() usr=() sys=() loads=()
    for t in "${modes[@]}"; do
        start "${port[$t]}" "${ON_SERVER[@]}" "$EX/echo" "127.0.0.1:${port[$t]}" --dispatcher epoll --trigger "$t"
        pid[$t]=$LAST_PID
    done
    for round in $(seq "$ROUNDS"); do
        for t in $(order "$round" "${modes[@]}"); do
            local out before after rate cpu
            loads[$t]+="$(cut -d' ' -f1 /proc/loadavg) "
            before=$(cpu_ticks "${pid[$t]}")
            out=$(pinned_client "$BIN/pingpong_client" 127.0.0.1 "${port[$t]}" 100 16384 "$ECHO_SECS")
            after=$(cpu_ticks "${pid[$t]}")
            rate=$(echo "$out" | sed 's/.*MiB\/s=\([0-9.]*\).*/\1/')
            # per 16 KiB block echoed (64 per MiB)
            cpu=$(per_unit "$before" "$after" "$(awk -v r="$rate" -v t="$ECHO_SECS" 'BEGIN {print r*t*64}')")
            mib[$t]+="$rate "; usr[$t]+="${cpu% *} "; sys[$t]+="${cpu#* } "
        done
    done
    for t in "${modes[@]}"; do kill "${pid[$t]}" 2>/dev/null || true; done
    row ""
    row "| echo, epoll, pinned, pingpong 100 x 16 KiB | trigger | MiB/s | user µs/block | sys µs/block | CPU µs/block | runs: MiB/s; sys µs/block | 1-min load at each run |"
    row "|---|---|---|---|---|---|---|---|"
    for t in "${modes[@]}"; do
        local mu my
        mu=$(printf '%s\n' ${usr[$t]} | median); my=$(printf '%s\n' ${sys[$t]} | median)
        row "| | $t | $(printf '%s\n' ${mib[$t]} | median) | $mu | $my | $(sum2 "$mu" "$my") | ${mib[$t]}; ${sys[$t]} | ${loads[$t]} |"
    done
    unset pid port mib usr sys loads
    sleep 0.5
}

# --- 11. files: one large file by sendfile, http_server --root vs nginx -----------
# Both servers on SERVER_CPU (nginx: 1 worker, `sendfile on`, the peers'
# nginx-files.conf pointed at the same file), wrk -t1 -c10 on CLIENT_CPU
# fetching the FILES_MIB file over and over; MiB/s from wrk's bytes read, and
# the server's CPU time per GiB sent. On loopback wrk (8 KiB reads) is the
# bottleneck, so MiB/s follows the CPU share the client gets on its core (other
# processes there shift it run to run): the table also gives wrk's CPU
# seconds (/usr/bin/time) and MiB per client CPU second, which does not.
wrk_bytes() { # wrk output -> bytes read ("N requests in Ts, 12.3GB read")
    awk '/requests in/ { v = $(NF-1); u = v; sub(/[0-9.]+/, "", u); sub(/[A-Za-z]+$/, "", v)
        m = (u == "KB") ? 1024 : (u == "MB") ? 1048576 : (u == "GB") ? 1073741824 : (u == "TB") ? 1099511627776 : 1
        printf "%.0f\n", v * m }'
}
files() {
    local dir=$WORK/files-root
    mkdir -p "$dir/files"
    if [ "$(stat -c %s "$dir/files/big.bin" 2>/dev/null || echo 0)" != $((FILES_MIB * 1048576)) ]; then
        head -c "${FILES_MIB}M" /dev/urandom > "$dir/files/big.bin"
    fi
    cat "$dir/files/big.bin" > /dev/null   # in the page cache for both
    log "files: taskset -c $CLIENT_CPU wrk -t1 -c10 -d${FILES_SECS}s /files/big.bin (${FILES_MIB} MiB), $ROUNDS rounds"
    # Same file; port 8097, not the conf's 8082 (the http section's first muxloop port).
    sed -e "s|^\( *root \).*;|\1$dir;|" -e "s|listen 127.0.0.1:8082|listen 127.0.0.1:8097|" \
        "$PEERS/nginx-files.conf" > "$WORK/nginx-files.conf"
    mkdir -p /tmp/nginx-files
    "${ON_SERVER[@]}" nginx -p /tmp/nginx-files -c "$WORK/nginx-files.conf" -g 'worker_processes 1;'
    wait_port 8097
    declare -A port=([nginx]=8097 [muxloop_epoll]=8096) pid=([nginx]=$(cat /tmp/nginx-files/nginx.pid))
    local servers=(nginx muxloop_epoll)
    start 8096 "${ON_SERVER[@]}" "$EX/http_server" 127.0.0.1:8096 --threads 0 --dispatcher epoll --root "$dir/files"
    pid[muxloop_epoll]=$LAST_PID
    local s
    for s in "${servers[@]}"; do   # both serve the same bytes
        if ! curl -sf "http://127.0.0.1:${port[$s]}/files/big.bin" | cmp -s - "$dir/files/big.bin"; then
            echo "$s does not serve the file intact" >&2
        fi
    done
    local timed=()   # wrk's own CPU time, where GNU time is installed
    [ -x /usr/bin/time ] && timed=(/usr/bin/time -f "CLIENT_CPU %U %S")
    declare -A mib=() usr=() sys=() bad=() ccpu=() per_client=()
    for round in $(seq "$ROUNDS"); do
        for s in $(order "$round" "${servers[@]}"); do
            local out before after bytes secs cpu
            before=$(cpu_ticks "${pid[$s]}")
            out=$(pinned_client "${timed[@]}" wrk -t1 -c10 -d"${FILES_SECS}s" --timeout 30s "http://127.0.0.1:${port[$s]}/files/big.bin" 2>&1) || true
            after=$(cpu_ticks "${pid[$s]}")
            bytes=$(echo "$out" | wrk_bytes)
            secs=$(echo "$out" | awk '/requests in/ {sub(/s,$/, "", $4); print $4}')
            local m
            m=$(awk -v b="${bytes:-0}" -v t="${secs:-0}" 'BEGIN { if (t > 0) printf "%.0f", b / 1048576 / t; else print 0 }')
            cpu=$(per_unit "$before" "$after" "$(awk -v b="${bytes:-0}" 'BEGIN {print b / 1048576}')")
            local client
            client=$(echo "$out" | awk '/^CLIENT_CPU/ {printf "%.2f", $2 + $3}')
            mib[$s]+="$m "; usr[$s]+="${cpu% *} "; sys[$s]+="${cpu#* } "
            ccpu[$s]+="${client:-nan} "
            echo "files round $round: $s $m MiB/s, wrk CPU ${client:--} s" >&2
            per_client[$s]+="$(awk -v b="${bytes:-0}" -v c="${client:-0}" 'BEGIN { if (c > 0) printf "%.0f", b / 1048576 / c; else print "nan" }') "
            bad[$s]=$(( ${bad[$s]:-0} + $(echo "$out" | awk '/Socket errors/ {s=0; for (i=1;i<=NF;i++) if ($i ~ /^[0-9]+,?$/) s+=$i} /Non-2xx/ {s+=$NF} END {print s+0}') ))
        done
    done
    nginx -p /tmp/nginx-files -c "$WORK/nginx-files.conf" -s quit 2>/dev/null || true
    kill "${pid[muxloop_epoll]}" 2>/dev/null || true
    sleep 0.5
    row ""
    row "| files: ${FILES_MIB} MiB file, wrk -c10, pinned | server | MiB/s | user µs/MiB | sys µs/MiB | CPU s/GiB | wrk CPU s | MiB per wrk CPU s | MiB/s vs nginx | CPU vs nginx | errors+non-2xx |"
    row "|---|---|---|---|---|---|---|---|---|---|---|"
    declare -A med=() gib=() pc=()
    for s in "${servers[@]}"; do
        local mu my
        med[$s]=$(printf '%s\n' ${mib[$s]} | median)
        mu=$(printf '%s\n' ${usr[$s]} | median); my=$(printf '%s\n' ${sys[$s]} | median)
        gib[$s]=$(awk -v u="$mu" -v y="$my" 'BEGIN { if (u !~ /^[0-9.]+$/) print "-"; else printf "%.3f", (u + y) * 1024 / 1e6 }')
        pc[$s]=$(printf '%s\n' ${per_client[$s]} | { grep -v nan || true; } | median)
        row "| | $s | ${med[$s]} | $mu | $my | ${gib[$s]} | $(printf '%s\n' ${ccpu[$s]} | { grep -v nan || true; } | median) | ${pc[$s]} | $(ratio "${med[$s]}" "${med[nginx]}") | $(ratio "${gib[$s]}" "${gib[nginx]}") | ${bad[$s]} |"
    done
    row ""
    row "Target (files): MiB/s vs nginx $(ratio "${med[muxloop_epoll]}" "${med[nginx]}") (>= 1; per wrk CPU second $(ratio "${pc[muxloop_epoll]}" "${pc[nginx]}")), CPU/GiB vs nginx $(ratio "${gib[muxloop_epoll]}" "${gib[nginx]}") (<= 1)"
    unset port pid mib usr sys bad med gib ccpu per_client pc
}


# SKIP_BUILD=1: use the binaries already in $BIN and target/release (e.g. to
# rerun one section while the tree is unchanged).
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    need_packages
    build
fi
ulimit -n 20000
row "# muxloop vs peers — $(date -u '+%Y-%m-%d %H:%M UTC'), medians of $ROUNDS rounds"
row ""
row "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), kernel $(uname -r), load average at start $(cut -d' ' -f1-3 /proc/loadavg); server on cpu $SERVER_CPU, load generator on cpu $CLIENT_CPU; command: ${0##*/} $SECTIONS (ROUNDS=$ROUNDS ECHO_SECS=$ECHO_SECS HTTP_SECS=$HTTP_SECS KV_N=$KV_N LAT_RATE=$LAT_RATE LAT_SECS=$LAT_SECS FILES_SECS=$FILES_SECS)"
row ""
for section in $SECTIONS; do
    case $section in
        dispatch) dispatch ;;
        echo) echo_throughput ;;
        http) http ;;
        kv) kv ;;
        latency) latency ;;
        idle) idle ;;
        memory) memory ;;
        udp) udp ;;
        unix) unix_vs_tcp ;;
        proxy) proxy_relay ;;
        edge) edge_vs_level ;;
        files) files ;;
        *) echo "unknown section $section (dispatch echo http kv latency idle memory udp unix proxy edge files)" >&2; exit 2 ;;
    esac
done
log "results in $RESULTS"

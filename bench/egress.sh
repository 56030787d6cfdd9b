#!/usr/bin/env bash
# bench/egress.sh: a sprite's egress through the engine (the HTTP proxy at
# 127.0.0.53:3128 and the resolver at 127.0.0.53:53 inside each sprite, which
# apply its network policy) against the same work done directly on the host.
#
#   bench/egress.sh [path-to-spritescript]       (default build/spritescript)
#
# Starts one engine on loopback (`serve --listen 127.0.0.1:0`, a temporary
# state dir, a random token) with `--resolve bench.test=127.0.0.1`, makes a
# sprite whose policy allows only bench.test, and starts a small python3 HTTP
# server on the host's 127.0.0.1 (GET /big: SIZE bytes of zeros from memory
# with a Content-Length; GET /small: "ok"; one connection per request).
# Then, ROUNDS times (default 5), taking turns, it measures:
#   throughput  `curl -s -o /dev/null -w '%{speed_download}'` of /big:
#               direct   from the host to 127.0.0.1:PORT (the baseline; it
#                        also shows what the server can send)
#               proxy    inside the sprite, http://bench.test:PORT/big
#                        through the proxy (absolute-form request)
#               connect  the same with -p (a CONNECT tunnel)
#               and the engine's CPU time per GiB (utime+stime of its
#               process across the transfer)
#   setup       REQUESTS (default 200) sequential GETs of /small from one
#               python3 process (http.client, a new connection each, the
#               response read to the end): direct from the host, and from
#               the sprite through the proxy (absolute-form) and through a
#               CONNECT tunnel; the median per request
#   dns         LOOKUPS (default 1000) lookups from one python3 process in
#               the sprite: socket.getaddrinfo of an allowed name
#               (bench.test: an A and an AAAA query) and of a denied one
#               (denied.test: REFUSED, so getaddrinfo fails); and single raw
#               A queries over UDP to 127.0.0.53:53, one in flight
# and prints the medians over the rounds, with their spread, as tables
# (each round's raw figures go to stderr as they come).
# Every figure is reported, none is checked against a limit. The engine's
# TCP proxy (GET /v1/sprites/NAME/proxy, into a sprite) is bench/proxy.sh.
#
# Environment: SIZE=1073741824 ROUNDS=5 REQUESTS=200 LOOKUPS=1000 TMPDIR=/tmp
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${1:-$here/../build/spritescript}
size=${SIZE:-1073741824}
rounds=${ROUNDS:-5}
requests=${REQUESTS:-200}
lookups=${LOOKUPS:-1000}

if [ ! -x "$bin" ]; then
  echo "egress.sh: no spritescript binary at $bin (build it first: make build)" >&2
  exit 2
fi
for tool in curl python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "egress.sh: $tool is not installed" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/spritescript-egress-bench.XXXXXX")
engine_pid=""
server_pid=""
# shellcheck disable=SC2317  # run by the trap
cleanup() {
  set +e
  for pid in $server_pid $engine_pid; do
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cat >"$work/server.py" <<'EOF'
import http.server, socketserver, sys
SIZE = int(sys.argv[1])
CHUNK = memoryview(bytes(1 << 20))
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection
    def log_message(self, *args):
        pass
    def do_GET(self):
        if self.path == "/big":
            self.send_response(200)
            self.send_header("Content-Length", str(SIZE))
            self.end_headers()
            left = SIZE
            while left > 0:
                k = min(left, len(CHUNK))
                self.wfile.write(CHUNK[:k])  # unbuffered: straight to sendall
                left -= k
        elif self.path == "/small":
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        else:
            self.send_error(404)
class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 128
s = Server(("127.0.0.1", 0), Handler)
print("ready", s.server_address[1], flush=True)
s.serve_forever()
EOF

# The client for setup and dns; runs inside the sprite and on the host.
# Prints one line: the median, p95 and mean per operation in ms, and the
# operations per second over the whole loop.
cat >"$work/client.py" <<'EOF'
import http.client, os, socket, statistics, struct, sys, time
what, mode, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
PROXY = ("127.0.0.53", 3128)

def get():
    if mode == "direct":
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/small")
    elif mode == "proxy":  # absolute-form, as curl sends through http_proxy
        c = http.client.HTTPConnection(*PROXY, timeout=10)
        c.request("GET", f"http://bench.test:{port}/small")
    else:  # CONNECT, then the request inside the tunnel
        c = http.client.HTTPConnection(*PROXY, timeout=10)
        c.set_tunnel("bench.test", port)
        c.request("GET", "/small")
    r = c.getresponse()
    body = r.read()
    c.close()
    if r.status != 200 or body != b"ok":
        raise SystemExit(f"setup {mode}: HTTP {r.status} {body[:200]!r}")

def lookup():
    name = "bench.test" if mode == "allowed" else "denied.test"
    try:
        socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
        ok = True
    except socket.gaierror as e:
        ok = False
        lookup.error = e.args[1]
    if ok != (mode == "allowed"):
        raise SystemExit(f"dns {name}: {'resolved' if ok else 'failed'}, unexpected")

dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dns.settimeout(5)
dns.connect(("127.0.0.53", 53))
def query():
    name = "bench.test" if mode == "allowed" else "denied.test"
    qid = os.getpid() & 0xFFFF
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    dns.send(struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", 1, 1))
    reply = dns.recv(4096)
    rcode, answers = reply[3] & 0x0F, struct.unpack("!H", reply[6:8])[0]
    want = (0, True) if mode == "allowed" else (5, False)
    if (rcode, answers > 0) != want:
        raise SystemExit(f"raw query {name}: rcode {rcode}, {answers} answers, unexpected")

op = {"setup": get, "getaddrinfo": lookup, "query": query}[what]
for _ in range(5):  # warm-up
    op()
times = []
start = time.perf_counter()
for _ in range(n):
    t = time.perf_counter()
    op()
    times.append(time.perf_counter() - t)
total = time.perf_counter() - start
times.sort()
print(f"{statistics.median(times) * 1e3:.4f} {times[int(len(times) * 0.95)] * 1e3:.4f} "
      f"{total / n * 1e3:.4f} {n / total:.1f}")
if what == "getaddrinfo" and mode == "denied":
    print("error:", lookup.error)
EOF

token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
"$bin" serve --listen 127.0.0.1:0 --state-dir "$work/state" --token "$token" \
  --resolve bench.test=127.0.0.1 >"$work/engine.log" 2>&1 &
engine_pid=$!
for _ in $(seq 100); do
  grep -q 'listening on' "$work/engine.log" 2>/dev/null && break
  sleep 0.1
done
url=$(grep -o 'http://[0-9.:]*' "$work/engine.log" | head -1)
[ -n "$url" ] || { echo "egress.sh: the engine did not start:" >&2; cat "$work/engine.log" >&2; exit 1; }
auth=(-H "Authorization: Bearer $token")

python3 "$work/server.py" "$size" >"$work/server.out" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  grep -q ready "$work/server.out" 2>/dev/null && break
  sleep 0.05
done
port=$(awk '/ready/ {print $2}' "$work/server.out")
[ -n "$port" ] || { echo "egress.sh: the HTTP server did not start:" >&2; cat "$work/server.out" >&2; exit 1; }

curl -fsS "${auth[@]}" -o /dev/null -d '{"name":"bench"}' "$url/v1/sprites"
status=$(curl -sS "${auth[@]}" -o /dev/null -w '%{http_code}' \
  -d '{"rules":[{"domain":"bench.test","action":"allow"}]}' "$url/v1/sprites/bench/policy/network")
[ "$status" = 204 ] || { echo "egress.sh: setting the network policy answered $status" >&2; exit 1; }
curl -fsS "${auth[@]}" -o /dev/null -X PUT --data-binary @"$work/client.py" \
  "$url/v1/sprites/bench/fs/write?path=/home/sprite/client.py"

# in_sprite SCRIPT: runs `sh -c SCRIPT` in the sprite (it wakes it), its
# stdout and stderr to a file in the sprite, and prints that file. Fails,
# showing the file, unless the script exited 0 (the exec's last frame is
# 03 <code>).
in_sprite() {
  local q
  q=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' \
    "($1) >/home/sprite/out.txt 2>&1")
  curl -fsS "${auth[@]}" -o "$work/exec.raw" -X POST "$url/v1/sprites/bench/exec?cmd=sh&cmd=-c&cmd=$q"
  curl -fsS "${auth[@]}" -o "$work/out.txt" "$url/v1/sprites/bench/fs/read?path=/home/sprite/out.txt"
  if ! python3 -c 'import sys; d = open(sys.argv[1], "rb").read(); sys.exit(d[-2:] != b"\x03\x00")' \
    "$work/exec.raw"; then
    echo "egress.sh: in the sprite, '$1' failed:" >&2
    cat "$work/out.txt" >&2
    exit 1
  fi
  cat "$work/out.txt"
}
engine_ticks() { awk '{print $14, $15}' "/proc/$engine_pid/stat"; }  # user, system (ticks)

# Checks before anything is timed: the path works, and the policy applies.
in_sprite "curl -fsS http://bench.test:$port/small" >/dev/null
if (in_sprite "curl -fsS http://denied.test:$port/small") >/dev/null 2>&1; then
  echo "egress.sh: denied.test was reachable: the policy did not apply" >&2
  exit 1
fi

echo "machine: $(nproc) vCPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1 /proc/loadavg) at the start"
echo "size: $size bytes, rounds: $rounds, requests: $requests, lookups: $lookups"

results="$work/results"
: >"$results"
record() {  # KEY VALUES...: one raw figure, kept for the summary and shown on stderr
  echo "$*" >>"$results"
  echo "  $*" >&2
}
hz=$(getconf CLK_TCK)
for round in $(seq "$rounds"); do
  echo "round $round of $rounds" >&2
  record tput.direct "$(curl -fsS -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$port/big")"
  for mode in proxy connect; do
    flag=""
    [ "$mode" = connect ] && flag="-p"
    read -r user0 sys0 < <(engine_ticks)
    speed=$(in_sprite "curl -fsS $flag -o /dev/null -w '%{speed_download}' http://bench.test:$port/big")
    read -r user1 sys1 < <(engine_ticks)
    record "tput.$mode" "$speed"
    record "cpu.$mode" $((user1 + sys1 - user0 - sys0)) $((user1 - user0)) $((sys1 - sys0))
  done
  record setup.direct "$(python3 "$work/client.py" setup direct "$port" "$requests")"
  for mode in proxy connect; do
    record "setup.$mode" "$(in_sprite "python3 /home/sprite/client.py setup $mode $port $requests")"
  done
  for what in getaddrinfo query; do
    for mode in allowed denied; do
      line=$(in_sprite "python3 /home/sprite/client.py $what $mode $port $lookups")
      record "$what.$mode" "$(head -1 <<<"$line")"
      if grep -q '^error:' <<<"$line"; then grep -m1 '^error:' <<<"$line" >"$work/denied_error"; fi
    done
  done
done
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1 /proc/loadavg) at the end"

python3 - "$results" "$size" "$hz" "$(cut -d' ' -f2- "$work/denied_error" 2>/dev/null)" <<'EOF'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    key, *values = line.split()
    rows[key].append(list(map(float, values)))
size, hz, denied_error = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
med = lambda key, i=0: statistics.median(v[i] for v in rows[key])
lo = lambda key, i=0: min(v[i] for v in rows[key])
hi = lambda key, i=0: max(v[i] for v in rows[key])

print()
print(f"Throughput: GET of {size / 2**30:g} GiB from a python3 server on the host's 127.0.0.1 to curl "
      f"(median of {len(rows['tput.direct'])} rounds)")
print()
print("| path | median MB/s | min-max MB/s | / direct | engine CPU s per GiB, median (user + system) |")
print("|---|---:|---:|---:|---:|")
direct = med("tput.direct")
names = {"direct": "direct: curl on the host", "proxy": "sprite: curl through the proxy (absolute-form)",
         "connect": "sprite: curl -p (CONNECT tunnel)"}
for mode in ("direct", "proxy", "connect"):
    key = "tput." + mode
    gib = size / 2**30
    cpu = "-" if mode == "direct" else (f"{med('cpu.' + mode) / hz / gib:.2f} ({med('cpu.' + mode, 1) / hz / gib:.2f}"
                                        f" + {med('cpu.' + mode, 2) / hz / gib:.2f})")
    print(f"| {names[mode]} | {med(key) / 1e6:,.0f} | {lo(key) / 1e6:,.0f}-{hi(key) / 1e6:,.0f} "
          f"| {med(key) / direct:.2f} | {cpu} |")

print()
print(f"Connection setup: sequential GETs of a 2-byte body, a new connection each, "
      "one python3 process (median over rounds of each round's figure)")
print()
print("| path | per request, median ms | p95 ms | mean ms | requests/s | + over direct (median) |")
print("|---|---:|---:|---:|---:|---:|")
names = {"direct": "direct: host to 127.0.0.1", "proxy": "sprite: through the proxy (absolute-form)",
         "connect": "sprite: CONNECT, then the request"}
base = med("setup.direct")
for mode in ("direct", "proxy", "connect"):
    key = "setup." + mode
    extra = "-" if mode == "direct" else f"+{med(key) - base:.3f} ms ({med(key) / base:.2f}x)"
    print(f"| {names[mode]} | {med(key):.3f} | {med(key, 1):.3f} | {med(key, 2):.3f} | {med(key, 3):,.0f} | {extra} |")

print()
print("DNS through the engine's resolver, from one python3 process in the sprite (median over rounds)")
print()
print("| lookup | per lookup, median ms | p95 ms | lookups/s (min-max) |")
print("|---|---:|---:|---:|")
names = {"getaddrinfo.allowed": "getaddrinfo('bench.test'), allowed (A + AAAA)",
         "getaddrinfo.denied": f"getaddrinfo('denied.test'), REFUSED (fails: {denied_error or '?'})",
         "query.allowed": "one raw A query, bench.test (NOERROR, 1 answer)",
         "query.denied": "one raw A query, denied.test (REFUSED)"}
for key, name in names.items():
    print(f"| {name} | {med(key):.3f} | {med(key, 1):.3f} | {med(key, 3):,.0f} ({lo(key, 3):,.0f}-{hi(key, 3):,.0f}) |")
EOF

#!/usr/bin/env bash
# bench/proxy.sh: the engine's TCP proxy (spec §9) against a direct loopback
# TCP connection.
#
#   bench/proxy.sh [path-to-spritescript]        (default build/spritescript)
#
# Starts one engine on loopback with a temporary state dir and a random
# token, makes a sprite and runs the same small python3 server twice: inside
# the sprite (reached through GET /v1/sprites/bench/proxy) and on the host's
# loopback (reached directly). A connection's first 9 bytes ask the server
# to send SIZE bytes ("S" + 8-byte length) or to receive SIZE bytes and
# answer "ok" ("R" + length). The client (python3, a raw WebSocket client
# with a zero mask key, so the payload is sent without copying) measures,
# RUNS times each (default 3), best and median:
#   download  SIZE bytes from the server to the client (default 1 GiB)
#   upload    SIZE bytes from the client to the server, until its "ok"
#   setup     CONNECTS connections (default 200): TCP connect + upgrade +
#             init + {"status":"connected"} for the tunnel, TCP connect +
#             one byte round trip for direct (a connection's setup as an
#             application sees it: until the first byte can flow)
# Prints the machine and a table; the ratio is the tunnel's best time over
# the direct one's.
#
# Environment: SIZE=1073741824 RUNS=3 CONNECTS=200 TMPDIR=/tmp
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${1:-$here/../build/spritescript}
size=${SIZE:-1073741824}
runs=${RUNS:-3}
connects=${CONNECTS:-200}

if [ ! -x "$bin" ]; then
  echo "proxy.sh: no spritescript binary at $bin (build it first: make build)" >&2
  exit 2
fi
for tool in curl python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "proxy.sh: $tool is not installed" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/spritescript-proxy-bench.XXXXXX")
engine_pid=""
server_pid=""
runner_pid=""
# shellcheck disable=SC2317  # run by the trap
cleanup() {
  set +e
  for pid in $runner_pid $server_pid $engine_pid; do
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/server.py" <<'EOF'
import socket, struct, sys, threading
CHUNK = memoryview(bytes(1 << 20))
def serve(c):
    try:
        head = b""
        while len(head) < 9:
            d = c.recv(9 - len(head))
            if not d:
                return
            head += d
        n = struct.unpack("!Q", head[1:])[0]
        if head[:1] == b"S":
            while n > 0:
                k = min(n, len(CHUNK))
                c.sendall(CHUNK[:k])
                n -= k
        elif head[:1] == b"R":
            buf = bytearray(1 << 20)
            while n > 0:
                k = c.recv_into(buf, min(n, len(buf)))
                if k == 0:
                    return
                n -= k
            c.sendall(b"ok")
        elif head[:1] == b"P":
            c.sendall(b"p")
            c.recv(1)
    finally:
        c.close()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(128)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF

cat >"$work/client.py" <<'EOF'
import base64, os, socket, statistics, struct, sys, time
mode, engine_port, token, direct_port, size, runs, connects = sys.argv[1:8]
engine_port, direct_port, size, runs, connects = map(int, (engine_port, direct_port, size, runs, connects))
SPRITE_PORT = 9100

class Tunnel:
    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", engine_port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall((f"GET /v1/sprites/bench/proxy HTTP/1.1\r\nHost: 127.0.0.1:{engine_port}\r\n"
                        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                        f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            d = self.s.recv(4096)
            if not d:
                raise SystemExit("proxy: connection closed during the upgrade")
            data += d
        head, self.pending = data.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise SystemExit("proxy: upgrade refused: " + head.decode(errors="replace"))
        self.send(f'{{"host":"127.0.0.1","port":{SPRITE_PORT}}}'.encode(), opcode=1)
        op, reply = self.read_frame()
        if op != 1 or b'"connected"' not in reply:
            raise SystemExit("proxy: " + reply.decode(errors="replace"))
        self.scratch = bytearray(1 << 20)

    def send(self, payload, opcode=2):
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        self.s.sendall(head + b"\0\0\0\0")  # mask key 0: the payload goes as it is
        self.s.sendall(payload)

    def exact(self, n):
        out = self.pending[:n]
        self.pending = self.pending[n:]
        while len(out) < n:
            d = self.s.recv(n - len(out))
            if not d:
                raise SystemExit("proxy: connection closed")
            out += d
        return out

    def frame_header(self):
        b0, b1 = self.exact(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.exact(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.exact(8))[0]
        return b0 & 0x0F, n

    def read_frame(self):
        op, n = self.frame_header()
        return op, self.exact(n)

    # Reads binary frames until `total` payload bytes arrived, discarding them.
    def drain(self, total):
        mv = memoryview(self.scratch)
        while total > 0:
            op, n = self.frame_header()
            if op == 8:
                raise SystemExit("proxy: closed early")
            total -= n
            if self.pending:
                k = min(n, len(self.pending))
                self.pending = self.pending[k:]
                n -= k
            while n > 0:
                k = self.s.recv_into(mv, min(n, len(mv)))
                if k == 0:
                    raise SystemExit("proxy: connection closed")
                n -= k

    def close(self):
        try:
            self.send(struct.pack("!H", 1000), opcode=8)
        finally:
            self.s.close()

class Direct:
    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", direct_port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.scratch = bytearray(1 << 20)
    def send(self, payload):
        self.s.sendall(payload)
    def drain(self, total):
        mv = memoryview(self.scratch)
        while total > 0:
            k = self.s.recv_into(mv, min(total, len(mv)))
            if k == 0:
                raise SystemExit("direct: connection closed")
            total -= k
    def close(self):
        self.s.close()

make = Tunnel if mode == "tunnel" else Direct
CHUNK = memoryview(bytes(1 << 20))

def download():
    c = make()
    t = time.perf_counter()
    c.send(b"S" + struct.pack("!Q", size))
    c.drain(size)
    t = time.perf_counter() - t
    c.close()
    return t

def upload():
    c = make()
    t = time.perf_counter()
    c.send(b"R" + struct.pack("!Q", size))
    left = size
    while left > 0:
        k = min(left, len(CHUNK))
        c.send(CHUNK[:k])
        left -= k
    c.drain(2)
    t = time.perf_counter() - t
    c.close()
    return t

def setup():
    times = []
    for _ in range(connects):
        t = time.perf_counter()
        c = make()
        if mode != "tunnel":  # until the first byte can flow, as the tunnel's reply says
            c.send(b"P" + struct.pack("!Q", 0))
            c.drain(1)
        times.append(time.perf_counter() - t)
        c.close()
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95)]

for name, fn in (("download", download), ("upload", upload)):
    ts = sorted(fn() for _ in range(runs))
    print(name, min(ts), statistics.median(ts))
med, p95 = setup()
print("setup", med, p95)
EOF

token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
"$bin" serve --state-dir "$work/engine" --token "$token" >"$work/serve.out" 2>&1 &
engine_pid=$!
for _ in $(seq 100); do
  grep -q "listening on" "$work/serve.out" && break
  sleep 0.05
done
url=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/serve.out" | head -1)
[ -n "$url" ] || { echo "proxy.sh: the engine did not start:" >&2; cat "$work/serve.out" >&2; exit 1; }
engine_port=${url##*:}
auth=(-H "Authorization: Bearer $token")
curl -fsS "${auth[@]}" -o /dev/null -d '{"name":"bench"}' "$url/v1/sprites"

# The server inside the sprite: its source goes through the fs API, and it
# runs as a detached exec session (the HTTP exec returns once sh exits).
curl -fsS "${auth[@]}" -o /dev/null -X PUT --data-binary @"$work/server.py" \
  "$url/v1/sprites/bench/fs/write?path=/home/sprite/server.py"
curl -fsS "${auth[@]}" -o /dev/null -X POST \
  "$url/v1/sprites/bench/exec?cmd=sh&cmd=-c&cmd=python3%20/home/sprite/server.py%209100%20%3E/dev/null%202%3E%261%20%26&path=sh"
# And the same server on the host's loopback.
direct_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 "$work/server.py" "$direct_port" >"$work/direct.out" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  grep -q ready "$work/direct.out" && break
  sleep 0.05
done
# Wait until the sprite's server accepts tunnels.
for _ in $(seq 100); do
  python3 "$work/client.py" tunnel "$engine_port" "$token" "$direct_port" 0 1 1 >/dev/null 2>&1 && break
  sleep 0.1
done

echo "machine: $(nproc) vCPU, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1 /proc/loadavg)"
echo "size: $size bytes, runs: $runs, connects: $connects"
declare -A best median
for mode in direct tunnel; do
  while read -r name b m; do
    best[$mode.$name]=$b
    median[$mode.$name]=$m
  done < <(python3 "$work/client.py" "$mode" "$engine_port" "$token" "$direct_port" "$size" "$runs" "$connects")
done
python3 - "$size" "${best[direct.download]}" "${median[direct.download]}" \
  "${best[tunnel.download]}" "${median[tunnel.download]}" \
  "${best[direct.upload]}" "${median[direct.upload]}" \
  "${best[tunnel.upload]}" "${median[tunnel.upload]}" \
  "${best[direct.setup]}" "${median[direct.setup]}" \
  "${best[tunnel.setup]}" "${median[tunnel.setup]}" <<'EOF'
import sys
size = int(sys.argv[1])
v = list(map(float, sys.argv[2:]))
print()
print("| transfer | direct best s | direct median s | tunnel best s | tunnel median s | tunnel MB/s (best) | direct MB/s (best) | tunnel / direct |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for i, name in ((0, "download (server to client)"), (4, "upload (client to server)")):
    db, dm, tb, tm = v[i:i + 4]
    print(f"| {name} | {db:.3f} | {dm:.3f} | {tb:.3f} | {tm:.3f} | {size / tb / 1e6:,.0f} | {size / db / 1e6:,.0f} | {tb / db:.2f}x |")
dmed, dp95, tmed, tp95 = v[8:12]
print()
print("| connection setup | median ms | p95 ms |")
print("|---|---:|---:|")
print(f"| direct TCP connect + first byte | {dmed * 1e3:.3f} | {dp95 * 1e3:.3f} |")
print(f"| tunnel: connect + upgrade + init + connected | {tmed * 1e3:.3f} | {tp95 * 1e3:.3f} |")
EOF

// bench/engine_bench.mjs: benchmarks of the local engine (spritescript serve),
// each next to a floor measured in the same run. bench/engine.sh starts the
// engines and runs this; see bench/README.md ("The engine") for what every
// number means.
//
// Environment (engine.sh sets the first four):
//   BENCH_URL, BENCH_TOKEN    an engine with default idle timeouts
//   BENCH_WAKE_URL            an engine started with --idle-timeout 300ms --cold-timeout 300ms
//   BENCH_ENGINE_PID          the first engine's pid (its CPU time is read from /proc)
//   CREATE_RUNS=20 WAKE_RUNS=20 RT_RUNS=200 STREAM_RUNS=3 STREAM_BYTES=1073741824
//   SECTIONS="create wake rt stream"   which benchmarks to run
//
// Clients: Node's global fetch (keep-alive) for REST and HTTP exec; for
// WebSocket exec both Node's global WebSocket (undici; Node 20 needs
// --experimental-websocket, it is skipped when absent) and a minimal client
// written here on a raw TCP socket, which shows what the client side costs.
// The HTTP exec streaming test also has a raw client, which reads the chunked
// encoding itself: it is the only way to see the frame boundaries (spec §4),
// so it is the one that counts stdout payload bytes exactly.
import net from 'node:net';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';

const env = process.env;
const url = new URL(env.BENCH_URL ?? die('BENCH_URL is not set'));
const wakeUrl = env.BENCH_WAKE_URL ? new URL(env.BENCH_WAKE_URL) : null;
const token = env.BENCH_TOKEN ?? die('BENCH_TOKEN is not set');
const enginePid = env.BENCH_ENGINE_PID ? Number(env.BENCH_ENGINE_PID) : 0;
const CREATE_RUNS = int('CREATE_RUNS', 20);
const WAKE_RUNS = int('WAKE_RUNS', 20);
const RT_RUNS = int('RT_RUNS', 200);
const STREAM_RUNS = int('STREAM_RUNS', 3);
const STREAM_BYTES = int('STREAM_BYTES', 1073741824);
const SECTIONS = (env.SECTIONS ?? 'create wake rt stream').split(/\s+/).filter(Boolean);
const HAVE_WS = typeof globalThis.WebSocket === 'function';
const auth = { Authorization: `Bearer ${token}` };

function die(message) {
  console.error(`engine_bench: ${message}`);
  process.exit(2);
}
function int(name, fallback) {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) die(`${name} must be a positive integer, got '${v}'`);
  return n;
}
const now = () => performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const progress = (text) => process.stderr.write(`running: ${text}\n`);

// ---- statistics ----------------------------------------------------------
function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  const rank = (p) => s[Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1))];
  const median = n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  return { n, median, p90: rank(0.9), min: s[0], max: s[n - 1], mean: s.reduce((a, b) => a + b, 0) / n };
}

// ---- CPU time ------------------------------------------------------------
const CLK_TCK = 100; // Linux's USER_HZ on every architecture we run on
function engineCpuMs() {
  if (!enginePid) return NaN;
  try {
    const stat = fs.readFileSync(`/proc/${enginePid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK; // utime + stime
  } catch {
    return NaN;
  }
}
function clientCpuMs() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

// ---- REST ----------------------------------------------------------------
async function api(base, method, path, body) {
  const init = { method, headers: { ...auth } };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(new URL(path, base), init);
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}
const createSprite = (base, name) => api(base, 'POST', '/v1/sprites', { name });
const deleteSprite = (base, name) => api(base, 'DELETE', `/v1/sprites/${name}`);
const getSprite = (base, name) => api(base, 'GET', `/v1/sprites/${name}`);

function execQuery(argv) {
  const q = new URLSearchParams();
  for (const a of argv) q.append('cmd', a);
  q.append('path', argv[0]);
  return q.toString();
}

// ---- WebSocket exec, Node's WebSocket ------------------------------------
// Resolves once the socket is closed: { exit (ms to the exit frame), closed
// (ms to the close event), code, stdout (payload bytes of 0x01 frames) }.
function wsExec(base, name, argv) {
  return new Promise((resolve, reject) => {
    const wsBase = base.href.replace(/^http/, 'ws');
    const t0 = now();
    let exit = NaN, code = -1, stdout = 0;
    const ws = new WebSocket(new URL(`/v1/sprites/${name}/exec?${execQuery(argv)}`, wsBase), { headers: auth });
    ws.binaryType = 'arraybuffer';
    ws.onmessage = (e) => {
      if (typeof e.data === 'string') return; // session_info
      const b = new Uint8Array(e.data);
      if (b.length === 0) return;
      if (b[0] === 1) stdout += b.length - 1;
      else if (b[0] === 3) {
        exit = now() - t0;
        code = b.length > 1 ? b[1] : 0;
        ws.close(1000);
      }
    };
    ws.onerror = (e) => reject(new Error(`WebSocket exec ${argv.join(' ')}: ${e.message ?? 'error'}`));
    ws.onclose = () => {
      if (Number.isNaN(exit)) reject(new Error(`WebSocket exec ${argv.join(' ')}: closed before the exit frame`));
      else resolve({ exit, closed: now() - t0, code, stdout });
    };
  });
}

// ---- WebSocket exec, raw client ------------------------------------------
// The same exchange on a bare TCP socket: handshake, then server frames are
// parsed in place (unmasked; one message per frame, the engine does not
// fragment). After the exit frame it sends a masked close and waits for the
// server to close.
function rawWsExec(base, name, argv, collect = null) {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const key = crypto.randomBytes(16).toString('base64');
    const sock = net.connect(Number(base.port), base.hostname);
    sock.setNoDelay(true);
    let head = Buffer.alloc(0), upgraded = false;
    let exit = NaN, open = NaN, code = -1, stdout = 0, frames = 0, bad = '';
    // frame parser state
    const hdr = Buffer.alloc(14);
    let hdrHave = 0, hdrNeed = 2, inPayload = false, remaining = 0, pos = 0, opcode = 0, id = -1;
    const fail = (why) => {
      bad = why;
      sock.destroy();
    };
    const frameDone = () => {
      if (opcode === 0x8) { // server close: we are done
        sock.end();
      } else if (opcode === 0x2 && id === 3) {
        exit = now() - t0;
        // masked close frame, code 1000, mask 0
        sock.write(Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]));
      }
      inPayload = false;
      hdrHave = 0;
      hdrNeed = 2;
    };
    const parse = (buf) => {
      let off = 0;
      while (off < buf.length) {
        if (!inPayload) {
          while (hdrHave < hdrNeed && off < buf.length) hdr[hdrHave++] = buf[off++];
          if (hdrHave < hdrNeed) return;
          if (hdrNeed === 2) {
            const l = hdr[1] & 0x7f;
            hdrNeed = 2 + (l === 126 ? 2 : l === 127 ? 8 : 0) + (hdr[1] & 0x80 ? 4 : 0);
            if (hdrHave < hdrNeed) continue;
          }
          if (!(hdr[0] & 0x80)) return fail('fragmented message');
          if (hdr[1] & 0x80) return fail('masked server frame');
          opcode = hdr[0] & 0x0f;
          const l = hdr[1] & 0x7f;
          remaining = l === 126 ? hdr.readUInt16BE(2) : l === 127 ? Number(hdr.readBigUInt64BE(2)) : l;
          frames++;
          inPayload = true;
          pos = 0;
          id = -1;
          if (remaining === 0) frameDone();
          continue;
        }
        const n = Math.min(remaining, buf.length - off);
        if (opcode === 0x2) {
          if (pos === 0) {
            id = buf[off];
            if (id === 1) stdout += remaining - 1;
          }
          if (collect && id === 1) collect.push(Buffer.from(buf.subarray(off + (pos === 0 ? 1 : 0), off + n)));
          if (id === 3 && pos <= 1 && pos + n > 1) code = buf[off + 1 - pos];
        }
        pos += n;
        off += n;
        remaining -= n;
        if (remaining === 0) {
          if (opcode === 0x2 && id === 3 && code < 0) code = 0;
          frameDone();
        }
      }
    };
    sock.on('connect', () => {
      sock.write(
        `GET /v1/sprites/${name}/exec?${execQuery(argv)} HTTP/1.1\r\nHost: ${base.host}\r\n` +
          `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
          `Sec-WebSocket-Version: 13\r\nAuthorization: Bearer ${token}\r\n\r\n`,
      );
    });
    sock.on('data', (chunk) => {
      if (upgraded) return parse(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const status = head.subarray(0, head.indexOf('\r\n')).toString();
      if (!/^HTTP\/1\.1 101/.test(status)) return fail(`upgrade refused: ${head.subarray(0, end)}`);
      upgraded = true;
      open = now() - t0;
      const rest = head.subarray(end + 4);
      head = null;
      if (rest.length) parse(rest);
    });
    sock.on('error', (e) => { if (!bad) bad = e.message; });
    sock.on('close', () => {
      if (bad || Number.isNaN(exit)) reject(new Error(`raw WebSocket exec ${argv.join(' ')}: ${bad || 'closed before the exit frame'}`));
      else resolve({ exit, open, closed: now() - t0, code, stdout, frames });
    });
  });
}

// ---- HTTP exec, fetch ----------------------------------------------------
// { exit (ms to the end of the body), code, bytes (body bytes), reads, misaligned
// (reads that did not start with a stream id: a client that takes each read
// as a frame, as the JS SDK does, would fail on them) }.
async function httpExec(base, name, argv) {
  const t0 = now();
  const res = await fetch(new URL(`/v1/sprites/${name}/exec?${execQuery(argv)}`, base), { method: 'POST', headers: auth });
  if (res.status !== 200) throw new Error(`HTTP exec ${argv.join(' ')}: ${res.status} ${await res.text()}`);
  let bytes = 0, reads = 0, misaligned = 0, tail = new Uint8Array(0);
  for await (const chunk of res.body) {
    bytes += chunk.length;
    reads++;
    if (chunk[0] < 1 || chunk[0] > 3) misaligned++;
    tail = chunk.length >= 2 ? chunk.subarray(chunk.length - 2) : Uint8Array.from([...tail, ...chunk].slice(-2));
  }
  const exit = now() - t0;
  if (tail.length !== 2 || tail[0] !== 3) throw new Error(`HTTP exec ${argv.join(' ')}: the body does not end in an exit frame`);
  return { exit, code: tail[1], bytes, reads, misaligned };
}

// ---- HTTP exec, raw client -----------------------------------------------
// Reads the chunked encoding itself, so every chunk is a frame: stdout payload
// bytes are counted exactly, and a chunk that does not start with a stream id
// is an error.
function rawHttpExec(base, name, argv) {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const sock = net.connect(Number(base.port), base.hostname);
    sock.setNoDelay(true);
    let head = Buffer.alloc(0), inBody = false, bad = '';
    let exit = NaN, code = -1, stdout = 0, frames = 0, badFrames = 0;
    // chunk parser: 'size' (reading the hex line), 'data', 'crlf' (after data), 'done'
    let state = 'size', line = '', remaining = 0, pos = 0, id = -1, crlf = 0;
    const parse = (buf) => {
      let off = 0;
      while (off < buf.length && state !== 'done') {
        if (state === 'size') {
          const nl = buf.indexOf(10, off);
          if (nl < 0) {
            line += buf.toString('latin1', off);
            return;
          }
          line += buf.toString('latin1', off, nl);
          off = nl + 1;
          remaining = parseInt(line, 16);
          line = '';
          if (Number.isNaN(remaining)) {
            bad = 'bad chunk size line';
            return sock.destroy();
          }
          if (remaining === 0) {
            state = 'done';
            exit = now() - t0;
            sock.destroy();
            return;
          }
          frames++;
          state = 'data';
          pos = 0;
          id = -1;
          continue;
        }
        if (state === 'data') {
          const n = Math.min(remaining, buf.length - off);
          if (pos === 0) {
            id = buf[off];
            if (id === 1) stdout += remaining - 1;
            else if (id !== 2 && id !== 3) badFrames++;
          }
          if (id === 3 && pos <= 1 && pos + n > 1) code = buf[off + 1 - pos];
          pos += n;
          off += n;
          remaining -= n;
          if (remaining === 0) {
            state = 'crlf';
            crlf = 2;
          }
          continue;
        }
        if (state === 'crlf') {
          const n = Math.min(crlf, buf.length - off);
          off += n;
          crlf -= n;
          if (crlf === 0) state = 'size';
        }
      }
    };
    sock.on('connect', () => {
      sock.write(
        `POST /v1/sprites/${name}/exec?${execQuery(argv)} HTTP/1.1\r\nHost: ${base.host}\r\n` +
          `Authorization: Bearer ${token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
      );
    });
    sock.on('data', (chunk) => {
      if (inBody) return parse(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const text = head.subarray(0, end).toString('latin1');
      if (!/^HTTP\/1\.1 200/.test(text) || !/\r\ntransfer-encoding: *chunked/i.test(text)) {
        bad = `unexpected response: ${text.split('\r\n')[0]}`;
        return sock.destroy();
      }
      inBody = true;
      const rest = head.subarray(end + 4);
      head = null;
      if (rest.length) parse(rest);
    });
    sock.on('error', (e) => { if (!bad) bad = e.message; });
    sock.on('close', () => {
      if (bad || Number.isNaN(exit)) reject(new Error(`raw HTTP exec ${argv.join(' ')}: ${bad || 'the body ended early'}`));
      else resolve({ exit, code, stdout, frames, badFrames });
    });
  });
}

// ---- host floors -----------------------------------------------------------
function spawnSyncTrue(n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const t0 = now();
    const r = spawnSync('true');
    out.push(now() - t0);
    if (r.status !== 0) throw new Error('spawnSync(true) failed');
  }
  return out;
}
// n runs of /bin/true from one bash, each timed with $EPOCHREALTIME (µs).
const BASH_TRUE =
  'n=$1; out=(); for ((i = 0; i < n; i++)); do t0=${EPOCHREALTIME//[!0-9]/}; /bin/true; ' +
  't1=${EPOCHREALTIME//[!0-9]/}; out+=($((t1 - t0))); done; echo "${out[@]}"';
const parseMicros = (text) => text.trim().split(/\s+/).map((us) => Number(us) / 1000);
function bashTrue(n) {
  const r = spawnSync('bash', ['-c', BASH_TRUE, 'bash', String(n)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bash loop failed: ${r.stderr}`);
  return parseMicros(r.stdout);
}
// The same loop inside a sprite (one exec; its stdout carries the times).
async function bashTrueInSprite(base, name, n) {
  const out = [];
  const r = await rawWsExec(base, name, ['bash', '-c', BASH_TRUE, 'bash', String(n)], out);
  if (r.code !== 0) throw new Error(`bash loop in the sprite exited ${r.code}`);
  return parseMicros(Buffer.concat(out).toString());
}
// `head -c N /dev/zero | cat > /dev/null`, timed inside bash (ms).
function bashPipe(bytes) {
  const script = 't0=${EPOCHREALTIME//[!0-9]/}; head -c "$1" /dev/zero | cat > /dev/null; t1=${EPOCHREALTIME//[!0-9]/}; echo $((t1 - t0))';
  const r = spawnSync('bash', ['-c', script, 'bash', String(bytes)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`pipe floor failed: ${r.stderr}`);
  return Number(r.stdout.trim()) / 1000;
}
// Node reading `head -c N /dev/zero`'s stdout: { ms, bytes }.
function nodePipe(bytes) {
  return new Promise((resolve, reject) => {
    const t0 = now();
    let n = 0;
    const child = spawn('head', ['-c', String(bytes), '/dev/zero'], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.on('data', (c) => { n += c.length; });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve({ ms: now() - t0, bytes: n }) : reject(new Error(`head exited ${code}`))));
  });
}

// ---- the table -------------------------------------------------------------
const rows = [];
const notes = [];
const fmt = (x, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : '-');
function row(metric, s, unit, vs = '', target = '') {
  rows.push({ metric, s, unit, vs, target });
}
function section(title) {
  rows.push({ title });
}
function printTable() {
  const w = Math.max(...rows.filter((r) => r.metric).map((r) => r.metric.length)) + 2;
  const line = (m, a, b, c, d, e, f) =>
    `  ${m.padEnd(w)}${a.padStart(9)}${b.padStart(9)}${c.padStart(9)}${d.padStart(9)}  ${e.padEnd(22)}${f}`.trimEnd();
  console.log(line('metric', 'median', 'p90', 'min', 'max', 'vs floor', 'target'));
  for (const r of rows) {
    if (r.title) {
      console.log(`  ${r.title}`);
      continue;
    }
    const d = r.unit === 'GB/s' ? 2 : r.s.median < 10 ? 2 : 1;
    const u = r.unit === 'ms' ? '' : ` ${r.unit}`;
    console.log(line(r.metric, fmt(r.s.median, d) + u, r.s.n > 1 && r.unit === 'ms' ? fmt(r.s.p90, d) : '', fmt(r.s.min, d), fmt(r.s.max, d), r.vs, r.target));
  }
  console.log('  (ms unless marked; p90 by nearest rank; GB/s = 10^9 bytes/s; for throughput, median/min/max of the runs)');
  for (const n of notes) console.log(`  ${n}`);
}
const verdict = (ok) => (ok ? 'met' : 'NOT met');
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(1)}x` : '');

// ---- 1. create to first exec ------------------------------------------------
async function benchCreate() {
  const total = [], create = [], first = [], del = [];
  for (let i = 0; i < CREATE_RUNS; i++) {
    progress(`create-to-first-exec ${i + 1}/${CREATE_RUNS}`);
    const name = `bench-create-${i}`;
    const t0 = now();
    await createSprite(url, name);
    const t1 = now();
    const r = HAVE_WS ? await wsExec(url, name, ['true']) : await rawWsExec(url, name, ['true']);
    const t2 = t1 + r.exit;
    if (r.code !== 0) throw new Error(`true exited ${r.code}`);
    total.push(t2 - t0);
    create.push(t1 - t0);
    first.push(r.exit);
    const t3 = now();
    await deleteSprite(url, name);
    del.push(now() - t3);
  }
  section(`1. create to first exec (${CREATE_RUNS} fresh sprites, WebSocket exec of true, ${HAVE_WS ? "Node's WebSocket" : 'raw client'})`);
  row('POST /v1/sprites + first exec to exit', stats(total), 'ms');
  row('  POST /v1/sprites alone', stats(create), 'ms');
  row('  first exec (sandbox start + true)', stats(first), 'ms');
  row('DELETE (stops the sandbox; not in total)', stats(del), 'ms');
}

// ---- 2. wake from cold and from warm ------------------------------------------
async function waitStatus(name, want, limitMs = 15000) {
  const t0 = now();
  for (;;) {
    const s = await getSprite(wakeUrl, name);
    if (s.status === want) return s;
    if (now() - t0 > limitMs) throw new Error(`${name} did not become ${want} within ${limitMs} ms (status ${s.status})`);
    await sleep(5);
  }
}
async function benchWake() {
  if (!wakeUrl) {
    notes.push('wake: skipped (BENCH_WAKE_URL not set)');
    return;
  }
  const exec = HAVE_WS ? wsExec : rawWsExec;
  const name = 'bench-wake';
  await createSprite(wakeUrl, name);
  await exec(wakeUrl, name, ['true']);
  const results = {};
  for (const from of ['cold', 'warm']) {
    const wake = [], after = [];
    let misses = 0;
    for (let i = 0; i < WAKE_RUNS; i++) {
      progress(`wake from ${from} ${i + 1}/${WAKE_RUNS}`);
      // A running sprite first, then wait for the state.
      const before = await exec(wakeUrl, name, ['true']);
      if (before.code !== 0) throw new Error('true failed');
      const s0 = await waitStatus(name, from);
      const r = await exec(wakeUrl, name, ['true']);
      const s1 = await getSprite(wakeUrl, name);
      // last_running_at changes on a sandbox start only: a warm wake that
      // started a sandbox was really cold (the poll came too late).
      const started = s1.last_running_at !== s0.last_running_at;
      if (started !== (from === 'cold')) misses++;
      if (s1.status !== 'running') throw new Error(`after the wake: ${s1.status}`);
      wake.push(r.exit);
      after.push((await exec(wakeUrl, name, ['true'])).exit);
    }
    results[from] = { wake: stats(wake), after: stats(after), afterSamples: after, misses };
  }
  await deleteSprite(wakeUrl, name);
  const runningMedian = stats([...results.cold.afterSamples, ...results.warm.afterSamples]).median;
  section(`2. wake (${WAKE_RUNS} runs each; engine with --idle-timeout 300ms --cold-timeout 300ms; exec of true to its exit frame)`);
  for (const from of ['cold', 'warm']) {
    const r = results[from];
    row(`exec on a ${from} sprite`, r.wake, 'ms', `${ratio(r.wake.median, runningMedian)} running`, `< 100 ms: ${verdict(r.wake.median < 100)}`);
    if (r.misses) notes.push(`wake from ${from}: ${r.misses} of ${WAKE_RUNS} runs found the sprite in another state than intended`);
  }
  row('next exec (running), after a cold wake', results.cold.after, 'ms', '', 'reference');
  row('next exec (running), after a warm wake', results.warm.after, 'ms', '', 'reference');
}

// ---- 3. exec round trip --------------------------------------------------------
async function benchRoundTrip() {
  const name = 'bench-rt';
  await createSprite(url, name);
  const contenders = [];
  if (HAVE_WS) contenders.push(['ws', () => wsExec(url, name, ['true'])]);
  contenders.push(['rawws', () => rawWsExec(url, name, ['true'])]);
  contenders.push(['http', () => httpExec(url, name, ['true'])]);
  progress('exec round trip: warm-up');
  for (let i = 0; i < 20; i++) for (const [, f] of contenders) await f();
  spawnSyncTrue(20);
  bashTrue(20);
  await bashTrueInSprite(url, name, 20);
  const samples = { ws: [], wsClosed: [], rawws: [], rawwsOpen: [], http: [], get: [], spawnSync: [], bash: [], sprite: [] };
  // Rounds: every contender runs a block in turn, so a slow moment of the
  // machine hits them all alike.
  const rounds = 4;
  const per = Math.ceil(RT_RUNS / rounds);
  for (let round = 0; round < rounds; round++) {
    progress(`exec round trip: round ${round + 1}/${rounds} (${per} runs per contender)`);
    for (const [key, f] of contenders) {
      for (let i = 0; i < per; i++) {
        const r = await f();
        if (r.code !== 0) throw new Error(`${key}: true exited ${r.code}`);
        samples[key].push(r.exit);
        if (key === 'ws') samples.wsClosed.push(r.closed);
        if (key === 'rawws') samples.rawwsOpen.push(r.open);
      }
    }
    for (let i = 0; i < per; i++) {
      const t0 = now();
      await getSprite(url, name);
      samples.get.push(now() - t0);
    }
    samples.spawnSync.push(...spawnSyncTrue(per));
    samples.bash.push(...bashTrue(per));
    samples.sprite.push(...(await bashTrueInSprite(url, name, per)));
  }
  await deleteSprite(url, name);
  const floor = stats(samples.spawnSync).median;
  const bashFloor = stats(samples.bash).median;
  const vs = (s) => `${ratio(s.median, bashFloor)} bash, ${ratio(s.median, floor)} sS`;
  const n = rounds * per;
  section(`3. exec round trip of true (${n} sequential runs each, running sprite; floors: true on the host)`);
  const target = (s) => `< 5 ms: ${verdict(s.median < 5)}`;
  if (HAVE_WS) {
    const s = stats(samples.ws);
    row("WebSocket exec (Node's WebSocket), to exit", s, 'ms', vs(s), target(s));
    row('  the same, to the close event', stats(samples.wsClosed), 'ms', vs(stats(samples.wsClosed)));
  }
  const raw = stats(samples.rawws);
  row('WebSocket exec (raw client), to exit', raw, 'ms', vs(raw), target(raw));
  row('  the same, to the 101 (process spawned)', stats(samples.rawwsOpen), 'ms');
  const http = stats(samples.http);
  row('HTTP exec (fetch, keep-alive), to end', http, 'ms', vs(http), target(http));
  row('GET /v1/sprites/NAME (fetch, keep-alive)', stats(samples.get), 'ms', '', 'reference: REST');
  row("floor: node spawnSync('true') (sS)", stats(samples.spawnSync), 'ms');
  row('floor: /bin/true from a bash loop (bash)', stats(samples.bash), 'ms', `${ratio(bashFloor, floor)} sS`);
  row('  the same loop inside the sprite', stats(samples.sprite), 'ms', `${ratio(stats(samples.sprite).median, bashFloor)} bash`);
}

// ---- 4. stdout streaming throughput -------------------------------------------
async function benchStream() {
  const name = 'bench-stream';
  await createSprite(url, name);
  const argv = ['head', '-c', String(STREAM_BYTES), '/dev/zero'];
  const gib = (STREAM_BYTES / 2 ** 30).toFixed(STREAM_BYTES % 2 ** 30 ? 2 : 0);
  await rawWsExec(url, name, ['true']); // start the sandbox
  const contenders = [
    ['pipe', 'floor: head | cat > /dev/null (bash)', async () => ({ ms: bashPipe(STREAM_BYTES), bytes: STREAM_BYTES })],
    ['nodepipe', "floor: node reading head's stdout", async () => nodePipe(STREAM_BYTES)],
  ];
  if (HAVE_WS) contenders.push(['ws', "WebSocket (Node's WebSocket), 0x01 payload", async () => {
    const r = await wsExec(url, name, argv);
    return { ms: r.exit, bytes: r.stdout, code: r.code };
  }]);
  contenders.push(['rawws', 'WebSocket (raw client), 0x01 payload', async () => {
    const r = await rawWsExec(url, name, argv);
    return { ms: r.exit, bytes: r.stdout, code: r.code, frames: r.frames };
  }]);
  contenders.push(['rawhttp', 'HTTP exec (raw chunk parser), 0x01 payload', async () => {
    const r = await rawHttpExec(url, name, argv);
    return { ms: r.exit, bytes: r.stdout, code: r.code, frames: r.frames, badFrames: r.badFrames };
  }]);
  contenders.push(['fetch', 'HTTP exec (fetch), body bytes', async () => {
    const r = await httpExec(url, name, argv);
    return { ms: r.exit, bytes: r.bytes, code: r.code, reads: r.reads, misaligned: r.misaligned };
  }]);
  const res = Object.fromEntries(contenders.map(([k]) => [k, { rate: [], engineCpu: [], clientCpu: [], extra: [] }]));
  for (let run = 0; run < STREAM_RUNS; run++) {
    for (const [key, label, f] of contenders) {
      progress(`streaming ${gib} GiB, run ${run + 1}/${STREAM_RUNS}: ${label}`);
      const e0 = engineCpuMs(), c0 = clientCpuMs();
      const r = await f();
      const e1 = engineCpuMs(), c1 = clientCpuMs();
      if (r.code !== undefined && r.code !== 0) throw new Error(`${label}: head exited ${r.code}`);
      const expect = key === 'fetch' ? null : STREAM_BYTES;
      if (expect !== null && r.bytes !== expect) throw new Error(`${label}: got ${r.bytes} bytes, expected ${expect}`);
      if (key === 'fetch' && r.bytes < STREAM_BYTES) throw new Error(`${label}: body of ${r.bytes} bytes is short`);
      res[key].rate.push(r.bytes / r.ms / 1e6); // GB/s
      res[key].engineCpu.push(((e1 - e0) / r.ms) * 100);
      res[key].clientCpu.push(((c1 - c0) / r.ms) * 100);
      res[key].extra.push(r);
    }
  }
  await deleteSprite(url, name);
  const pipe = stats(res.pipe.rate).median;
  section(`4. stdout streaming, ${gib} GiB of head -c ${STREAM_BYTES} /dev/zero (${STREAM_RUNS} runs each, GB/s)`);
  for (const [key, label] of contenders) {
    const s = stats(res[key].rate);
    const engineSide = !['pipe', 'nodepipe'].includes(key);
    const target = engineSide ? `>= 1 GB/s or >= ${fmt(pipe / 2)}: ${verdict(s.median >= 1 || s.median >= pipe / 2)}` : '';
    row(label, s, 'GB/s', key === 'pipe' ? '' : `${(s.median / pipe).toFixed(2)}x pipe`, target);
  }
  for (const [key, label] of contenders) {
    if (['pipe'].includes(key)) continue;
    const cpu = (a) => fmt(stats(a).median, 0);
    const x = res[key].extra[0];
    let detail = '';
    if (x.frames) detail += `, ${x.frames} frames`;
    if (x.reads) detail += `, ${x.reads} reads, ${x.misaligned} not starting with a stream id`;
    if (x.badFrames) detail += `, ${x.badFrames} bad frames`;
    const who = key === 'nodepipe' ? 'node' : `engine ${cpu(res[key].engineCpu)}%, client`;
    notes.push(`CPU ${label}: ${who} ${cpu(res[key].clientCpu)}% of one core${detail} (run 1)`);
  }
}

// ---- main ----------------------------------------------------------------------
try {
  if (!HAVE_WS) notes.push("Node's global WebSocket is absent (Node 20: --experimental-websocket): raw client only");
  if (SECTIONS.includes('create')) await benchCreate();
  if (SECTIONS.includes('wake')) await benchWake();
  if (SECTIONS.includes('rt')) await benchRoundTrip();
  if (SECTIONS.includes('stream')) await benchStream();
} catch (e) {
  console.error(`engine_bench: ${e.stack ?? e}`);
  printTable();
  process.exit(1);
}
printTable();

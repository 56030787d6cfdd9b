// bench/client_bench.mjs: the JS side of bench/client.sh, the official JS
// SDK (@fly/sprites from npm, unchanged) running the same benchmarks as
// bench/client_bench.cpp against the same local engine. Each subcommand runs
// one benchmark in a fresh process and prints one JSON line of results (on
// stdout; errors on stderr), so that the peak RSS it reports is that
// benchmark's.
//
//   node [--experimental-websocket] bench/client_bench.mjs COMMAND ...
//
//   seq N            N sequential `true` execs: sprite.execFile('true') (WebSocket)
//   par N K          N `true` execs, K in flight at once
//   stream BYTES     `head -c BYTES /dev/zero` through sprite.spawn(), the bytes
//                    of cmd.stdout's 'data' events counted, never kept
//   sessions N [K]   N `sleep 600` spawned and open at once (at most K opening
//                    at a time, default 64), RSS measured while all are open,
//                    then each killed (signal KILL) and waited for
//
// Environment: SPRITES_API_URL, SPRITES_TOKEN, BENCH_SPRITE (default
// "bench"), BENCH_SDK_DIR (a directory whose node_modules holds
// @fly/sprites; default tests/sdk/js), WARMUP (default 20 untimed execs
// before seq and par). Node 20 needs --experimental-websocket (the SDK uses
// the global WebSocket).
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const env = process.env;
const here = path.dirname(fileURLToPath(import.meta.url));
const sdkDir = path.resolve(env.BENCH_SDK_DIR ?? path.join(here, '..', 'tests', 'sdk', 'js'));

function die(message, status = 1) {
  process.stderr.write(`client_bench.mjs: ${message}\n`);
  process.exit(status);
}
function positive(text, what) {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) die(`${what} must be a positive integer, got '${text}'`, 2);
  return n;
}
// `report FILE`: the table of bench/client.sh from the JSON lines of every
// run (this process needs no SDK and no WebSocket).
if (process.argv[2] === 'report') {
  report(process.argv[3] ?? die('report: no results file', 2));
  process.exit(0);
}
function report(file) {
  const runs = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const of = (client, bench) => runs.filter((r) => r.client === client && r.bench === bench && !r.failed && r.round > 0);
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    const n = s.length;
    return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  };
  const fmt = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
  const mib = (kb) => (kb > 0 ? kb / 1024 : NaN);
  const rows = [];
  const notes = [];
  const row = (name, cpp, js, ratio, target) => rows.push([name, cpp, js, ratio, target]);
  const rate = (bench, key, label, digits, minRatio) => {
    const c = of('cpp', bench), j = of('js', bench);
    if (!c.length && !j.length) return;
    const cm = median(c.map((r) => r[key])), jm = median(j.map((r) => r[key]));
    const spread = (rs) => (rs.length > 1 ? ` (${fmt(Math.min(...rs.map((r) => r[key])), digits)}-${fmt(Math.max(...rs.map((r) => r[key])), digits)})` : '');
    const ratio = cm / jm;
    row(label, fmt(cm, digits) + spread(c), fmt(jm, digits) + spread(j), `${fmt(ratio, 2)}x`,
      Number.isFinite(ratio) ? `>= ${minRatio}x JS: ${ratio >= minRatio ? 'met' : 'NOT met'}` : 'n/a');
    for (const [who, rs] of [['C++', c], ['JS', j]]) {
      if (!rs.length) continue;
      const r = rs[0];
      const cpu = median(rs.map((x) => x.cpu_s));
      const eng = median(rs.map((x) => x.engine_cpu_s));
      const secs = median(rs.map((x) => x.seconds));
      if (bench === 'stream') {
        notes.push(`${label}, ${who}: client CPU ${fmt((100 * cpu) / secs, 0)}% of one core, engine ${fmt((100 * eng) / secs, 0)}%, ${r.messages} messages/chunks (medians)`);
      } else {
        const execs = r.n + Number(process.env.WARMUP ?? 20);
        notes.push(`${label}, ${who}: client CPU ${fmt((1000 * cpu) / execs, 2)} ms per exec, engine CPU ${fmt((1000 * eng) / execs, 2)} ms per exec (whole process, warm-up included; medians)`);
      }
    }
  };
  const memory = (bench, label) => {
    const c = of('cpp', bench), j = of('js', bench);
    if (!c.length && !j.length) return;
    const cm = mib(Math.max(...c.map((r) => r.vmhwm_kb))), jm = mib(Math.max(...j.map((r) => r.vmhwm_kb)));
    row(label, fmt(cm), fmt(jm), `${fmt(cm / jm, 2)}x`, Number.isFinite(cm / jm) ? `lower: ${cm < jm ? 'met' : 'NOT met'}` : 'n/a');
  };
  const seq = of('cpp', 'seq')[0] ?? of('js', 'seq')[0];
  const par = of('cpp', 'par')[0] ?? of('js', 'par')[0];
  const stream = of('cpp', 'stream')[0] ?? of('js', 'stream')[0];
  const rounds = Math.max(0, ...runs.map((r) => r.round ?? 0));
  if (seq) rate('seq', 'execs_per_s', `1. ${seq.n} sequential true, execs/s`, 1, 2);
  if (par) rate('par', 'execs_per_s', `2. ${par.n} true, ${par.in_flight} in flight, execs/s`, 1, 2);
  if (stream) rate('stream', 'gb_per_s', `3. stream ${fmt(stream.bytes / 2 ** 30, 2)} GiB stdout, GB/s`, 3, 2);
  if (seq) memory('seq', '4. peak RSS, sequential run, MiB');
  if (par) memory('par', '4. peak RSS, in-flight run, MiB');
  if (stream) memory('stream', '4. peak RSS, streaming run, MiB');
  const sc = of('cpp', 'sessions')[0], sj = of('js', 'sessions')[0];
  if (sc || sj) {
    const open = (r) => (r ? `${fmt(mib(r.hwm_open_kb))} (${r.opened} open)` : 'n/a');
    const ok = sc && sc.opened === sc.n;
    row(`5. ${(sc ?? sj).n} sessions open, peak RSS, MiB`, open(sc), open(sj), sc && sj ? `${fmt(sc.hwm_open_kb / sj.hwm_open_kb, 2)}x` : '',
      sc ? `C++ < 100 MiB: ${ok && mib(sc.hwm_open_kb) < 100 ? 'met' : 'NOT met'}${ok ? '' : ` (only ${sc.opened} opened)`}` : 'n/a');
    for (const [who, r] of [['C++', sc], ['JS', sj]]) {
      if (!r) continue;
      notes.push(`sessions, ${who}: ${r.opened}/${r.n} opened in ${fmt(r.open_s, 2)} s (${r.opening_at_once} opening at a time); RSS ${fmt(mib(r.rss_before_kb))} MiB before, ${fmt(mib(r.rss_open_kb))} MiB with all open; killed ${r.killed} (${r.killing_at_once} at a time) in ${fmt(r.kill_s, 2)} s, ${r.kill_timed_out} not ended within the kill timeout; peak RSS of the whole process ${fmt(mib(r.vmhwm_kb))} MiB${r.error ? `; error: ${r.error}` : ''}${r.kill_error ? `; kill error: ${r.kill_error}` : ''}`);
    }
  }
  for (const r of runs.filter((x) => x.failed)) notes.push(`FAILED: ${r.client} ${r.bench}, round ${r.round}`);
  const head = ['benchmark', 'C++ client', 'JS SDK', 'C++/JS', 'target'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i])).join('  ').trimEnd();
  console.log(`medians of ${rounds} round(s) per client, (min-max) across them; peak RSS = VmHWM, the highest of the rounds`);
  console.log(line(head));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) console.log(line(r));
  if (notes.length) {
    console.log('');
    for (const n of notes) console.log(`  ${n}`);
  }
}

if (typeof globalThis.WebSocket !== 'function') {
  die('no global WebSocket (node 20 needs --experimental-websocket)', 2);
}

let sdk;
try {
  const resolved = createRequire(path.join(sdkDir, 'package.json')).resolve('@fly/sprites');
  sdk = await import(pathToFileURL(resolved).href);
} catch (e) {
  die(`cannot load @fly/sprites from ${sdkDir}/node_modules (npm ci there): ${e.message}`, 2);
}

const url = env.SPRITES_API_URL ?? die('SPRITES_API_URL is not set', 2);
const token = env.SPRITES_TOKEN ?? die('SPRITES_TOKEN is not set', 2);
const client = new sdk.SpritesClient(token, { baseURL: url });
const sprite = client.sprite(env.BENCH_SPRITE || 'bench');
const WARMUP = env.WARMUP === undefined || env.WARMUP === '' ? 20 : Number(env.WARMUP);

const now = () => performance.now();
function statusKb(key) {
  try {
    const m = fs.readFileSync('/proc/self/status', 'utf8').match(new RegExp(`^${key}:\\s*(\\d+)`, 'm'));
    return m ? Number(m[1]) : -1;
  } catch {
    return -1;
  }
}
function finish(fields) {
  const u = process.cpuUsage();
  const out = { client: 'js', ...fields, vmhwm_kb: statusKb('VmHWM'), vmrss_kb: statusKb('VmRSS'), cpu_s: (u.user + u.system) / 1e6 };
  process.stdout.write(JSON.stringify(out) + '\n');
}

async function runTrue() {
  const r = await sprite.execFile('true', []); // rejects with ExecError on a non-zero exit
  if (r.exitCode !== 0) throw new Error(`true exited ${r.exitCode}`);
}
async function warmUp() {
  for (let i = 0; i < WARMUP; i++) await runTrue();
}

async function seq(n) {
  await warmUp();
  const t0 = now();
  for (let i = 0; i < n; i++) await runTrue();
  const s = (now() - t0) / 1000;
  finish({ bench: 'seq', n, seconds: s, execs_per_s: n / s });
}

async function par(n, k) {
  await warmUp();
  let next = 0, done = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      await runTrue();
      done++;
    }
  };
  const t0 = now();
  const workers = [];
  for (let i = 0; i < k; i++) workers.push(worker());
  await Promise.all(workers);
  const s = (now() - t0) / 1000;
  finish({ bench: 'par', n, in_flight: k, seconds: s, execs_per_s: done / s });
}

async function stream(bytes) {
  const t0 = now();
  const cmd = sprite.spawn('head', ['-c', String(bytes), '/dev/zero']);
  let got = 0, chunks = 0;
  cmd.stdout.on('data', (chunk) => {
    got += chunk.length;
    chunks++;
  });
  const code = await new Promise((resolve, reject) => {
    cmd.on('error', reject);
    cmd.on('exit', resolve);
  });
  // 'exit' comes with the exit frame; the stdout stream may still hold data.
  if (!cmd.stdout.readableEnded) await new Promise((r) => cmd.stdout.once('end', r));
  const s = (now() - t0) / 1000;
  if (code !== 0 || got !== bytes) throw new Error(`stream: exit ${code}, ${got} of ${bytes} bytes`);
  finish({ bench: 'stream', bytes, messages: chunks, seconds: s, gb_per_s: bytes / s / 1e9 });
}

async function sessions(n, k) {
  const sleepS = env.SESSION_SLEEP ? positive(env.SESSION_SLEEP, 'SESSION_SLEEP') : 120;
  const killLimitMs = 1000 * (env.KILL_TIMEOUT ? positive(env.KILL_TIMEOUT, 'KILL_TIMEOUT') : 30);
  const killK = env.KILL_AT_ONCE ? positive(env.KILL_AT_ONCE, 'KILL_AT_ONCE') : k;
  const baseRss = statusKb('VmRSS');
  const open = [];
  let next = 0, firstError = '';
  const opener = async () => {
    while (!firstError && next < n) {
      next++;
      const cmd = sprite.spawn('sleep', [String(sleepS)]);
      let ended = false;
      const exited = new Promise((r) => cmd.once('exit', () => { ended = true; r(); }));
      const started = await new Promise((resolve) => {
        cmd.once('spawn', () => resolve(true));
        cmd.once('error', (e) => { if (!firstError) firstError = e.message; resolve(false); });
        cmd.once('exit', () => resolve(false));
      });
      if (started) open.push({ cmd, exited, ended: () => ended });
    }
  };
  const t0 = now();
  const openers = [];
  for (let i = 0; i < k; i++) openers.push(opener());
  await Promise.all(openers);
  const openS = (now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 500));
  const openRss = statusKb('VmRSS');
  const openHwm = statusKb('VmHWM');
  // Kill them K at a time, each waited for to its exit, within KILL_TIMEOUT.
  const t1 = now();
  let killNext = 0, killed = 0, timedOut = 0;
  const deadline = new Promise((r) => setTimeout(r, killLimitMs, 'timeout'));
  const killer = async () => {
    while (killNext < open.length) {
      const o = open[killNext++];
      o.cmd.kill('KILL');
      if ((await Promise.race([o.exited.then(() => 'exit'), deadline])) === 'timeout') return;
      killed++;
    }
  };
  const killers = [];
  for (let i = 0; i < killK; i++) killers.push(killer());
  await Promise.all(killers);
  const killS = (now() - t1) / 1000;
  for (const o of open) {
    if (!o.ended()) {
      timedOut++;
      o.cmd.wsCmd?.ws?.close?.(); // drop what is left (the SDK has no public abort)
    }
  }
  const fields = {
    bench: 'sessions', n, opening_at_once: k, opened: open.length, open_s: openS,
    rss_before_kb: baseRss, rss_open_kb: openRss, hwm_open_kb: openHwm,
    killing_at_once: killK, killed, kill_s: killS, kill_timed_out: timedOut,
  };
  if (firstError) fields.error = firstError;
  finish(fields);
}

const [command, ...rest] = process.argv.slice(2);
try {
  switch (command) {
    case 'seq': await seq(positive(rest[0], 'N')); break;
    case 'par': await par(positive(rest[0], 'N'), positive(rest[1], 'K')); break;
    case 'stream': await stream(positive(rest[0], 'BYTES')); break;
    case 'sessions': await sessions(positive(rest[0], 'N'), rest[1] ? positive(rest[1], 'K') : 64); break;
    default: die(`usage: client_bench.mjs seq N | par N K | stream BYTES | sessions N [K]`, 2);
  }
} catch (e) {
  die(`${command}: ${e.stack ?? e}`);
}
// The SDK leaves nothing that must finish; do not wait for lingering sockets.
process.exit(0);

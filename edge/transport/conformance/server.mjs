// Test helpers for the transport conformance checks. startServer uses the
// server at TRANSPORT_URL (run.sh starts one) or builds and starts the Go
// subserver (edge/transport/internal/subserver) itself.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const edgeDir = fileURLToPath(new URL('../..', import.meta.url));

export async function startServer() {
  if (process.env.TRANSPORT_URL) return { url: process.env.TRANSPORT_URL, stop: () => {} };
  const bin = join(mkdtempSync(join(tmpdir(), 'subserver-')), 'subserver');
  execFileSync('go', ['build', '-o', bin, './transport/internal/subserver'], { cwd: edgeDir, stdio: 'inherit' });
  const child = spawn(bin, [], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const [line] = await Promise.race([
    once(lines, 'line'),
    once(child, 'exit').then(([code]) => { throw new Error(`subserver exited with ${code}`); }),
  ]);
  return { url: line.trim(), stop: () => child.kill('SIGTERM') };
}

// query runs a GraphQL query over plain HTTP and returns the data.
export async function query(url, q, variables) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify({ query: q, variables }),
  });
  const body = await res.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

// sourceState reports how the ticks source tagged tag ended.
export async function sourceState(url, tag) {
  const data = await query(url, 'query($tag: String!) { source(tag: $tag) }', { tag });
  return data.source;
}

// eventually polls fn until it returns true or timeoutMs passes.
export async function eventually(what, fn, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// uniqueTag returns a tag no other test uses.
export function uniqueTag(prefix) {
  return `${prefix}-${process.pid}-${Math.random().toString(36).slice(2)}`;
}

// Starts the Go audit server (edge/gql/internal/auditserver) unless
// GRAPHQL_URL is set, and returns its URL and a stop function.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const edgeDir = fileURLToPath(new URL('../..', import.meta.url));

export async function startServer() {
  if (process.env.GRAPHQL_URL) return { url: process.env.GRAPHQL_URL, stop: () => {} };
  const bin = join(mkdtempSync(join(tmpdir(), 'gql-audit-')), 'auditserver');
  execFileSync('go', ['build', '-o', bin, './gql/internal/auditserver'], { cwd: edgeDir, stdio: 'inherit' });
  const child = spawn(bin, [], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const [line] = await Promise.race([
    once(lines, 'line'),
    once(child, 'exit').then(([code]) => { throw new Error(`auditserver exited with ${code}`); }),
  ]);
  return { url: line.trim(), stop: () => child.kill('SIGTERM') };
}

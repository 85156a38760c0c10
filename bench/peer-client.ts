// The PyTorch peer (bench/pytorch_peer.py) as a child process both scale benches drive: one JSON line per
// command on stdin, one per answer on stdout (the protocol is in the script's docstring).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface Peer {
  /** Times `n` calls of one case (a fresh random task / input each), in ms. */
  run(name: string, n: number): Promise<number[]>;
  close(): void;
  info: Record<string, unknown>;
}

export async function startPeer(k: number, threads: string): Promise<Peer> {
  const script = fileURLToPath(new URL('./pytorch_peer.py', import.meta.url));
  const child = spawn('/usr/bin/python3', [script, '--k', String(k), '--threads', threads], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error('the PyTorch peer exited (is python3-torch installed? see bench/pytorch_peer.py)');
    return JSON.parse(value) as Record<string, unknown>;
  };
  const info = await next();
  return {
    info,
    async run(name, n) {
      child.stdin.write(JSON.stringify({ case: name, runs: n }) + '\n');
      return (await next()).ms as number[];
    },
    close() {
      child.stdin.end(JSON.stringify({ quit: true }) + '\n');
    },
  };
}

export function median(xs: number[] | undefined): number | null {
  if (!xs || xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

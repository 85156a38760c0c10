/**
 * The Python client checks (test/system/grpc_check.py, test/system/oip_check.py; Debian python3-grpcio) against
 * a running server, each JSON line it prints reported as one check of the suite.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CheckFailure, type Suite } from './harness.ts';

export const PYTHON = process.env.SUPSUP_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
/** The Python clients, each with how many checks it reports when it runs them all. */
export const PYTHON_CLIENTS = {
  grpc: { script: 'test/system/grpc_check.py', checks: 9 },
  /** The Open Inference Protocol client written from the published documents (REST by hand, gRPC stubs). */
  oip: { script: 'test/system/oip_check.py', checks: 12 },
} as const;
const TIMEOUT_MS = 120_000;

/** Runs a client to completion (bounded); `label` prefixes every check's name. */
export async function pythonGrpcChecks(
  suite: Suite,
  o: { root: string; grpc: string; http: string; stubs: string; logFile: string; label: string; client?: keyof typeof PYTHON_CLIENTS },
): Promise<void> {
  const { script, checks: CHECKS } = PYTHON_CLIENTS[o.client ?? 'grpc'];
  const python = suite.spawn(PYTHON, [join(o.root, script), '--grpc', o.grpc, '--http', o.http, '--stubs', o.stubs], o.logFile, { cwd: o.root });
  suite.whenFailed(() => console.log(`--- ${o.logFile} (last lines) ---\n${python.tail()}`));
  const done = await Promise.race([python.exited, new Promise<undefined>((r) => setTimeout(r, TIMEOUT_MS))]);
  if (!done) python.kill('SIGKILL');
  let reported = 0;
  for (const line of python.output.split('\n')) {
    if (!line.startsWith('{')) continue;
    const r = JSON.parse(line) as { check: string; ok: boolean; detail: string };
    reported++;
    if (r.ok) suite.pass(`${o.label}: ${r.check}`, r.detail);
    else suite.fail(`${o.label}: ${r.check}`, new CheckFailure(r.detail));
  }
  if (!done || reported < CHECKS || done.code !== 0) {
    const how = done ? `exit ${done.code ?? done.signal}` : `no exit within ${TIMEOUT_MS / 1000} s`;
    suite.fail(`${o.label}: the client ran all its checks and exited 0`, new CheckFailure(`${reported} checks reported; ${how}\n${python.tail(20)}`));
  }
}

import type { EngineState } from '../runtime/model-runtime.ts';

/**
 * Liveness and readiness, shared by REST (/healthz, /readyz, OIP health) and gRPC (grpc.health.v1).
 * Live: the process answers and has not given up on its engine worker (after --max-engine-restarts failed
 * restarts it is not, so the orchestrator replaces it). Ready: the model is loaded and warmed up in a worker
 * that is up, and the server is not draining. Listeners hear every change of either.
 */
export class HealthState {
  private draining = false;
  private last: string;
  private readonly listeners: ((ready: boolean, live: boolean) => void)[] = [];

  constructor(private readonly engine: () => EngineState) {
    this.last = this.key();
  }

  get ready(): boolean {
    return !this.draining && this.engine() === 'ready';
  }

  get live(): boolean {
    return this.engine() !== 'failed';
  }

  /** Why not ready (or not live), for the health answers. */
  get reason(): string | undefined {
    const state = this.engine();
    if (state === 'failed') return 'the engine worker could not be restarted: this process waits to be replaced';
    if (this.draining) return 'draining: the server is shutting down';
    if (state === 'starting') return 'the model is loading or warming up';
    if (state === 'restarting') return 'the engine worker stopped: restarting it from the model directory';
    if (state === 'closed') return 'stopped';
    return undefined;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  onChange(listener: (ready: boolean, live: boolean) => void): void {
    this.listeners.push(listener);
    listener(this.ready, this.live);
  }

  startDraining(): void {
    this.draining = true;
    this.check();
  }

  /** Re-reads readiness and liveness and tells the listeners if either changed. */
  check(): void {
    const now = this.key();
    if (now === this.last) return;
    this.last = now;
    for (const l of this.listeners) l(this.ready, this.live);
  }

  private key(): string {
    return `${this.ready} ${this.live}`;
  }
}

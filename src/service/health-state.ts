/**
 * Liveness and readiness, shared by REST (/healthz, /readyz, OIP health) and gRPC (grpc.health.v1).
 * Live: the process answers. Ready: the model is loaded and warmed up, and the server is not draining.
 * Listeners hear every change of readiness (the gRPC health service mirrors it).
 */
export class HealthState {
  private draining = false;
  private last: boolean;
  private readonly listeners: ((ready: boolean) => void)[] = [];

  constructor(private readonly modelReady: () => boolean) {
    this.last = this.ready;
  }

  get ready(): boolean {
    return !this.draining && this.modelReady();
  }

  /** Why not ready, for the readiness answer. */
  get reason(): string | undefined {
    if (this.draining) return 'draining: the server is shutting down';
    if (!this.modelReady()) return 'the model is loading or warming up';
    return undefined;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  onChange(listener: (ready: boolean) => void): void {
    this.listeners.push(listener);
    listener(this.ready);
  }

  startDraining(): void {
    this.draining = true;
    this.check();
  }

  /** Re-reads readiness and tells the listeners if it changed. */
  check(): void {
    const now = this.ready;
    if (now === this.last) return;
    this.last = now;
    for (const l of this.listeners) l(now);
  }
}

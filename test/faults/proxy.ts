/**
 * A TCP fault proxy on loopback, one per candidate, so a fault can be applied to one process:
 *
 * - `pass`: forward both ways;
 * - `delay`: forward after `ms` (order kept), a slow network or database;
 * - `blackhole`: accept connections but forward nothing until healed. Bytes are held, not
 *   dropped, as TCP would retransmit them after a real partition heals;
 * - `blackhole-at`: forward until the client sends bytes containing `pattern` (e.g. `commit`),
 *   then blackhole from that chunk on (`forward`: from the chunk after it, so the server runs
 *   the statement but its answer is lost): a partition at an exact point of a transaction;
 * - `deaf-at`: forward until the client sends bytes containing `pattern`; from then on the
 *   client's bytes still reach the server, but the server's answers are held until healed: the
 *   server runs the statement (a COMMIT commits) and the client never hears it;
 * - `cut()`: reset every open connection at once (a one-shot fault; the mode is unchanged).
 */
import { createServer, type Server, type Socket } from 'node:net';

export type ProxyMode =
  | { kind: 'pass' }
  | { kind: 'delay'; ms: number }
  | { kind: 'blackhole' }
  | { kind: 'blackhole-at'; pattern: string; forward?: boolean }
  | { kind: 'deaf-at'; pattern: string }
  | { kind: 'deaf' };

interface Pipe {
  client: Socket;
  upstream: Socket;
  /** Chunks held while blackholed, in order. */
  held: { to: Socket; chunk: Buffer }[];
  /** When the last chunk scheduled towards each side will be written: delays never reorder bytes. */
  due: Map<Socket, number>;
  /** Set by silenceExisting(): this pipe forwards nothing, ever again. */
  silenced?: boolean;
  /** The server closed it during a partition the client was not to hear of (`hideServerCloses`). */
  upstreamGone?: boolean;
}

export class FaultProxy {
  #mode: ProxyMode = { kind: 'pass' };
  /** While blackholed or deaf, a connection the server closes stays open and silent on the client's side until healed. */
  hideServerCloses = false;
  readonly #pipes = new Set<Pipe>();
  #server: Server | null = null;
  port = 0;

  constructor(
    private readonly upstreamHost: string,
    private readonly upstreamPort: number,
  ) {}

  async start(): Promise<number> {
    this.#server = createServer((client) => this.#accept(client));
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as { port: number }).port;
    return this.port;
  }

  get mode(): ProxyMode {
    return this.#mode;
  }

  set(mode: ProxyMode): void {
    this.#mode = mode;
    if (mode.kind !== 'blackhole' && mode.kind !== 'deaf') {
      for (const pipe of [...this.#pipes]) {
        if (pipe.upstreamGone) {
          this.#pipes.delete(pipe);
          pipe.client.destroy();
          continue;
        }
        for (const { to, chunk } of pipe.held.splice(0)) this.#schedule(pipe, to, chunk);
      }
    }
  }

  /**
   * Every connection open now goes silent for good (bytes held both ways, no reset), while new
   * connections pass: a vanished peer, a moved address, lost NAT state.
   */
  silenceExisting(): void {
    for (const pipe of this.#pipes) pipe.silenced = true;
  }

  /** Resets every open connection (RST), like a dropped route or a killed middlebox. */
  cut(): void {
    for (const pipe of this.#pipes) {
      pipe.client.resetAndDestroy();
      pipe.upstream.resetAndDestroy();
    }
    this.#pipes.clear();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }

  #accept(client: Socket): void {
    const upstream = new (client.constructor as typeof Socket)();
    const pipe: Pipe = { client, upstream, held: [], due: new Map() };
    this.#pipes.add(pipe);
    const end = () => {
      this.#pipes.delete(pipe);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    const endUpstream = () => {
      // Across a real partition the client does not hear the server close its end either.
      if (this.hideServerCloses && (this.#mode.kind === 'blackhole' || this.#mode.kind === 'deaf')) {
        pipe.upstreamGone = true;
        return;
      }
      end();
    };
    upstream.on('error', endUpstream).on('close', endUpstream);
    upstream.connect(this.upstreamPort, this.upstreamHost);
    client.on('data', (chunk) => this.#route(pipe, upstream, chunk));
    upstream.on('data', (chunk) => this.#route(pipe, client, chunk));
  }

  #route(pipe: Pipe, to: Socket, chunk: Buffer): void {
    const mode = this.#mode;
    if (mode.kind === 'blackhole-at' && to === pipe.upstream && chunk.toString('latin1').toLowerCase().includes(mode.pattern)) {
      this.#mode = { kind: 'blackhole' };
      if (mode.forward) {
        this.#schedule(pipe, to, chunk);
        return;
      }
    }
    if (mode.kind === 'deaf-at' && to === pipe.upstream && chunk.toString('latin1').toLowerCase().includes(mode.pattern)) {
      this.#mode = { kind: 'deaf' };
    }
    if (pipe.silenced) return;
    if (this.#mode.kind === 'blackhole' || (this.#mode.kind === 'deaf' && to === pipe.client)) pipe.held.push({ to, chunk });
    else this.#schedule(pipe, to, chunk);
  }

  #schedule(pipe: Pipe, to: Socket, chunk: Buffer): void {
    const now = performance.now();
    const delay = this.#mode.kind === 'delay' ? this.#mode.ms : 0;
    const due = Math.max(now + delay, pipe.due.get(to) ?? 0);
    pipe.due.set(to, due);
    const write = () => {
      if (!to.destroyed) to.write(chunk);
    };
    if (due <= now) write();
    else setTimeout(write, due - now);
  }
}

/**
 * The library's own sockets, kept track of so they can be destroyed. A client-side deadline
 * can give up on a statement, but the driver keeps the connection that carried it: if the peer
 * went silent (a vanished host, a moved address, lost NAT state), every later statement on it
 * hangs too, and after `stop()` its socket keeps the process alive until the kernel gives up
 * (minutes). Destroying our sockets ends both; the drivers then open fresh connections.
 */
import { connect, Socket } from 'node:net';

export class SocketTracker {
  readonly #sockets = new Set<Socket>();

  track(socket: Socket): Socket {
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    return socket;
  }

  /** Destroys every open socket now: statements on them fail at once. */
  destroyAll(): void {
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
  }

  /** node-postgres's `stream` option: an unconnected socket the driver connects (and wraps in TLS) itself. */
  pgStream(): () => Socket {
    return () => this.track(new Socket());
  }

  /**
   * postgres.js's `socket` option: a connected socket. postgres.js starts its own connect timer
   * only after it has one, so the connect is bounded here; hosts of a multi-host URL are tried
   * in turn, as postgres.js itself would.
   */
  postgresJsSocket(connectTimeoutMs: number): (options: { host: string[]; port: number[]; path?: string }) => Promise<Socket> {
    let next = 0;
    return (options) =>
      new Promise<Socket>((resolve, reject) => {
        const index = next++ % Math.max(1, options.host.length);
        const socket = this.track(
          options.path ? connect(options.path) : connect(options.port[index] ?? options.port[0] ?? 5432, options.host[index]),
        );
        const timer = setTimeout(() => {
          socket.destroy();
          reject(Object.assign(new Error(`connect timed out after ${connectTimeoutMs} ms`), { code: 'CONNECT_TIMEOUT' }));
        }, connectTimeoutMs);
        socket.once('connect', () => {
          clearTimeout(timer);
          resolve(socket);
        });
        socket.once('error', (error) => {
          clearTimeout(timer);
          reject(error);
        });
      });
  }
}

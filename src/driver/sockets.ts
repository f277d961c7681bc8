/**
 * The library's own sockets, kept track of so they can be destroyed. A client-side deadline
 * can give up on a statement, but the driver keeps the connection that carried it: if the peer
 * went silent (a vanished host, a moved address, lost NAT state), every later statement on it
 * hangs too, and after `stop()` its socket keeps the process alive until the kernel gives up
 * (minutes). Destroying our sockets ends both; the drivers then open fresh connections.
 */
import { Socket } from 'node:net';

export class SocketTracker {
  readonly #sockets = new Set<Socket>();

  track(socket: Socket): Socket {
    // One small message per statement, waited for: never hold it back for coalescing (Nagle).
    socket.setNoDelay(true);
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
   * postgres.js's `socket` option. postgres.js writes its startup message at once on a socket
   * it is given; Node holds writes until the connection is up, and postgres.js's own listeners
   * (attached right after this returns, before any connect outcome) see a refusal or a timeout
   * exactly as with a socket of its own. Hosts of a multi-host URL are tried in turn.
   */
  postgresJsSocket(): (options: { host: string[]; port: number[]; path?: string }) => Socket {
    let next = 0;
    return (options) => {
      const socket = this.track(new Socket());
      if (options.path) {
        socket.connect(options.path);
      } else {
        const index = next++ % Math.max(1, options.host.length);
        const host = options.host[index] ?? 'localhost';
        const port = options.port[index] ?? options.port[0] ?? 5432;
        Object.assign(socket, { host, port });
        socket.connect(port, host);
      }
      return socket;
    };
  }
}

/**
 * A TCP relay between one process and PostgreSQL that can be cut: a network partition between
 * that process and its database, while everything else (other processes, Telegram) still
 * reaches it. Cutting closes every connection through it on both sides (the server sees them go
 * and frees their advisory locks, as when a partition is noticed) and refuses new ones until it
 * is restored. Stalling is the other kind of partition: nothing goes through any more, nothing is
 * closed, so every query in flight hangs and new connections are never answered. For
 * `lexus simulate`'s partitions and outages, and for the tests.
 */
import net from 'node:net';

export class DbLink {
  private readonly sockets = new Set<net.Socket>();
  private cutOff = false;
  private stalled = false;

  private constructor(
    private readonly server: net.Server,
    /** The port to connect to instead of the database's. */
    readonly port: number,
  ) {}

  /** A relay on 127.0.0.1 (a free port) to `target`. */
  static async open(target: { host: string; port: number }): Promise<DbLink> {
    let link: DbLink | undefined;
    const server = net.createServer((client) => link!.accept(client, target));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    link = new DbLink(server, (server.address() as net.AddressInfo).port);
    return link;
  }

  private accept(client: net.Socket, target: { host: string; port: number }): void {
    if (this.cutOff) {
      client.destroy();
      return;
    }
    if (this.stalled) {
      // Accepted, never answered: a connection attempt into a black hole.
      this.sockets.add(client);
      client.on('error', () => undefined);
      client.on('close', () => this.sockets.delete(client));
      return;
    }
    const upstream = net.connect(target.port, target.host);
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      this.sockets.add(from);
      from.on('error', () => to.destroy());
      from.on('close', () => {
        this.sockets.delete(from);
        to.destroy();
      });
      from.pipe(to);
    }
  }

  /** Whether the link is cut now. */
  get isCut(): boolean {
    return this.cutOff;
  }

  /** Cuts the link: every connection through it closes, and new ones are refused. */
  cut(): void {
    this.cutOff = true;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  /** New connections go through again. */
  restore(): void {
    this.cutOff = false;
  }

  /** Nothing goes through any more, and nothing is closed: queries in flight hang. */
  stall(): void {
    this.stalled = true;
    for (const socket of this.sockets) socket.pause();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

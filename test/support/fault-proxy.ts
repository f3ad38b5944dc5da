// A TCP proxy for fault-injection tests (Node `net`, no external binary).
// Put it between clients and a PostgreSQL server, then cut, freeze or refuse
// connections on demand.
import net from 'node:net';
import { afterAll, beforeAll } from 'vitest';

export interface FaultProxy {
  readonly port: number;
  /** The same URL with host 127.0.0.1 and the proxy's port. */
  url(targetUrl: string): string;
  /** Destroys every current connection, both sides. */
  cut(): void;
  /**
   * Stops forwarding bytes both ways; connections stay open. New connections
   * are accepted but not forwarded either.
   */
  freeze(): void;
  /**
   * Freezes only the connections open now (a black-holed network path):
   * new connections are forwarded as usual.
   */
  freezeExisting(): void;
  /** Forwards again, including every byte held while frozen. */
  thaw(): void;
  /** While on, new connections are closed at once. */
  refuse(on: boolean): void;
  close(): Promise<void>;
}

/** One client connection and its upstream connection; bytes held while frozen. */
interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  held: { to: net.Socket; chunk: Buffer }[];
  frozen: boolean;
}

function kill(s: net.Socket): void {
  if (s.destroyed) return;
  // A reset, like a dropped connection or a killed backend, not a polite FIN.
  if (typeof s.resetAndDestroy === 'function' && s.readyState === 'open') s.resetAndDestroy();
  else s.destroy();
}

export async function startFaultProxy(target: { host: string; port: number }): Promise<FaultProxy> {
  const pairs = new Set<Pair>();
  let frozen = false;
  let refusing = false;

  const forward = (pair: Pair, from: net.Socket, to: net.Socket): void => {
    from.on('data', (chunk: Buffer) => {
      if (frozen || pair.frozen) {
        pair.held.push({ to, chunk });
        from.pause();
      } else if (!to.destroyed) to.write(chunk);
    });
  };

  const server = net.createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    const pair: Pair = { client, upstream, held: [], frozen: false };
    pairs.add(pair);
    const drop = (): void => {
      pairs.delete(pair);
      kill(client);
      kill(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    forward(pair, client, upstream);
    forward(pair, upstream, client);
    if (frozen) {
      client.pause();
      upstream.pause();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;

  const cut = (): void => {
    for (const p of [...pairs]) {
      pairs.delete(p);
      kill(p.client);
      kill(p.upstream);
    }
  };

  return {
    port,
    url(targetUrl: string): string {
      const u = new URL(targetUrl);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    cut,
    freeze(): void {
      frozen = true;
      for (const p of pairs) {
        p.client.pause();
        p.upstream.pause();
      }
    },
    freezeExisting(): void {
      for (const p of pairs) {
        p.frozen = true;
        p.client.pause();
        p.upstream.pause();
      }
    },
    thaw(): void {
      frozen = false;
      for (const p of pairs) {
        p.frozen = false;
        for (const { to, chunk } of p.held.splice(0)) if (!to.destroyed) to.write(chunk);
        p.client.resume();
        p.upstream.resume();
      }
    },
    refuse(on: boolean): void {
      refusing = on;
    },
    async close(): Promise<void> {
      cut();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A proxy in front of the test database for the whole file: started before
 * its tests, thawed and closed after them. Call `proxy()` inside a test.
 */
export function useFaultProxy(db: { readonly url: string }): () => FaultProxy {
  let proxy: FaultProxy | undefined;
  beforeAll(async () => {
    const u = new URL(db.url);
    proxy = await startFaultProxy({ host: u.hostname, port: Number(u.port) });
  });
  afterAll(async () => {
    proxy?.thaw();
    await proxy?.close();
  });
  return () => {
    if (!proxy)
      throw new Error('useFaultProxy: the proxy is not started yet (call it inside a test)');
    return proxy;
  };
}

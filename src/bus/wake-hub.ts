import type { Driver, Listener, NotificationHandler, Subscription } from '../driver/types.js';

/**
 * One LISTEN connection per process for every bus member whose driver
 * would open its LISTEN connection with the same settings
 * (`Driver.listenEndpoint`): a process with ten members then has one
 * listening server process instead of ten. That matters because
 * PostgreSQL (up to 15 at least) signals every listening backend of the
 * database on each NOTIFY commit, listening to that channel or not: with a
 * connection per member, each publish woke every member's LISTEN backend,
 * which on a small machine queued the members' reads behind them. Here one
 * backend wakes and hands every member's wake-up to Node in one message.
 *
 * The shared connection belongs to the hub, not to any member's driver (a
 * client closed while other clients' members go on listening takes nothing
 * of theirs with it); it opens with the first member and closes with the
 * last. Reconnection after a lost connection is the driver's listener's
 * (every handler is woken once after the LISTENs are back, so nothing sent
 * meanwhile is missed). A driver without an endpoint (postgres.js, PGlite,
 * a custom one, LISTEN unavailable) listens on its own connection as before.
 */
interface Hub {
  readonly listener: Listener;
  refs: number;
}

const hubs = new Map<string, Hub>();

/** LISTEN on `channel`: on the process's shared connection for the driver's settings, else on the driver's own. */
export async function listenShared(
  driver: Driver,
  channel: string,
  handler: NotificationHandler,
): Promise<Subscription> {
  const endpoint = driver.listenEndpoint?.();
  if (!endpoint) return driver.listen(channel, handler);
  let hub = hubs.get(endpoint.key);
  if (!hub) {
    hub = { listener: endpoint.open(), refs: 0 };
    hubs.set(endpoint.key, hub);
  }
  const h = hub;
  h.refs++;
  const release = async (): Promise<void> => {
    if (--h.refs > 0) return;
    if (hubs.get(endpoint.key) === h) hubs.delete(endpoint.key);
    await h.listener.close();
  };
  let sub: Subscription;
  try {
    sub = await h.listener.listen(channel, handler);
  } catch (err) {
    await release();
    throw err;
  }
  let closed = false;
  return {
    close: async () => {
      if (closed) return;
      closed = true;
      await sub.close();
      await release();
    },
  };
}

/** How many shared LISTEN connections are open in this process (for tests). */
export function sharedListenConnections(): number {
  return hubs.size;
}

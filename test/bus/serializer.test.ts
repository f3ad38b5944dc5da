import { describe, expect, it } from 'vitest';
import { eventually, useTestDatabase } from '../support/db.js';
import { Bus, IsolatedBackend, JsonSerializer, type JsonValue } from '../../src/bus/index.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { collect, recordingLogger } from './helpers.js';

class Ping {
  constructor(
    public seq = 0,
    public note = '',
  ) {}
  describe(): string {
    return `ping ${this.seq} ${this.note}`;
  }
}

class Stamp {
  constructor(public at: Date) {}
  static fromJSON(data: JsonValue): Stamp {
    return new Stamp(new Date((data as { at: string }).at));
  }
}

describe('JsonSerializer', () => {
  it('round-trips registered classes as instances and everything else as JSON', () => {
    const s = new JsonSerializer<unknown>({ types: { Ping, Stamp } });
    const ping = s.decode(s.encode(new Ping(3, 'x')));
    expect(ping).toBeInstanceOf(Ping);
    expect((ping as Ping).describe()).toBe('ping 3 x');
    const at = new Date('2026-01-02T03:04:05.678Z');
    const stamp = s.decode(s.encode(new Stamp(at))) as Stamp;
    expect(stamp).toBeInstanceOf(Stamp);
    expect(stamp.at.getTime()).toBe(at.getTime());
    for (const v of [1, 'two', null, [1, { a: 2 }], { nested: { ok: true } }])
      expect(s.decode(s.encode(v))).toEqual(v);
  });

  it('refuses what it cannot carry or did not make', () => {
    const s = new JsonSerializer<unknown>({ types: { Ping } });
    expect(() => s.encode(10n)).toThrow(InvalidArgumentError);
    expect(() => s.encode(undefined)).toThrow(InvalidArgumentError);
    // The same JSON rule as queue messages: NaN would arrive as null.
    expect(() => s.encode({ x: NaN })).toThrow(/bus message\.x is NaN/);
    expect(() => s.encode('a\u0000')).toThrow(/NUL character/);
    expect(() => s.decode({ garbage: true })).toThrow(InvalidArgumentError);
    expect(() => s.decode({ type: 'Nope', data: {} })).toThrow(/unknown bus message type/);
    expect(() => s.decode('plain string')).toThrow(InvalidArgumentError);
    expect(() => new JsonSerializer({ types: { json: Ping } })).toThrow(InvalidArgumentError);
  });
});

describe('Bus with a serializer', () => {
  const db = useTestDatabase();

  it('delivers instances of the sender message type across members', async () => {
    const serializer = new JsonSerializer<Ping | Stamp>({ types: { Ping, Stamp } });
    const [a, b] = [0, 1].map(() => {
      const bus = new Bus<Ping | Stamp>({
        backend: db.track(new IsolatedBackend({ connectionString: db.url })),
        channel: 'typed',
        serializer,
      });
      db.track({ close: () => bus.stop() });
      return bus;
    });
    for (const x of [a!, b!]) await x.start();
    const got = collect(b!);
    await a!.publish(new Ping(1, 'hello'));
    await a!.publish(new Stamp(new Date(0)));
    await eventually(() => got.length === 2);
    expect(got[0]!.message).toBeInstanceOf(Ping);
    expect((got[0]!.message as Ping).describe()).toBe('ping 1 hello');
    expect(got[1]!.message).toBeInstanceOf(Stamp);
  });

  it('counts and logs an unserialisable publish instead of throwing', async () => {
    const logger = recordingLogger();
    const bus = new Bus<unknown>({
      backend: db.track(new IsolatedBackend({ connectionString: db.url })),
      channel: 'bad',
      logger,
    });
    db.track({ close: () => bus.stop() });
    await bus.start();
    expect(await bus.publish({ big: 1n })).toBe(0);
    expect(bus.stats.publishFailures).toBe(1);
    expect(
      logger.entries.some(
        (e) => e.level === 'error' && e.msg === 'pgferry bus: publish failed; dropped',
      ),
    ).toBe(true);
  });
});

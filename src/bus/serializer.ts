import { InvalidArgumentError } from '../errors.js';
import { toJsonPayload } from '../payload.js';

/** What a jsonb column holds. */
export type JsonValue =
  null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * Turns bus messages into JSON for the wire and back. `decode` throws when
 * the payload is not something it made; the bus then archives the message
 * and logs it, so one bad message never blocks a member.
 */
export interface BusSerializer<T> {
  encode(message: T): JsonValue;
  decode(payload: JsonValue): T;
}

/** A class whose instances travel on the bus (its own fields are the data). */
export interface MessageClass<T = unknown> {
  readonly name: string;
  readonly prototype: T;
  /** Optional: rebuilds an instance from its data (otherwise fields are copied onto the prototype). */
  fromJSON?(data: JsonValue): T;
}

export interface JsonSerializerOptions {
  /**
   * Classes whose instances come back as instances of the same class, keyed
   * by the type name written on the wire. Values of any other type travel as
   * plain JSON.
   */
  types?: Record<string, MessageClass>;
}

const PLAIN = 'json';

/**
 * The default serializer. Wire form: `{"type": <name>, "data": <JSON>}`, so
 * the receiver rebuilds the sender's message type: a registered class comes
 * back as an instance of that class, anything else as the same JSON value.
 * Values JSON cannot carry (BigInt, cycles, functions, NaN/±Infinity, NUL
 * characters) fail at `encode`, as for queue messages (src/payload.ts).
 */
export class JsonSerializer<T = unknown> implements BusSerializer<T> {
  private readonly byName = new Map<string, MessageClass>();
  private readonly byClass = new Map<unknown, string>();

  constructor(options: JsonSerializerOptions = {}) {
    for (const [name, cls] of Object.entries(options.types ?? {})) {
      if (name === PLAIN)
        throw new InvalidArgumentError(`"${PLAIN}" is reserved for plain JSON values`);
      this.byName.set(name, cls);
      this.byClass.set(cls.prototype, name);
    }
  }

  encode(message: T): JsonValue {
    const type =
      message !== null && typeof message === 'object'
        ? this.byClass.get(Object.getPrototypeOf(message))
        : undefined;
    // The one JSON rule of queues, tasks and streams (NaN, NUL, … refused).
    const text = toJsonPayload('bus message', message);
    return { type: type ?? PLAIN, data: JSON.parse(text) as JsonValue };
  }

  decode(payload: JsonValue): T {
    if (
      payload === null ||
      typeof payload !== 'object' ||
      Array.isArray(payload) ||
      typeof payload.type !== 'string' ||
      !('data' in payload)
    ) {
      throw new InvalidArgumentError('not a pgferry bus message (expected {"type", "data"})');
    }
    const data = payload.data as JsonValue;
    if (payload.type === PLAIN) return data as T;
    const cls = this.byName.get(payload.type);
    if (!cls) throw new InvalidArgumentError(`unknown bus message type "${payload.type}"`);
    if (cls.fromJSON) return cls.fromJSON(data) as T;
    if (data === null || typeof data !== 'object' || Array.isArray(data)) {
      throw new InvalidArgumentError(`bus message of type "${payload.type}" must carry an object`);
    }
    return Object.assign(Object.create(cls.prototype as object) as object, data) as T;
  }
}

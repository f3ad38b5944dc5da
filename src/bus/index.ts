// pgferry/bus: a channel pub/sub bus over the queue engine. Explicit exports only.
export {
  Bus,
  type BusOptions,
  type BusHandler,
  type BusMessageContext,
  type BusStats,
} from './bus.js';
export { DirectBackend, safeChannel, type DirectBackendOptions } from './direct.js';
export { IsolatedBackend, type IsolatedBackendOptions } from './isolated.js';
export type {
  BusBackend,
  BackendMessage,
  BackendPublishOptions,
  BackendReadOptions,
} from './types.js';
export {
  JsonSerializer,
  type BusSerializer,
  type JsonSerializerOptions,
  type JsonValue,
  type MessageClass,
} from './serializer.js';
export { BusLimitError, BusNotMemberError } from './errors.js';
export { wakeChannel } from './wake.js';
export {
  grantBusRole,
  reapBusMembers,
  configureBus,
  type BusAdminOptions,
  type BusSettings,
} from './admin.js';

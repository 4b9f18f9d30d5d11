import { XenstoreConnectError } from "../errors";
import type { TransportFactory } from "./transport";
import { unixSocketTransport } from "./unix-socket-transport";
import { xenbusDeviceTransport } from "./xenbus-device-transport";

export const DEFAULT_SOCKET_PATHS = ["/run/xenstored/socket", "/var/run/xenstored/socket"] as const;
export const DEFAULT_XENBUS_DEVICE = "/dev/xen/xenbus";

/**
 * Where to look for xenstored, in order: $XENSTORED_PATH, the two usual socket
 * paths, then the xenbus device. $XENSTORED_PATH may name a socket or a device.
 */
export function defaultEndpoints(env: NodeJS.ProcessEnv = process.env): string[] {
  const fromEnv = env.XENSTORED_PATH;
  const list: string[] = [];
  if (fromEnv !== undefined && fromEnv !== "") list.push(fromEnv);
  list.push(...DEFAULT_SOCKET_PATHS, DEFAULT_XENBUS_DEVICE);
  return [...new Set(list)];
}

function factoryFor(endpoint: string): TransportFactory {
  return endpoint.startsWith("/dev/") ? xenbusDeviceTransport(endpoint) : unixSocketTransport(endpoint);
}

/** Tries each endpoint in turn; the first that opens wins (re-evaluated at every reconnect). */
export function defaultTransport(endpoints: readonly string[] = defaultEndpoints()): TransportFactory {
  return async (events) => {
    const failures: string[] = [];
    for (const endpoint of endpoints) {
      try {
        return await factoryFor(endpoint)(events);
      } catch (err) {
        failures.push(`${endpoint}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    throw new XenstoreConnectError(`cannot reach xenstored (${failures.join("; ")})`);
  };
}

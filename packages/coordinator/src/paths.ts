// Suspend paths: how the request reaches the guest (trigger) x how we learn it has suspended
// (notification). Named "<trigger>+<notification>", e.g. "xenstore+watch" is libxl's stock path.

export const TRIGGERS = ["evtchn", "xenstore", "shutdown"] as const;
export type Trigger = (typeof TRIGGERS)[number];

/** Fastest first: the patch's per-domain VIRQ, the subscribed channel, the watch, polling. */
export const NOTIFICATIONS = ["virq", "evtchn", "watch", "poll"] as const;
export type Notification = (typeof NOTIFICATIONS)[number];

export type PathName = `${Trigger}+${Notification}`;

export interface SuspendPath {
  trigger: Trigger;
  notification: Notification;
}

/** The stock path everything is compared with. */
export const BASELINE_PATH: PathName = "xenstore+watch";

export function pathName(p: SuspendPath): PathName {
  return `${p.trigger}+${p.notification}`;
}

export function parsePath(name: string): SuspendPath | undefined {
  const [t, n, extra] = name.split("+");
  if (extra !== undefined || t === undefined || n === undefined) return undefined;
  const trigger = TRIGGERS.find((x) => x === t);
  const notification = NOTIFICATIONS.find((x) => x === n);
  return trigger !== undefined && notification !== undefined ? { trigger, notification } : undefined;
}

export function allPathNames(): PathName[] {
  return TRIGGERS.flatMap((t) => NOTIFICATIONS.map((n) => pathName({ trigger: t, notification: n })));
}

/** Paths in preference order, given what is available (order of TRIGGERS x NOTIFICATIONS). */
export function orderedPaths(triggers: readonly Trigger[], notifications: readonly Notification[]): PathName[] {
  return TRIGGERS.filter((t) => triggers.includes(t)).flatMap((t) =>
    NOTIFICATIONS.filter((n) => notifications.includes(n)).map((n) => pathName({ trigger: t, notification: n })),
  );
}

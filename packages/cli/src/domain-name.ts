// Domain names, as xl takes them. libxl_name_to_domid lists the domains the hypervisor knows and
// reads each one's /local/domain/<domid>/name: the same here, through the env the command opens.
import type { XenstoreLike } from "@fastsuspend/coordinator";
import type { DomainInfo, XenBinding } from "@fastsuspend/xen";

import { EnvironmentError, UsageError } from "./exit-codes";

export const domainNameKey = (domid: number): string => `/local/domain/${domid}/name`;

/** The domains whose xenstore name is `name` (a domain without a name, or gone meanwhile, is skipped). */
export async function domainsNamed(xen: Pick<XenBinding, "listDomains">, xs: Pick<XenstoreLike, "tryReadString">, name: string): Promise<DomainInfo[]> {
  const infos = xen.listDomains();
  const names = await Promise.all(infos.map((i) => xs.tryReadString(domainNameKey(i.domid))));
  return infos.filter((_, k) => names[k] === name);
}

/**
 * The domid of the domain called `name`. Unknown: exit 3, like an unknown id. Two domains of that
 * name: a usage error (give the id), unless all but one are dying, as after `xl destroy` followed
 * at once by `xl create` of the same guest; xl would take the first one listed.
 */
export async function resolveDomainName(xen: Pick<XenBinding, "listDomains">, xs: Pick<XenstoreLike, "tryReadString">, name: string): Promise<number> {
  const named = await domainsNamed(xen, xs, name);
  const live = named.filter((d) => !d.dying);
  const candidates = live.length > 0 ? live : named;
  const [only, second] = candidates;
  if (only === undefined) throw new EnvironmentError(`no such domain "${name}" (no domain has that name in xenstore; \`xl list\` shows names and ids)`);
  if (second !== undefined) {
    throw new UsageError(`domain name "${name}" is ambiguous: domains ${candidates.map((d) => d.domid).join(", ")} have it; give the id`);
  }
  return only.domid;
}

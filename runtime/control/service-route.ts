// A service's entries in the router's table: its own host and its custom domains, with its
// request timeout and what it asks of HTTPS (redirect, HSTS). Written whenever a service's settings change, by whichever verb changed them.
import type { RouteTable } from '../router/route-table.ts';
import type { Service } from '../store/services.ts';

export function setServiceRoute(routes: RouteTable, s: Service): void {
  routes.set({ service: s.name, requestTimeoutMs: Math.round(s.requestTimeoutS * 1000), httpsRedirect: s.httpsRedirect, hsts: s.hsts }, s.domains);
}

// The router's table: host → route. The router reads it on every request; the control plane
// writes a service's entries when the service is created, changed or deleted. Changed one
// service at a time: rebuilding it from the store made each create O(services) (16 ms per create
// at 1000 services).
import { serviceLabel } from './hosts.ts';

export interface Route {
  service: string;
  requestTimeoutMs: number;
  /** plain HTTP to a host with a certificate gets a redirect to HTTPS */
  httpsRedirect?: boolean;
  /** HTTPS answers carry Strict-Transport-Security */
  hsts?: boolean;
}

/** what the router needs of a table: a normalized host → its route, or null for an unknown host */
export interface RouteResolver {
  resolve(host: string): Route | null;
}

export interface RouteTable extends RouteResolver {
  /** route `<service>.<domain>` and the service's custom domains, replacing what it had */
  set(route: Route, domains: readonly string[]): void;
  /** the service is not routed any more (deleted, or being deleted) */
  drop(service: string): void;
}

export function createRouteTable(opts: { domain: string }): RouteTable {
  const byService = new Map<string, Route>();
  const byDomain = new Map<string, Route>();

  function drop(service: string): void {
    const old = byService.get(service);
    if (!old) return;
    byService.delete(service);
    for (const [d, r] of byDomain) if (r === old) byDomain.delete(d);
  }

  return {
    set(route, domains) {
      drop(route.service);
      byService.set(route.service, route);
      for (const d of domains) byDomain.set(d, route);
    },
    drop,
    resolve(host) {
      const label = serviceLabel(host, opts.domain);
      return (label ? byService.get(label) : byDomain.get(host)) ?? null;
    },
  };
}

// The platform's own routes on the public router (the task intake, forges' webhooks): asked, in
// the order they were added, for a request whose host no service owns. Made before the router
// and filled as the parts that answer them are built, so the router needs none of them.
import type { RouterRequest } from './request.ts';

/** true when it answered the request */
export type PlatformRoute = (req: RouterRequest, requestId: string) => boolean;

export interface PlatformRoutes {
  add(route: PlatformRoute): void;
  handle: PlatformRoute;
}

export function createPlatformRoutes(): PlatformRoutes {
  const routes: PlatformRoute[] = [];
  return {
    add: (route) => void routes.push(route),
    handle: (req, requestId) => routes.some((route) => route(req, requestId)),
  };
}

// The router's table as the control plane writes it: a service's entries replaced as a whole,
// its custom domains gone with it, and nothing of one service touched by another's change.
import { describe, expect, it } from 'vitest';
import { createRouteTable } from '../../../runtime/router/route-table.ts';

describe('the route table', () => {
  it('routes <service>.<domain> and custom domains, and only those', () => {
    const routes = createRouteTable({ domain: 'apps.test' });
    routes.set({ service: 'web', requestTimeoutMs: 1000 }, ['www.example.com']);
    expect(routes.resolve('web.apps.test')).toEqual({ service: 'web', requestTimeoutMs: 1000 });
    expect(routes.resolve('www.example.com')?.service).toBe('web');
    expect(routes.resolve('api.apps.test')).toBeNull();
    expect(routes.resolve('a.web.apps.test')).toBeNull();
    expect(routes.resolve('apps.test')).toBeNull();
  });

  it("replaces a service's entries as a whole when it changes, and drops them with it", () => {
    const routes = createRouteTable({ domain: 'apps.test' });
    routes.set({ service: 'web', requestTimeoutMs: 1000 }, ['old.example.com']);
    routes.set({ service: 'api', requestTimeoutMs: 2000 }, ['api.example.com']);
    routes.set({ service: 'web', requestTimeoutMs: 5000 }, ['new.example.com']);
    expect(routes.resolve('old.example.com')).toBeNull();
    expect(routes.resolve('new.example.com')).toEqual({ service: 'web', requestTimeoutMs: 5000 });
    expect(routes.resolve('web.apps.test')?.requestTimeoutMs).toBe(5000);
    routes.drop('web');
    expect(routes.resolve('web.apps.test')).toBeNull();
    expect(routes.resolve('new.example.com')).toBeNull();
    expect(routes.resolve('api.example.com')?.service).toBe('api');
    routes.drop('web'); // twice is fine
  });
});

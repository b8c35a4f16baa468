// The node-queue fixture logs one JSON line per request it gets: {"seen": {...}}. What it saw,
// read back from the service's log.
import type { AdminApi } from './server.ts';

export async function seenByApp(api: AdminApi, service = 'q'): Promise<any[]> {
  const { body } = await api('GET', `/api/v1/services/${service}/logs?q=seen&limit=10000`);
  return (body.entries as { message: string }[])
    .map((e) => {
      try {
        return JSON.parse(e.message).seen;
      } catch {
        return undefined;
      }
    })
    .filter(Boolean);
}

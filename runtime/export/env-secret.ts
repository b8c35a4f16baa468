// A service's env values as a Kubernetes Secret, referenced key by key from the Service. It is
// written only to a file of its own (mode 0600), never to stdout.
import { envSecretName, NAME_LABEL } from './knative-names.ts';
import { exportedEnvNames, type Manifest } from './knative-service.ts';
import type { ExportItem } from './model.ts';

export function envSecretFor(item: ExportItem, namespace: string): Manifest | null {
  const { names } = exportedEnvNames(item.env);
  if (!names.length) return null;
  const name = item.service.name;
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: envSecretName(name), namespace, labels: { [NAME_LABEL]: name } },
    type: 'Opaque',
    // base64, as Kubernetes stores it: any value survives the YAML round trip byte for byte
    data: Object.fromEntries(names.map((n) => [n, Buffer.from(item.env[n]!, 'utf8').toString('base64')])),
  };
}

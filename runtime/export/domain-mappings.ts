// A service's custom domains as Knative DomainMappings to its Service.
import { DOMAIN_MAPPING_API, KNATIVE_API, NAME_LABEL } from './knative-names.ts';
import type { Manifest } from './knative-service.ts';

export function domainMappingsFor(service: { name: string; domains?: readonly string[] }, namespace: string): Manifest[] {
  return (service.domains ?? []).map((domain) => ({
    apiVersion: DOMAIN_MAPPING_API,
    kind: 'DomainMapping',
    metadata: { name: domain, namespace, labels: { [NAME_LABEL]: service.name } },
    spec: { ref: { apiVersion: KNATIVE_API, kind: 'Service', name: service.name } },
  }));
}

import { openDatabase, type Db } from './db.ts';
import { createDeploymentStore, type DeploymentStore } from './deployments.ts';
import { createServiceStore, type ServiceStore } from './services.ts';
import { createLogStore, type LogStore } from './logs.ts';
import { createTokenStore, type TokenStore } from './tokens.ts';

export interface Store {
  db: Db;
  services: ServiceStore;
  deployments: DeploymentStore;
  tokens: TokenStore;
  logs: LogStore;
  close(): void;
}

export function openStore(file: string): Store {
  const db = openDatabase(file);
  return {
    db,
    services: createServiceStore(db),
    deployments: createDeploymentStore(db),
    tokens: createTokenStore(db),
    logs: createLogStore(db),
    close: () => db.close(),
  };
}

// undici's Pool on its own: importing the package's index would pull in fetch, the cache
// stores and a require('node:sqlite') that Node 20 (and so the one executable) does not have
declare module 'undici/lib/dispatcher/pool.js' {
  import type { Pool } from 'undici';
  const PoolClass: typeof Pool;
  export default PoolClass;
}

// its connector, for the pool of an instance whose first connection is opened ahead
declare module 'undici/lib/core/connect.js' {
  import buildConnector from 'undici/types/connector';
  export default buildConnector;
}

// the pool's own symbols, for the pool that takes its free connections in turn (upstream.ts)
declare module 'undici/lib/dispatcher/pool-base.js' {
  const poolBase: { readonly kClients: unique symbol; readonly kNeedDrain: unique symbol; readonly kGetDispatcher: unique symbol };
  export default poolBase;
}

declare module 'undici/lib/core/symbols.js' {
  const symbols: { readonly kConnected: unique symbol; readonly kDispatch: unique symbol };
  export default symbols;
}

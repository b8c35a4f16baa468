// undici's Pool on its own: importing the package's index would pull in fetch, the cache
// stores and a require('node:sqlite') that Node 20 (and so the one executable) does not have
declare module 'undici/lib/dispatcher/pool.js' {
  import type { Pool } from 'undici';
  const PoolClass: typeof Pool;
  export default PoolClass;
}

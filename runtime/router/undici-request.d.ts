// undici's request() on its own (see undici-pool.d.ts for why not the package's index): called
// with a dispatcher as `this`, as the index attaches it to Dispatcher.prototype
declare module 'undici/lib/api/api-request.js' {
  import type { Dispatcher } from 'undici';
  function request(this: Dispatcher, opts: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData>;
  export default request;
}

// The one zod every module uses. The API document generator (@hono/zod-openapi) gives zod's
// types an `.openapi()` method, and zod 4 hands a schema the methods its type had when the
// schema was made: a schema made before that extension ran has no `.openapi()`, and whether it
// ran first would depend on the order modules happen to load. Importing zod from here makes the
// extension come first, always.
export { z } from '@hono/zod-openapi';

// What the client's modules import from `cloudflare:workers`; none of it is
// used on the HTTP transport.
export class DurableObject {}
export class WorkerEntrypoint {}
export class RpcTarget {}
export const env = {};
export const tracing = { enterSpan: (_name, fn, ...args) => fn(...args) };

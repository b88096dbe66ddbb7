// A Node ES-module loader hook for the official client outside Workers:
// `cloudflare:workers` resolves to a small stub, and extension-less relative
// imports are retried with ".js".
export async function resolve(specifier, context, next) {
  if (specifier === 'cloudflare:workers') {
    return { url: new URL('./workers-stub.mjs', import.meta.url).href, shortCircuit: true };
  }
  try {
    return await next(specifier, context);
  } catch (err) {
    if ((specifier.startsWith('./') || specifier.startsWith('../')) && !specifier.endsWith('.js')) {
      return next(specifier + '.js', context);
    }
    throw err;
  }
}

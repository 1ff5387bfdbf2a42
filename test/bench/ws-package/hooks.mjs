// Module hook (see register.mjs): when the compiled client listener
// (dist/server/net/client-listener.js) imports ./ws-connection.js, it gets
// dist/test/bench/ws-package-connection.js instead, the same exports done
// with ws's noServer + handleUpgrade. Every other import is untouched.
export async function resolve(specifier, context, next) {
  const parent = context.parentURL
  if (specifier === './ws-connection.js' && parent?.endsWith('/dist/server/net/client-listener.js')) {
    return { url: new URL('../../test/bench/ws-package-connection.js', parent).href, shortCircuit: true }
  }
  return next(specifier, context)
}

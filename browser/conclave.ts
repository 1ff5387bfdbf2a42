/**
 * The entry of the browser build of the SDK and recipes (dist/browser/conclave.js,
 * built by scripts/build-browser.mjs; package export `conclave/browser`): one ES
 * module with the whole of `conclave/client` and `conclave/recipes`.
 *
 * Must not import node:* or server/. The SDK's Node transports (which load
 * node:net, node:tls and node:crypto lazily) are replaced by a stub in this
 * build, and the build fails on any other Node built-in or package import.
 * Its types (dist/browser/conclave.d.ts) are those of conclave/client and
 * conclave/recipes.
 */
export * from '../client/index.js'
export * from '../recipes/index.js'

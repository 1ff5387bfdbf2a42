#!/usr/bin/env node
// The browser build (issue 18), with esbuild:
//
//   dist/browser/conclave.js        the SDK and recipes as one ES module (browser/conclave.ts),
//   dist/browser/conclave.d.ts      its types: those of conclave/client and conclave/recipes
//                                   (dist/client, dist/recipes, which tsc writes)
//   dist/browser/console/           the web console (`conclave console`): index.html, app.js
//                                   (the app with the SDK bundled in), console.css
//
//   node scripts/build-browser.mjs              build
//   node scripts/build-browser.mjs --if-stale   build only if an output is missing or older
//                                               than a source (what `conclave console` runs
//                                               in a checkout of the repository)
//
// No Node built-in may end up in a browser bundle: the SDK's Node transports
// (client/transport-tcp.ts, client/transport-ws-node.ts, which load node:net,
// node:tls and node:crypto lazily) are replaced by a stub that refuses tcp://
// in a browser, and so is the read-only probe (client/probe-rw.ts: a browser
// cannot ask `isro`), and the build fails if anything else imports node:* or a
// package from node_modules.
//
// Plain Node (no TypeScript), so it runs before anything is compiled.
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const OUT = join(ROOT, 'dist', 'browser')
const SOURCES = ['client', 'recipes', 'shared', 'browser', 'console']

/** The Node-only transports (and the read-only probe), replaced in browser bundles. */
const NODE_TRANSPORTS = /[\\/]client[\\/](transport-(tcp|ws-node)|probe-rw)\.(js|ts)$/

const STUB = `
export async function openTcp() {
  throw new Error('tcp:// (ZooKeeper framing) needs Node: in a browser use ws:// or wss://')
}
export async function openNodeWebSocket() {
  throw new Error("the SDK's Node WebSocket client is not part of the browser build")
}
export async function askIsro() {
  return undefined
}
`

/** An esbuild plugin: stubs the Node transports, refuses node:* and bare (node_modules) imports. */
export const browserOnly = {
  name: 'conclave-browser-only',
  setup(build) {
    build.onResolve({ filter: /^node:|^[a-z@]/ }, (args) => ({
      errors: [
        {
          text: `${args.path} imported by ${relative(ROOT, args.importer)}: browser bundles take no Node built-in and no package`,
        },
      ],
    }))
    build.onResolve({ filter: /(transport-(tcp|ws-node)|probe-rw)\.js$/ }, (args) => {
      const resolved = join(dirname(args.importer), args.path)
      return NODE_TRANSPORTS.test(resolved) ? { path: resolved, namespace: 'conclave-stub' } : undefined
    })
    build.onLoad({ filter: /.*/, namespace: 'conclave-stub' }, () => ({ contents: STUB, loader: 'js' }))
  },
}

function newestSource() {
  let newest = 0
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name)
      const s = statSync(p)
      if (s.isDirectory()) walk(p)
      else if (s.mtimeMs > newest) newest = s.mtimeMs
    }
  }
  for (const d of SOURCES) if (existsSync(join(ROOT, d))) walk(join(ROOT, d))
  walk(join(ROOT, 'scripts'))
  return newest
}

export const OUTPUTS = [
  'conclave.js',
  'conclave.d.ts',
  'console/index.html',
  'console/app.js',
  'console/console.css',
]

export function isStale() {
  const newest = newestSource()
  return OUTPUTS.some((f) => !existsSync(join(OUT, f)) || statSync(join(OUT, f)).mtimeMs < newest)
}

/**
 * Builds everything into dist/browser (each file written next to its place
 * and renamed, so a running console never serves half a file). Returns the
 * bundles' byte sizes and the modules each one took in.
 */
export async function buildBrowser() {
  const esbuild = await import('esbuild')
  const tmp = join(OUT, `.tmp-${process.pid}`)
  mkdirSync(join(tmp, 'console'), { recursive: true })
  const common = {
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    metafile: true,
    logLevel: 'silent',
    legalComments: 'none',
    plugins: [browserOnly],
  }
  let sdk
  let app
  try {
    sdk = await esbuild.build({
      ...common,
      entryPoints: [join(ROOT, 'browser', 'conclave.ts')],
      outfile: join(tmp, 'conclave.js'),
      banner: { js: '// Conclave SDK and recipes, browser build (conclave/browser). Apache-2.0.' },
    })
    app = await esbuild.build({
      ...common,
      entryPoints: [join(ROOT, 'console', 'app', 'main.ts')],
      outfile: join(tmp, 'console', 'app.js'),
      minify: true,
    })
    writeFileSync(
      join(tmp, 'conclave.d.ts'),
      '// Types of dist/browser/conclave.js: the SDK and the recipes (conclave/client, conclave/recipes).\n' +
        "export * from '../client/index.js'\nexport * from '../recipes/index.js'\n",
    )
    copyFileSync(join(ROOT, 'console', 'static', 'index.html'), join(tmp, 'console', 'index.html'))
    copyFileSync(join(ROOT, 'console', 'static', 'console.css'), join(tmp, 'console', 'console.css'))
    mkdirSync(join(OUT, 'console'), { recursive: true })
    for (const f of OUTPUTS) renameSync(join(tmp, f), join(OUT, f))
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
  const inputs = (r) => Object.keys(r.metafile.inputs)
  const bytes = (f) => statSync(join(OUT, f)).size
  return {
    sdk: { file: join(OUT, 'conclave.js'), bytes: bytes('conclave.js'), inputs: inputs(sdk) },
    app: { file: join(OUT, 'console', 'app.js'), bytes: bytes('console/app.js'), inputs: inputs(app) },
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (process.argv.includes('--if-stale') && !isStale()) process.exit(0)
  try {
    const r = await buildBrowser()
    process.stderr.write(
      `browser build: ${relative(ROOT, r.sdk.file)} ${(r.sdk.bytes / 1024).toFixed(0)} KiB, ` +
        `${relative(ROOT, r.app.file)} ${(r.app.bytes / 1024).toFixed(0)} KiB\n`,
    )
  } catch (err) {
    process.stderr.write(`browser build failed: ${err.message}\n`)
    process.exit(1)
  }
}

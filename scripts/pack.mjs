#!/usr/bin/env node
// The build steps of `npm pack` for the two packages built from this
// repository's sources (docs/packaging.md):
//
//   node scripts/pack.mjs prepare        the conclave package's prepare: after `npm install` or
//                                        `npm ci` in the repository, build everything, tests too
//                                        (tsconfig.json) and the browser build (dist/browser:
//                                        scripts/build-browser.mjs); under `npm pack` and `npm publish`,
//                                        which run prepare after prepack, nothing more (prepack
//                                        has built what is shipped)
//   node scripts/pack.mjs build          the conclave package's prepack: compile the shipped
//                                        code (tsconfig.build.json, no tests) into dist/, and the
//                                        browser build into dist/browser, and
//                                        drop outputs whose source is gone, so a renamed or
//                                        deleted module is never shipped
//   node scripts/pack.mjs stage-client   conclave-client's prepack: the same build, then a copy
//                                        of dist/{client,recipes,shared} (without the shell,
//                                        without source maps) into packages/client/dist
//   node scripts/pack.mjs clean-client   conclave-client's postpack: remove that copy
//
// Plain Node (no TypeScript, no dependency but the typescript compiler and esbuild the
// repository's devDependencies bring), so it runs before anything is built.
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const SHIPPED = ['shared', 'server', 'client', 'recipes']
const CLIENT_DIR = join(ROOT, 'packages', 'client')
const CLIENT_SHIPPED = ['client', 'recipes', 'shared']

function filesUnder(dir) {
  if (!existsSync(dir)) return []
  const out = []
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out.push(...filesUnder(p))
    else out.push(p)
  }
  return out
}

function tsc(config) {
  const bin = createRequire(join(ROOT, 'package.json')).resolve('typescript/bin/tsc')
  // tsc's diagnostics go to stderr, so `npm pack --json` keeps a clean stdout.
  const r = spawnSync(process.execPath, [bin, '-p', join(ROOT, config)], { stdio: [0, 2, 2] })
  if (r.status !== 0) process.exit(r.status ?? 1)
}

/** The browser build (scripts/build-browser.mjs, esbuild): dist/browser, the SDK bundle and the web console. */
function browser(...args) {
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-browser.mjs'), ...args], {
    stdio: [0, 2, 2],
  })
  if (r.status !== 0) process.exit(r.status ?? 1)
}

function prepare() {
  const command = process.env.npm_command
  if (command === 'pack' || command === 'publish') return
  tsc('tsconfig.json')
  browser()
}

/** The newest mtime among the shipped sources, their directories (a rename changes those) and the configs. */
function newestSourceMs() {
  let newest = 0
  const visit = (p) => {
    const st = statSync(p)
    newest = Math.max(newest, st.mtimeMs)
    if (st.isDirectory()) for (const name of readdirSync(p)) visit(join(p, name))
  }
  for (const dir of SHIPPED) visit(join(ROOT, dir))
  for (const f of ['tsconfig.json', 'tsconfig.build.json', 'package.json']) visit(join(ROOT, f))
  return newest
}

// Written after a build without errors; a build is skipped while it is newer than every
// source (packing both packages compiles once; `npm pack` in packages/client right after
// the root's takes a second instead of a tsc start-up and check).
const BUILD_STAMP = join(ROOT, 'dist', '.pack-build-ok')

function build() {
  const fresh = existsSync(BUILD_STAMP) && statSync(BUILD_STAMP).mtimeMs > newestSourceMs()
  if (!fresh) {
    rmSync(BUILD_STAMP, { force: true })
    tsc('tsconfig.build.json')
    writeFileSync(BUILD_STAMP, `${new Date().toISOString()}\n`)
  }
  browser('--if-stale')
  // An output without its source (foo.js, foo.d.ts, foo.js.map from a foo.ts since removed).
  let pruned = 0
  for (const dir of SHIPPED) {
    for (const file of filesUnder(join(ROOT, 'dist', dir))) {
      const rel = relative(join(ROOT, 'dist'), file)
      const source = rel.replace(/(\.d\.ts|\.js\.map|\.js)$/, '.ts')
      if (source === rel || existsSync(join(ROOT, source))) continue
      rmSync(file)
      pruned++
    }
  }
  if (pruned > 0) process.stderr.write(`pack: removed ${pruned} stale outputs from dist/\n`)
}

function stageClient() {
  const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
  const client = JSON.parse(readFileSync(join(CLIENT_DIR, 'package.json'), 'utf8'))
  if (root.version !== client.version) {
    process.stderr.write(
      `pack: packages/client/package.json has version ${client.version}, package.json ${root.version}: ` +
        'the two packages are built from the same sources and carry the same version\n',
    )
    process.exit(1)
  }
  build()
  cleanClient()
  for (const dir of CLIENT_SHIPPED)
    cpSync(join(ROOT, 'dist', dir), join(CLIENT_DIR, 'dist', dir), {
      recursive: true,
      filter: (src) => !src.endsWith('.map') && relative(join(ROOT, 'dist'), src) !== join('client', 'shell'),
    })
}

function cleanClient() {
  rmSync(join(CLIENT_DIR, 'dist'), { recursive: true, force: true })
}

const steps = { prepare, build, 'stage-client': stageClient, 'clean-client': cleanClient }
const step = steps[process.argv[2]]
if (step === undefined) {
  process.stderr.write(`usage: node scripts/pack.mjs ${Object.keys(steps).join('|')}\n`)
  process.exit(2)
}
step()

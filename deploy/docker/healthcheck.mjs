#!/usr/bin/env node
// conclave-healthcheck [readyz|livez|health]: the container image's HEALTHCHECK (docs/container.md).
//
// GET http://127.0.0.1:$CONCLAVE_ADMIN_PORT/<endpoint> (default readyz, or $CONCLAVE_HEALTHCHECK):
// exit 0 on 200 (healthy), 1 on anything else, a refused connection or no answer within
// $CONCLAVE_HEALTHCHECK_TIMEOUT_MS (default 3000). One line on stdout says what it saw (the
// engine keeps it: `podman healthcheck run`, `docker inspect`). Plain Node, no dependency.
import { request } from 'node:http'

const ENDPOINTS = ['readyz', 'livez', 'health']

const endpoint = (process.argv[2] ?? process.env.CONCLAVE_HEALTHCHECK ?? 'readyz').replace(/^\//, '')
const port = Number(process.env.CONCLAVE_ADMIN_PORT || 8080)
const timeoutMs = Number(process.env.CONCLAVE_HEALTHCHECK_TIMEOUT_MS || 3000)
// The admin port listens on clientPortAddress: loopback is there unless one address was chosen.
const address = process.env.CONCLAVE_CLIENT_ADDRESS ?? ''
const host = ['', '0.0.0.0', '::'].includes(address) ? '127.0.0.1' : address

function done(code, line) {
  process.stdout.write(`${line}\n`)
  process.exit(code)
}

if (!ENDPOINTS.includes(endpoint)) done(1, `unknown endpoint ${endpoint}: expected ${ENDPOINTS.join(', ')}`)
if (!Number.isInteger(port) || port < 1 || port > 65535)
  done(1, `the admin port is off or invalid (CONCLAVE_ADMIN_PORT=${process.env.CONCLAVE_ADMIN_PORT})`)
if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
  done(1, `CONCLAVE_HEALTHCHECK_TIMEOUT_MS (got ${process.env.CONCLAVE_HEALTHCHECK_TIMEOUT_MS}): expected ms`)

const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/${endpoint}`
const req = request(url, { timeout: timeoutMs }, (res) => {
  let body = ''
  res.setEncoding('utf8')
  res.on('data', (chunk) => {
    if (body.length < 500) body += chunk
  })
  res.on('end', () => done(res.statusCode === 200 ? 0 : 1, `${url}: ${res.statusCode} ${body.trim()}`))
})
req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
req.on('error', (err) => done(1, `${url}: ${err.message}`))
req.end()

// Measurement only (docs/architecture.md, "Our WebSocket framing or the ws
// package's"): preloaded into a server process with
// CONCLAVE_BENCH_NODE_ARGS="--import=<this file>", it registers hooks.mjs,
// which serves the server's WebSocket side with the ws package instead of
// server/net/ws-connection.ts. Shipped code is not changed.
import { register } from 'node:module'

register('./hooks.mjs', import.meta.url)

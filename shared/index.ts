/**
 * shared/: the wire schema both the server and the SDK use. No node:*
 * imports, nothing of server/ or client/.
 */
export * from './acl.js'
export * from './assert.js'
export * from './errors.js'
export * from './framing.js'
export * from './jute.js'
export * from './opcodes.js'
export * from './paths.js'
export * from './records.js'
export * from './session-id.js'
export * from './stat.js'
export * from './zxid.js'

/**
 * The server package's public entry (`conclave/server`): start a server in
 * this process from a validated configuration, and stop it.
 *
 *   const server = await startServer(parseConfig({ clientPort: 2181, dataDir: './data' }))
 *   await server.stop()
 */
export { ConfigError, parseConfig, readConfigFile, type ServerConfig } from './config.js'
export { ServerNode, startServer, VERSION } from './node.js'

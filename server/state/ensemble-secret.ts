/**
 * The secret a server signs session passwords with and, in an ensemble,
 * proves itself to its peers with: the configured one (ensembleSecret,
 * CONCLAVE_SECRET), or for a standalone server one it made and keeps in its
 * storage, so session passwords survive a restart.
 */
import type { Logger } from 'pino'
import { newSecret } from '../auth/session-password.js'
import type { ServerConfig } from '../config.js'
import type { Storage } from '../storage/index.js'

const SECRET_KEY = 'ensembleSecret'

export function loadSecret(config: ServerConfig, storage: Storage, logger: Logger): string {
  if (config.ensembleSecret !== undefined) return config.ensembleSecret
  const saved = storage.getMeta(SECRET_KEY)
  if (saved !== undefined) return saved
  const secret = newSecret()
  storage.setMeta(SECRET_KEY, secret, (err) => {
    if (err) logger.error({ err }, 'could not save the session secret')
  })
  return secret
}

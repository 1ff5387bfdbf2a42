/**
 * The secret a server signs session passwords with and, in an ensemble,
 * proves itself to its peers with: the configured one (ensembleSecret,
 * CONCLAVE_SECRET), or for a standalone server one it made and keeps in its
 * storage, so session passwords survive a restart. An ensemble on quorum TLS
 * without a secret has nothing its members share to key passwords with:
 * they derive from the session id alone, as ZooKeeper's do, with a warning.
 */
import type { Logger } from 'pino'
import { newSecret } from '../auth/session-password.js'
import type { ServerConfig } from '../config.js'
import type { Storage } from '../storage/index.js'

const SECRET_KEY = 'ensembleSecret'
/** The key of session passwords in an ensemble without a secret (config.ts allows that only with quorum TLS). */
const NO_SECRET_KEY = 'conclave-session-passwords-without-an-ensemble-secret'

export function loadSecret(config: ServerConfig, storage: Storage, logger: Logger): string {
  if (config.ensembleSecret !== undefined) return config.ensembleSecret
  if (config.servers.length > 1) {
    logger.warn(
      'no ensembleSecret: quorum TLS authenticates the peers, but session passwords derive from session ids ' +
        'alone, as in ZooKeeper (whoever learns a session id can resume the session); set secretFile or ' +
        'CONCLAVE_SECRET on every member to key them',
    )
    return NO_SECRET_KEY
  }
  const saved = storage.getMeta(SECRET_KEY)
  if (saved !== undefined) return saved
  const secret = newSecret()
  storage.setMeta(SECRET_KEY, secret, (err) => {
    if (err) logger.error({ err }, 'could not save the session secret')
  })
  return secret
}

/**
 * ACL types and the well-known ACL lists, as in ZooKeeper's ZooDefs.Ids.
 * Imports nothing of ours but opcodes.
 */
import { Perms } from './opcodes.js'

export interface Id {
  scheme: string
  id: string
}

export interface Acl {
  perms: number
  id: Id
}

export const ANYONE_ID: Id = { scheme: 'world', id: 'anyone' }
export const AUTH_IDS: Id = { scheme: 'auth', id: '' }

/** world:anyone with every permission (ZooKeeper's OPEN_ACL_UNSAFE). */
export const OPEN_ACL_UNSAFE: readonly Acl[] = Object.freeze([{ perms: Perms.ALL, id: ANYONE_ID }])
/** Every permission for the creator's authenticated ids. */
export const CREATOR_ALL_ACL: readonly Acl[] = Object.freeze([{ perms: Perms.ALL, id: AUTH_IDS }])
/** world:anyone READ. */
export const READ_ACL_UNSAFE: readonly Acl[] = Object.freeze([{ perms: Perms.READ, id: ANYONE_ID }])

export { Perms }

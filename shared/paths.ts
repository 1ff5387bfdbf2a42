/**
 * ZooKeeper's path rules (PathUtils.validatePath), exactly: absolute; no
 * trailing '/' except the root (and a sequential create, whose name may be
 * just the number); no empty, '.' or '..' component; no NUL, U+0001-U+001F,
 * U+007F-U+009F, U+D800-U+F8FF, U+FFF0-U+FFFF. Plus path helpers.
 * Imports nothing.
 */

/** Longest path we accept, in UTF-16 code units (a named limit; ZooKeeper bounds it by jute.maxbuffer). */
export const PATH_LENGTH_MAX = 4096

function badChar(c: number): boolean {
  return (
    c === 0 ||
    (c > 0x0000 && c <= 0x001f) ||
    (c >= 0x007f && c <= 0x009f) ||
    (c >= 0xd800 && c <= 0xf8ff) ||
    (c >= 0xfff0 && c <= 0xffff)
  )
}

/**
 * Returns null for a valid path, or the reason it is invalid. `sequential`
 * allows a trailing '/' (the server appends the sequence number).
 */
export function pathError(path: string, sequential = false): string | null {
  if (typeof path !== 'string') return 'path must be a string'
  if (path.length === 0) return 'path must not be empty'
  if (path.length > PATH_LENGTH_MAX) return `path is longer than ${PATH_LENGTH_MAX} characters`
  if (path.charCodeAt(0) !== 0x2f) return 'path must start with /'
  if (path.length === 1) return null
  if (path.charCodeAt(path.length - 1) === 0x2f && !sequential) return 'path must not end with /'
  const end = sequential && path.endsWith('/') ? path.length - 1 : path.length
  let start = 1
  for (let i = 1; i <= end; i++) {
    const c = i < end ? path.charCodeAt(i) : 0x2f
    if (c === 0x2f) {
      const len = i - start
      if (len === 0) return `empty node name at index ${i}`
      if (len === 1 && path.charCodeAt(start) === 0x2e) return `relative path component '.' at index ${start}`
      if (len === 2 && path.charCodeAt(start) === 0x2e && path.charCodeAt(start + 1) === 0x2e)
        return `relative path component '..' at index ${start}`
      start = i + 1
      continue
    }
    if (badChar(c)) return `invalid character \\u${c.toString(16).padStart(4, '0')} at index ${i}`
  }
  return null
}

export function isValidPath(path: string, sequential = false): boolean {
  return pathError(path, sequential) === null
}

/** The parent of a valid, non-root path ('/a' -> '/', '/a/b' -> '/a'). */
export function parentPath(path: string): string {
  const i = path.lastIndexOf('/')
  return i <= 0 ? '/' : path.slice(0, i)
}

/** The last component of a valid path ('/' -> ''). */
export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1)
}

export function joinPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`
}

/** Prefix a client path with a chroot ('/app' + '/x' -> '/app/x'; '/app' + '/' -> '/app'). */
export function applyChroot(chroot: string | undefined, path: string): string {
  if (!chroot || chroot === '/') return path
  return path === '/' ? chroot : chroot + path
}

/** Remove a chroot from a server path; returns undefined if the path is outside it. */
export function stripChroot(chroot: string | undefined, path: string): string | undefined {
  if (!chroot || chroot === '/') return path
  if (path === chroot) return '/'
  if (path.startsWith(`${chroot}/`)) return path.slice(chroot.length)
  return undefined
}

/** Sequential suffix: ZooKeeper's %010d of a signed 32-bit counter. */
export function sequenceSuffix(counter: number): string {
  // Java's %010d counts the sign in the width: -5 -> '-000000005'.
  const n = counter | 0
  return n < 0 ? `-${String(-n).padStart(9, '0')}` : String(n).padStart(10, '0')
}

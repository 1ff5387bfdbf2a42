/**
 * assert(): programmer-error checks that stay on in production (fail-stop).
 * A failed assertion means the process is in a state the code does not
 * understand; a server must exit rather than vote or ACK from it.
 * Imports nothing.
 */

export class AssertionError extends Error {
  override name = 'AssertionError'
}

export function assert(condition: unknown, message = 'assertion failed'): asserts condition {
  if (!condition) throw new AssertionError(message)
}

/**
 * Throws an AssertionError: `if (!ok) fail(\`...\`)` is assert() for hot
 * paths whose message is a template — assert's message argument is built on
 * every call (formatting a zxid costs ~0.5 µs), fail's only when it fails.
 */
export function fail(message: string): never {
  throw new AssertionError(message)
}

export function unreachable(value: never, message = 'unreachable'): never {
  throw new AssertionError(`${message}: ${String(value)}`)
}

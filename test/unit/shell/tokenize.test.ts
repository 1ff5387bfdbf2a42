/**
 * The shell's tokenizer: whitespace, quotes, escapes, joined parts, errors,
 * and quoteArg's round trip (a property test).
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { quoteArg, ShellUsageError, tokenize } from '../../../client/shell/shell-tokenize.js'

describe('tokenize', () => {
  it('splits on runs of whitespace', () => {
    expect(tokenize('  ls   -R\t/a  ')).toEqual(['ls', '-R', '/a'])
    expect(tokenize('')).toEqual([])
    expect(tokenize('   ')).toEqual([])
  })

  it('keeps quoted spaces', () => {
    expect(tokenize('set /a "hello world"')).toEqual(['set', '/a', 'hello world'])
    expect(tokenize("set /a 'x y'")).toEqual(['set', '/a', 'x y'])
  })

  it('gives empty quotes as an empty token', () => {
    expect(tokenize('set /a ""')).toEqual(['set', '/a', ''])
    expect(tokenize("set /a ''")).toEqual(['set', '/a', ''])
  })

  it('joins adjacent quoted and bare parts', () => {
    expect(tokenize('a"b c"d')).toEqual(['ab cd'])
    expect(tokenize(`'it'"'"'s'`)).toEqual(["it's"])
  })

  it('reads escapes inside double quotes', () => {
    expect(tokenize('"a\\"b"')).toEqual(['a"b'])
    expect(tokenize('"a\\\\b"')).toEqual(['a\\b'])
    expect(tokenize('"l1\\nl2\\t"')).toEqual(['l1\nl2\t'])
    expect(tokenize('"\\x41\\u00e9"')).toEqual(['Aé'])
    expect(tokenize('"\\q"')).toEqual(['\\q'])
  })

  it('takes single quotes literally', () => {
    expect(tokenize("'a\\nb'")).toEqual(['a\\nb'])
  })

  it('escapes one character outside quotes', () => {
    expect(tokenize('a\\ b c')).toEqual(['a b', 'c'])
    expect(tokenize('\\"x')).toEqual(['"x'])
  })

  it('rejects unterminated quotes and dangling escapes', () => {
    expect(() => tokenize('set /a "oops')).toThrow(ShellUsageError)
    expect(() => tokenize("set /a 'oops")).toThrow(/unterminated single quote/)
    expect(() => tokenize('set /a oops\\')).toThrow(/dangling backslash/)
    expect(() => tokenize('"\\x4"')).toThrow(/hex digits/)
  })
})

describe('quoteArg', () => {
  it('leaves plain words alone and quotes the rest', () => {
    expect(quoteArg('/a/b')).toBe('/a/b')
    expect(quoteArg('world:anyone:cdrwa')).toBe('world:anyone:cdrwa')
    expect(quoteArg('a b')).toBe("'a b'")
    expect(quoteArg('')).toBe("''")
  })

  it('round-trips through tokenize', () => {
    fc.assert(
      fc.property(fc.array(fc.string(), { maxLength: 5 }), (args) => {
        expect(tokenize(args.map(quoteArg).join(' '))).toEqual(args)
      }),
    )
  })
})

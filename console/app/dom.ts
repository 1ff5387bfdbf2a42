/**
 * A few DOM helpers for the console (no framework): `h` builds an element
 * with attributes, listeners and children; `clear`/`replace` swap contents.
 * Browser only.
 */
type Child = Node | string | number | null | undefined | false
type Attrs = Record<string, unknown>

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs | null = null,
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue
    if (key.startsWith('on') && typeof value === 'function')
      el.addEventListener(key.slice(2).toLowerCase(), value as EventListener)
    else if (key === 'class') el.className = String(value)
    // Through the CSSOM: the console's Content-Security-Policy refuses style attributes.
    else if (key === 'style') el.style.cssText = String(value)
    else if (key === 'value' || key === 'checked' || key === 'disabled' || key === 'selected')
      (el as unknown as Record<string, unknown>)[key] = value
    else el.setAttribute(key, value === true ? '' : String(value))
  }
  append(el, children)
  return el
}

function append(el: Element, children: (Child | Child[])[]): void {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue
    el.append(typeof c === 'string' || typeof c === 'number' ? String(c) : c)
  }
}

export function replace(el: Element, ...children: (Child | Child[])[]): void {
  el.replaceChildren()
  append(el, children)
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id)
  if (el === null) throw new Error(`no element #${id}`)
  return el as T
}

/** A labelled control: <label>text <control></label>. */
export function labelled(text: string, control: HTMLElement): HTMLLabelElement {
  return h('label', null, `${text} `, control)
}

/** Describes an error for people: a ZkError's code and path, or the message. */
export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}

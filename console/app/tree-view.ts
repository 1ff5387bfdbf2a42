/**
 * The tree view: lazy browsing of children (a page of PAGE at a time), go
 * to a path (with completion of the last name), a znode's Stat, ACL and
 * data (text, JSON or hex), editing with compare-and-set on the version (a
 * conflict shows the other writer's value and a diff), create, delete
 * (recursive, confirming the count), export and import of a subtree as JSON.
 *
 * Keyboard (WAI-ARIA tree): Up/Down move, Right expands or enters, Left
 * collapses or goes to the parent, Home/End, Enter toggles (or loads the
 * next page on a "more" row). Selection follows focus. Browser only.
 */
import { type Acl, type Client, type CreateMode, ErrorCode, type Stat, ZkError } from '../../client/index.js'
import type { AppContext, View } from './context.js'
import { byId, errorText, h, labelled, replace } from './dom.js'
import {
  type DataFormat,
  editable,
  encode,
  lineDiff,
  parseJsonText,
  render,
  time,
  zxidHex,
} from './format.js'
import {
  checkDocument,
  deleteRecursive,
  exportSubtree,
  importSubtree,
  joinPath,
  subtreeSize,
} from './subtree.js'

const PAGE = 100

interface TreeNode {
  path: string
  name: string
  stat?: Stat | undefined
  expanded: boolean
  children?: string[]
  shown: number
  error?: string
}

interface Row {
  kind: 'node' | 'more'
  path: string
  level: number
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/')
  return i <= 0 ? '/' : path.slice(0, i)
}

function nameOf(path: string): string {
  return path === '/' ? '/' : path.slice(path.lastIndexOf('/') + 1)
}

export function permsText(perms: number): string {
  return ['c', 'd', 'r', 'w', 'a'].filter((_, i) => perms & [4, 8, 1, 2, 16][i]!).join('')
}

export class TreeView implements View {
  private zk: Client | null = null
  private readonly nodes = new Map<string, TreeNode>()
  private focused = '/'
  private selected: string | undefined
  private readonly armed = new Set<string>()
  private format: DataFormat = 'text'
  private current: { path: string; data: Uint8Array; stat: Stat; acl: Acl[] } | undefined
  private editing = false
  private generation = 0
  private readonly treeEl: HTMLDivElement
  private readonly details: HTMLElement

  constructor(private readonly app: AppContext) {
    this.treeEl = byId<HTMLDivElement>('tree')
    this.details = byId('node-details')
    this.treeEl.addEventListener('keydown', (e) => this.onKey(e))
    this.treeEl.addEventListener('click', (e) => this.onClick(e))
    const goto = byId<HTMLInputElement>('goto-path')
    byId('goto-form').addEventListener('submit', (e) => {
      e.preventDefault()
      void this.reveal(goto.value.trim())
    })
    goto.addEventListener('input', () => void this.complete(goto.value))
  }

  setClient(zk: Client | null): void {
    this.zk = zk
    this.generation++
    this.nodes.clear()
    this.armed.clear()
    this.current = undefined
    this.editing = false
    if (zk === null) {
      replace(this.treeEl)
      replace(this.details, h('p', null, 'Not connected.'))
      return
    }
    this.nodes.set('/', { path: '/', name: '/', expanded: false, shown: PAGE })
    void this.expand('/').then(() => this.select(this.selected ?? '/', false))
  }

  setVisible(): void {}

  // ------------------------------------------------------------------ the tree

  private node(path: string): TreeNode {
    let n = this.nodes.get(path)
    if (n === undefined) {
      n = { path, name: nameOf(path), expanded: false, shown: PAGE }
      this.nodes.set(path, n)
    }
    return n
  }

  /** Loads a node's children (with a children watch that reloads them) and the stats of the shown page. */
  private async loadChildren(path: string): Promise<void> {
    const zk = this.zk
    if (zk === null) return
    const gen = this.generation
    const n = this.node(path)
    const watch = this.armed.has(path)
      ? undefined
      : () => {
          this.armed.delete(path)
          if (gen === this.generation && this.node(path).expanded) void this.loadChildren(path)
        }
    try {
      const { children, stat } = await zk.getChildrenWithStat(
        path,
        watch === undefined ? undefined : { watch },
      )
      if (watch !== undefined) this.armed.add(path)
      n.children = children
      n.stat = stat
      n.error = undefined
      await this.loadStats(n)
    } catch (err) {
      if (ZkError.is(err, ErrorCode.NO_NODE)) {
        this.nodes.delete(path)
        if (path !== '/') await this.loadChildren(parentOf(path))
      } else n.error = errorText(err)
    }
    if (gen === this.generation) this.renderTree()
  }

  private async loadStats(n: TreeNode): Promise<void> {
    const zk = this.zk
    if (zk === null || n.children === undefined) return
    const names = n.children
      .slice(0, n.shown)
      .filter((c) => this.nodes.get(joinPath(n.path, c))?.stat === undefined)
    const stats = await Promise.all(names.map((c) => zk.exists(joinPath(n.path, c)).catch(() => null)))
    names.forEach((c, i) => {
      this.node(joinPath(n.path, c)).stat = stats[i] ?? undefined
    })
  }

  private async expand(path: string): Promise<void> {
    this.node(path).expanded = true
    await this.loadChildren(path)
  }

  private collapse(path: string): void {
    this.node(path).expanded = false
    this.renderTree()
  }

  private rows(): Row[] {
    const out: Row[] = []
    const walk = (path: string, level: number): void => {
      out.push({ kind: 'node', path, level })
      const n = this.nodes.get(path)
      if (n === undefined || !n.expanded || n.children === undefined) return
      for (const c of n.children.slice(0, n.shown)) walk(joinPath(path, c), level + 1)
      if (n.children.length > n.shown) out.push({ kind: 'more', path, level: level + 1 })
    }
    if (this.nodes.has('/')) walk('/', 1)
    return out
  }

  private rowKey(r: Row): string {
    return r.kind === 'more' ? `more:${r.path}` : r.path
  }

  private renderTree(): void {
    const rows = this.rows()
    if (!rows.some((r) => this.rowKey(r) === this.focused)) this.focused = this.selected ?? '/'
    const hadFocus = this.treeEl.contains(document.activeElement)
    const items = rows.map((r) => {
      const key = this.rowKey(r)
      if (r.kind === 'more') {
        const n = this.node(r.path)
        return h(
          'div',
          {
            role: 'treeitem',
            class: 'more',
            'data-key': key,
            'aria-level': r.level,
            tabindex: key === this.focused ? 0 : -1,
          },
          `Show ${Math.min(PAGE, n.children!.length - n.shown)} more (${n.shown} of ${n.children!.length} shown)`,
        )
      }
      const n = this.node(r.path)
      const expandable = (n.stat?.numChildren ?? n.children?.length ?? 0) > 0
      const ephemeral = n.stat !== undefined && n.stat.ephemeralOwner !== '0x0'
      return h(
        'div',
        {
          role: 'treeitem',
          'data-key': key,
          'data-path': r.path,
          'aria-level': r.level,
          'aria-expanded': expandable ? String(n.expanded) : undefined,
          'aria-selected': String(this.selected === r.path),
          tabindex: key === this.focused ? 0 : -1,
          style: `padding-left: ${(r.level - 1) * 1.1 + 0.3}em`,
        },
        h('span', { class: 'twisty', 'aria-hidden': 'true' }, expandable ? (n.expanded ? '▾' : '▸') : '·'),
        h('span', { class: 'name' }, n.name),
        expandable ? h('span', { class: 'badge' }, String(n.stat?.numChildren ?? n.children?.length)) : null,
        ephemeral
          ? h('span', { class: 'badge eph', title: `ephemeral, session ${n.stat!.ephemeralOwner}` }, 'E')
          : null,
        n.error !== undefined ? h('span', { class: 'err' }, ` ${n.error}`) : null,
      )
    })
    replace(this.treeEl, items)
    if (hadFocus) this.focusRow(this.focused)
  }

  private focusRow(key: string): void {
    for (const li of this.treeEl.querySelectorAll<HTMLElement>('[role=treeitem]')) {
      const on = li.dataset.key === key
      li.tabIndex = on ? 0 : -1
      if (on) {
        li.focus()
        li.scrollIntoView({ block: 'nearest' })
      }
    }
  }

  private moveTo(key: string): void {
    this.focused = key
    this.focusRow(key)
    if (!key.startsWith('more:')) void this.select(key, false)
  }

  private onClick(e: MouseEvent): void {
    const li = (e.target as HTMLElement).closest<HTMLElement>('[role=treeitem]')
    if (li === null) return
    const key = li.dataset.key!
    if (key.startsWith('more:')) return void this.showMore(key.slice(5))
    if ((e.target as HTMLElement).classList.contains('twisty')) void this.toggle(key)
    else if (this.selected === key && li.getAttribute('aria-expanded') === 'false') void this.expand(key)
    this.moveTo(key)
  }

  private async toggle(path: string): Promise<void> {
    if (this.node(path).expanded) this.collapse(path)
    else await this.expand(path)
  }

  private async showMore(path: string): Promise<void> {
    const n = this.node(path)
    n.shown += PAGE
    await this.loadStats(n)
    this.renderTree()
    this.moveTo(joinPath(path, n.children![n.shown - PAGE]!))
  }

  private onKey(e: KeyboardEvent): void {
    const rows = this.rows()
    const keys = rows.map((r) => this.rowKey(r))
    const at = keys.indexOf(this.focused)
    const row = rows[at]
    if (row === undefined) return
    const n = row.kind === 'node' ? this.node(row.path) : undefined
    const expandable = n !== undefined && (n.stat?.numChildren ?? n.children?.length ?? 0) > 0
    let handled = true
    switch (e.key) {
      case 'ArrowDown':
        if (at + 1 < keys.length) this.moveTo(keys[at + 1]!)
        break
      case 'ArrowUp':
        if (at > 0) this.moveTo(keys[at - 1]!)
        break
      case 'Home':
        this.moveTo(keys[0]!)
        break
      case 'End':
        this.moveTo(keys[keys.length - 1]!)
        break
      case 'ArrowRight':
        if (n !== undefined && expandable && !n.expanded) void this.expand(n.path)
        else if (n?.expanded && at + 1 < keys.length && rows[at + 1]!.level > row.level)
          this.moveTo(keys[at + 1]!)
        break
      case 'ArrowLeft':
        if (n?.expanded) this.collapse(n.path)
        else if (row.path !== '/' || row.kind === 'more')
          this.moveTo(row.kind === 'more' ? row.path : parentOf(row.path))
        break
      case 'Enter':
      case ' ':
        if (row.kind === 'more') void this.showMore(row.path)
        else if (expandable) void this.toggle(row.path)
        break
      default:
        handled = false
    }
    if (handled) e.preventDefault()
  }

  /** Opens every ancestor of `path`, shows and selects it. */
  async reveal(path: string): Promise<void> {
    const zk = this.zk
    if (zk === null) return
    if (path === '' || !path.startsWith('/')) return this.app.notify(`not an absolute path: ${path}`, 'error')
    if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1)
    let stat: Stat | null
    try {
      stat = await zk.exists(path)
    } catch (err) {
      return this.app.notify(errorText(err), 'error')
    }
    if (stat === null) return this.app.notify(`no znode ${path}`, 'error')
    const parts = path.split('/').filter((p) => p !== '')
    let dir = '/'
    for (const part of parts) {
      const n = this.node(dir)
      if (!n.expanded || n.children === undefined) await this.expand(dir)
      const i = n.children?.indexOf(part) ?? -1
      if (i >= n.shown) {
        n.shown = i + 1
        await this.loadStats(n)
      }
      dir = joinPath(dir, part)
    }
    this.renderTree()
    this.focused = path
    this.focusRow(path)
    await this.select(path, true)
  }

  private async complete(text: string): Promise<void> {
    const zk = this.zk
    const list = byId<HTMLDataListElement>('goto-options')
    if (zk === null || !text.startsWith('/')) return
    const dir = parentOf(text.endsWith('/') && text.length > 1 ? `${text}x` : text)
    const prefix = text.slice(text.lastIndexOf('/') + 1)
    const names = await zk.getChildren(dir).catch(() => [] as string[])
    replace(
      list,
      names
        .filter((n) => n.startsWith(prefix))
        .slice(0, 50)
        .map((n) => h('option', { value: joinPath(dir, n) })),
    )
  }

  // ------------------------------------------------------------------ details

  private async select(path: string, force: boolean): Promise<void> {
    if (this.selected === path && !force && this.current?.path === path) return
    if (this.selected !== path) this.editing = false
    this.selected = path
    for (const li of this.treeEl.querySelectorAll<HTMLElement>('[role=treeitem]'))
      li.setAttribute('aria-selected', String(li.dataset.path === path))
    await this.loadDetails(path)
  }

  private async loadDetails(path: string): Promise<void> {
    const zk = this.zk
    if (zk === null) return
    const gen = this.generation
    try {
      const watch = (): void => {
        if (gen !== this.generation || this.selected !== path) return
        if (this.editing) {
          const note = document.getElementById('edit-note')
          if (note !== null)
            note.textContent = 'Someone else changed this node while you edit: saving will show both.'
          return
        }
        void this.loadDetails(path)
      }
      const [{ data, stat }, { acl }] = await Promise.all([zk.getData(path, { watch }), zk.getACL(path)])
      if (gen !== this.generation || this.selected !== path) return
      this.current = { path, data, stat, acl }
      const n = this.nodes.get(path)
      if (n !== undefined) n.stat = stat
      if (!this.editing) this.renderDetails()
    } catch (err) {
      if (this.selected !== path) return
      if (ZkError.is(err, ErrorCode.NO_NODE)) {
        replace(this.details, h('h2', null, path), h('p', { role: 'status' }, 'This znode was deleted.'))
        this.current = undefined
        if (path !== '/') void this.loadChildren(parentOf(path))
      } else replace(this.details, h('h2', null, path), h('p', { class: 'err' }, errorText(err)))
    }
  }

  private renderDetails(extra?: HTMLElement): void {
    const c = this.current
    if (c === undefined) return
    const { path, stat, acl, data } = c
    const shown = render(data, this.format)
    const formatSelect = h(
      'select',
      {
        id: 'data-format',
        onchange: (e: Event) => {
          this.format = (e.target as HTMLSelectElement).value as DataFormat
          this.renderDetails()
        },
      },
      (['text', 'json', 'hex'] as const).map((f) =>
        h(
          'option',
          { value: f, selected: f === this.format },
          f === 'json' ? 'JSON' : f === 'hex' ? 'Hex' : 'Text',
        ),
      ),
    )
    const statRows: [string, string][] = [
      ['czxid', zxidHex(stat.czxid)],
      ['mzxid', zxidHex(stat.mzxid)],
      ['pzxid', zxidHex(stat.pzxid)],
      ['ctime', time(stat.ctime)],
      ['mtime', time(stat.mtime)],
      ['version', String(stat.version)],
      ['cversion', String(stat.cversion)],
      ['aversion', String(stat.aversion)],
      ['ephemeralOwner', stat.ephemeralOwner],
      ['dataLength', String(stat.dataLength)],
      ['numChildren', String(stat.numChildren)],
    ]
    replace(
      this.details,
      h('h2', { id: 'node-path' }, path),
      h(
        'div',
        { class: 'toolbar', role: 'toolbar', 'aria-label': 'znode actions' },
        h('button', { type: 'button', onclick: () => void this.loadDetails(path) }, 'Refresh'),
        h('button', { type: 'button', onclick: () => this.startEdit() }, 'Edit'),
        h('button', { type: 'button', onclick: () => this.showCreate() }, 'New child…'),
        path === '/'
          ? null
          : h('button', { type: 'button', onclick: () => void this.showDelete() }, 'Delete…'),
        h('button', { type: 'button', onclick: () => void this.showExport() }, 'Export subtree'),
        h('button', { type: 'button', onclick: () => this.showImport() }, 'Import JSON…'),
      ),
      extra ?? null,
      h(
        'div',
        { class: 'columns' },
        h(
          'section',
          { 'aria-labelledby': 'stat-h' },
          h('h3', { id: 'stat-h' }, 'Stat'),
          h(
            'table',
            { class: 'stat', id: 'stat-table' },
            h(
              'tbody',
              null,
              statRows.map(([k, v]) =>
                h('tr', { 'data-field': k }, h('th', { scope: 'row' }, k), h('td', null, v)),
              ),
            ),
          ),
          h('h3', { id: 'acl-h' }, 'ACL'),
          h(
            'ul',
            { id: 'acl-list', 'aria-labelledby': 'acl-h' },
            acl.map((a) => h('li', null, `${a.id.scheme}:${a.id.id} — ${permsText(a.perms)}`)),
          ),
        ),
        h(
          'section',
          { class: 'data', 'aria-labelledby': 'data-h' },
          h('h3', { id: 'data-h' }, `Data (${stat.dataLength} bytes)`),
          labelled('Show data as', formatSelect),
          shown.note === undefined ? null : h('p', { class: 'note', id: 'data-note' }, shown.note),
          h('pre', { id: 'data-view', 'aria-label': 'Data of the znode', tabindex: 0 }, shown.text),
        ),
      ),
    )
  }

  private panel(title: string, ...children: (HTMLElement | string | null)[]): HTMLElement {
    return h(
      'section',
      { class: 'panel', 'aria-label': title },
      h('h3', null, title),
      ...children,
      h('button', { type: 'button', class: 'secondary', onclick: () => this.closePanel() }, 'Close'),
    )
  }

  private closePanel(): void {
    this.editing = false
    this.renderDetails()
  }

  // ------------------------------------------------------------------ edit (compare-and-set)

  private startEdit(): void {
    const c = this.current
    if (c === undefined) return
    this.editing = true
    const textarea = h('textarea', { id: 'editor', rows: 12, cols: 60, spellcheck: 'false' })
    textarea.value = editable(c.data, this.format)
    const check = h('p', { id: 'editor-check', role: 'status', 'aria-live': 'polite' })
    const baseVersion = c.stat.version
    const save = h('button', { type: 'button', id: 'save' }, `Save (if still version ${baseVersion})`)
    const validate = (): boolean => {
      try {
        encode(textarea.value, this.format)
        check.textContent = this.format === 'json' ? 'Valid JSON' : ''
        check.className = 'ok'
        save.disabled = false
        return true
      } catch (err) {
        check.textContent = errorText(err)
        check.className = 'err'
        save.disabled = true
        return false
      }
    }
    textarea.addEventListener('input', validate)
    save.addEventListener('click', () => {
      if (validate()) void this.save(c.path, encode(textarea.value, this.format), baseVersion, textarea.value)
    })
    this.renderDetails(
      h(
        'section',
        { class: 'panel', 'aria-label': 'Edit data' },
        h('h3', null, `Edit (${this.format === 'json' ? 'JSON' : this.format})`),
        labelled(`New value (${this.format})`, textarea),
        check,
        h('p', { id: 'edit-note', class: 'note' }),
        h(
          'div',
          { class: 'toolbar' },
          save,
          h('button', { type: 'button', onclick: () => this.closePanel() }, 'Cancel'),
        ),
      ),
    )
    validate()
    textarea.focus()
  }

  private async save(path: string, bytes: Uint8Array, version: number, mine: string): Promise<void> {
    const zk = this.zk
    if (zk === null) return
    try {
      const stat = await zk.setData(path, bytes, version)
      this.editing = false
      this.app.notify(`Saved ${path}: version ${stat.version}`)
      await this.loadDetails(path)
    } catch (err) {
      if (!ZkError.is(err, ErrorCode.BAD_VERSION)) return this.app.notify(errorText(err), 'error')
      await this.showConflict(path, bytes, version, mine)
    }
  }

  private async showConflict(path: string, bytes: Uint8Array, base: number, mine: string): Promise<void> {
    const zk = this.zk
    if (zk === null) return
    const { data, stat } = await zk.getData(path)
    this.current = { ...this.current!, data, stat }
    const theirs = editable(data, this.format)
    // JSON is compared formatted, so the diff shows the fields that differ.
    const mineJson = this.format === 'json' ? parseJsonText(mine) : undefined
    const diff = lineDiff(theirs, mineJson?.ok === true ? mineJson.formatted : mine)
    this.renderDetails(
      h(
        'section',
        { class: 'panel conflict', id: 'conflict', role: 'alert', 'aria-label': 'Conflict' },
        h('h3', null, 'Conflict: someone else changed this node'),
        h(
          'p',
          null,
          `Your edit was based on version ${base}; the node is now at version ${stat.version} (changed ${time(stat.mtime)}). Nothing was written.`,
        ),
        h('h4', null, 'Their value'),
        h('pre', { id: 'their-value', 'aria-label': 'Their value' }, theirs),
        h('h4', null, 'Difference (their value → yours)'),
        h(
          'pre',
          { id: 'conflict-diff', 'aria-label': 'Difference' },
          diff.map((d) =>
            h('span', { class: d.op === '+' ? 'add' : d.op === '-' ? 'del' : '' }, `${d.op} ${d.line}\n`),
          ),
        ),
        h(
          'div',
          { class: 'toolbar' },
          h(
            'button',
            {
              type: 'button',
              id: 'overwrite',
              onclick: () => void this.save(path, bytes, stat.version, mine),
            },
            `Overwrite with mine (if still version ${stat.version})`,
          ),
          h('button', { type: 'button', onclick: () => this.closePanel() }, 'Keep theirs'),
        ),
      ),
    )
  }

  // ------------------------------------------------------------------ create, delete

  private showCreate(): void {
    const c = this.current
    if (c === undefined) return
    this.editing = true
    const name = h('input', { id: 'create-name', required: true, autocomplete: 'off' })
    const data = h('textarea', { id: 'create-data', rows: 3, cols: 50 })
    const ttl = h('input', { id: 'create-ttl', type: 'number', min: 1, value: '60000' })
    const modes: CreateMode[] = [
      'persistent',
      'ephemeral',
      'persistentSequential',
      'ephemeralSequential',
      'container',
      'persistentWithTtl',
      'persistentSequentialWithTtl',
    ]
    const mode = h(
      'select',
      { id: 'create-mode' },
      modes.map((m) => h('option', { value: m }, m)),
    )
    const submit = async (e: Event): Promise<void> => {
      e.preventDefault()
      const zk = this.zk
      if (zk === null) return
      const m = mode.value as CreateMode
      try {
        const created = await zk.create(joinPath(c.path, name.value.trim()), data.value, {
          mode: m,
          ...(m.endsWith('WithTtl') ? { ttlMs: Number(ttl.value) } : {}),
        })
        this.editing = false
        this.app.notify(`Created ${created}`)
        await this.reveal(created)
      } catch (err) {
        this.app.notify(errorText(err), 'error')
      }
    }
    this.renderDetails(
      this.panel(
        `New child of ${c.path}`,
        h(
          'form',
          { onsubmit: submit },
          labelled('Name', name),
          labelled('Data', data),
          labelled('Mode', mode),
          labelled('TTL (ms, TTL modes only)', ttl),
          h(
            'p',
            { class: 'note' },
            'Ephemeral nodes belong to this console’s session and go when it closes.',
          ),
          h('button', { type: 'submit' }, 'Create'),
        ),
      ),
    )
    name.focus()
  }

  private async showDelete(): Promise<void> {
    const c = this.current
    const zk = this.zk
    if (c === undefined || zk === null) return
    this.editing = true
    let count: number
    try {
      count = await subtreeSize(zk, c.path)
    } catch (err) {
      return this.app.notify(errorText(err), 'error')
    }
    const go = async (): Promise<void> => {
      try {
        let n = 1
        if (count === 1) await zk.delete(c.path, c.stat.version)
        else n = await deleteRecursive(zk, c.path)
        this.editing = false
        this.app.notify(`Deleted ${n} node${n === 1 ? '' : 's'} (${c.path})`)
        const parent = parentOf(c.path)
        await this.loadChildren(parent)
        await this.reveal(parent)
      } catch (err) {
        this.app.notify(errorText(err), 'error')
      }
    }
    const text =
      count === 1
        ? `Delete ${c.path} (if still version ${c.stat.version})?`
        : `Delete ${c.path} and its ${count - 1} descendant${count === 2 ? '' : 's'}: ${count} nodes in all?`
    const button = h(
      'button',
      { type: 'button', id: 'confirm-delete', class: 'danger', onclick: () => void go() },
      count === 1 ? 'Delete 1 node' : `Delete ${count} nodes`,
    )
    this.renderDetails(this.panel('Delete', h('p', { id: 'delete-question' }, text), button))
    button.focus()
  }

  // ------------------------------------------------------------------ export, import

  private async showExport(): Promise<void> {
    const c = this.current
    const zk = this.zk
    if (c === undefined || zk === null) return
    this.editing = true
    try {
      const doc = await exportSubtree(zk, c.path)
      const json = JSON.stringify(doc, null, 2)
      const url = URL.createObjectURL(new Blob([json], { type: 'application/json' }))
      const file = `${c.path === '/' ? 'root' : c.path.slice(1).replaceAll('/', '_')}.json`
      const area = h('textarea', { id: 'export-json', rows: 14, cols: 60, readonly: true })
      area.value = json
      this.renderDetails(
        this.panel(
          `Export of ${c.path}`,
          labelled('Exported JSON', area),
          h('p', null, h('a', { href: url, download: file, id: 'export-download' }, `Download ${file}`)),
        ),
      )
    } catch (err) {
      this.app.notify(errorText(err), 'error')
    }
  }

  private showImport(): void {
    const c = this.current
    if (c === undefined) return
    this.editing = true
    const area = h('textarea', { id: 'import-json', rows: 10, cols: 60, spellcheck: 'false' })
    const file = h('input', { id: 'import-file', type: 'file', accept: 'application/json,.json' })
    const overwrite = h('input', { id: 'import-overwrite', type: 'checkbox' })
    const target = h('input', { id: 'import-target', value: c.path, size: 40 })
    const result = h('p', { id: 'import-result', role: 'status' })
    file.addEventListener('change', async () => {
      const f = file.files?.[0]
      if (f !== undefined) area.value = await f.text()
    })
    const go = async (): Promise<void> => {
      const zk = this.zk
      if (zk === null) return
      try {
        const doc = checkDocument(JSON.parse(area.value))
        const to = target.value.trim()
        const r = await importSubtree(zk, to, doc, { overwrite: overwrite.checked })
        result.textContent = `Imported into ${to}: ${r.created} created, ${r.updated} updated, ${r.unchanged} left as they were, ${r.skippedEphemeral} ephemeral skipped`
        result.className = 'ok'
        await this.loadChildren(parentOf(to))
        await this.loadChildren(to)
      } catch (err) {
        result.textContent = `Import failed: ${errorText(err)}`
        result.className = 'err'
      }
    }
    this.renderDetails(
      this.panel(
        'Import a subtree (conclave-subtree JSON)',
        labelled('JSON', area),
        labelled('or a file', file),
        labelled('Create it at', target),
        h('label', null, overwrite, ' Overwrite the data of nodes that exist'),
        h(
          'div',
          { class: 'toolbar' },
          h('button', { type: 'button', id: 'import-go', onclick: () => void go() }, 'Import'),
        ),
        result,
      ),
    )
    area.focus()
  }
}

// Building DOM nodes without HTML strings: every piece of data goes in as text
// (textContent), never as markup, so nothing a task or the server says can become code.

/**
 * Create an element.
 * @param {string} tag
 * @param {{class?: string, text?: (string|number|null), title?: string, attrs?: Object,
 *          data?: Object, hidden?: boolean}} [props]
 * @param {Array<Node|string|null|undefined|false>} [children]
 */
export function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  if (props.class) node.className = props.class;
  if (props.text !== undefined && props.text !== null) node.textContent = String(props.text);
  if (props.title) node.title = props.title;
  if (props.hidden) node.hidden = true;
  for (const [name, value] of Object.entries(props.attrs || {})) {
    if (value !== undefined && value !== null && value !== false) {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  for (const [name, value] of Object.entries(props.data || {})) {
    node.dataset[name] = String(value);
  }
  append(node, children);
  return node;
}

/** Append children; strings become text nodes, null/undefined/false are skipped. */
export function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

/** Replace all children of `node`. */
export function replace(node, children) {
  node.replaceChildren();
  return append(node, children);
}

/** document.getElementById that fails loudly when the page and the script disagree. */
export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`missing element #${id}`);
  return node;
}

/** A small status badge: <span class="badge badge-{kind}">text</span>. */
export function badge(text, kind, title) {
  return el("span", { class: `badge badge-${kind}`, text, title });
}

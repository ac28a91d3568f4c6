// SPDX-License-Identifier: GPL-3.0-or-later
// Small DOM helpers: no framework, text is always set as text (never as HTML).

export const $ = (id) => document.getElementById(id);

/** An element: h("button", {type: "button", onclick: f, "aria-label": "x"}, "text", child). */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) {
      continue;
    }
    if (key.startsWith("on")) {
      el.addEventListener(key.slice(2), value);
    } else if (key in el && !key.includes("-")) {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  el.append(...children.flat().filter((child) => child !== null && child !== undefined));
  return el;
}

/** Ask in the page's own dialog (testable, and never blocked as window.confirm may be). */
export function confirmed(text) {
  const dialog = $("confirm");
  $("confirm-text").textContent = text;
  dialog.returnValue = "";
  dialog.showModal();
  $("confirm-cancel").focus();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

/**
 * Run an action from a control: disable it meanwhile and show the error (if any) in `out`.
 * Returns the action's result, or undefined after an error.
 */
export async function act(out, control, action) {
  out.textContent = "";
  if (control) {
    control.disabled = true;
  }
  try {
    return await action();
  } catch (err) {
    out.textContent = err.message;
    return undefined;
  } finally {
    if (control) {
      control.disabled = false;
    }
  }
}

export function setLed(el, on, label) {
  el.dataset.on = on ? "1" : "0";
  el.setAttribute("aria-label", `${label}: ${on ? "on" : "off"}`);
}

export function bytes(size) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = size;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

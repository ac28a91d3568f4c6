// SPDX-License-Identifier: GPL-3.0-or-later
// For admins: users, roles, API keys and sessions (SECURITY.md), through /api/auth/*.

import { get, post } from "./api.js";
import { $, act, confirmed, h } from "./dom.js";

const PERMISSIONS = ["video", "hid", "atx", "msd", "gpio", "streamer", "logs", "share", "admin"];

const when = (ts) => (ts ? new Date(ts * 1000).toLocaleString() : "–");
const form = (fields) => new URLSearchParams(fields);

function table(headers, rows) {
  return h(
    "table",
    { class: "admin-table" },
    h("thead", {}, h("tr", {}, ...headers.map((name) => h("th", { scope: "col" }, name)))),
    h("tbody", {}, ...rows.map((cells) => h("tr", {}, ...cells.map((cell) => h("td", {}, cell))))),
  );
}

function permissionBoxes(prefix) {
  return h(
    "div",
    { class: "perms", role: "group", "aria-label": "Permissions" },
    ...PERMISSIONS.map((name) =>
      h("label", {}, h("input", { type: "checkbox", value: name, id: `${prefix}-${name}` }), ` ${name}`),
    ),
  );
}

const checked = (prefix) => PERMISSIONS.filter((name) => $(`${prefix}-${name}`).checked).join(",");

export class AdminPanel {
  constructor() {
    this.me = null;
    $("admin-panel").addEventListener("toggle", () => $("admin-panel").open && this.refresh());
  }

  /** Run an action, then show everything as the daemon now has it. */
  async run(control, action) {
    await act($("admin-result"), control, action);
    await this.refresh();
  }

  async refresh() {
    try {
      const [users, roles, keys, sessions] = await Promise.all([
        get("/auth/users"),
        get("/auth/roles"),
        get("/auth/keys"),
        get("/auth/sessions"),
      ]);
      const section = (children) => h("div", { class: "admin-section" }, ...children);
      $("admin-body").replaceChildren(
        section(this.users(users.users, roles.roles)),
        section(this.roles(roles.roles)),
        section(this.keys(keys.keys)),
        section(this.sessions(sessions.sessions)),
      );
    } catch (err) {
      $("admin-result").textContent = err.message;
    }
  }

  users(users, roles) {
    const button = (text, label, action) =>
      h("button", { type: "button", "aria-label": label, onclick: (e) => this.run(e.target, action) }, text);
    const rows = users.map((u) => [
      u.user,
      u.default_role ? `${u.roles.join(", ")} (default)` : u.roles.join(", "),
      u.disabled ? "disabled" : `${u.sessions} session(s)`,
      h(
        "span",
        {},
        button(u.disabled ? "Enable" : "Disable", `${u.disabled ? "Enable" : "Disable"} ${u.user}`, () =>
          post("/auth/users/set_params", { user: u.user, disabled: !u.disabled }),
        ),
        button("Remove", `Remove ${u.user}`, async () => {
          if (await confirmed(`Remove the user ${u.user} and end their sessions?`)) {
            await post("/auth/users/remove", { user: u.user, force: true });
          }
        }),
      ),
    ]);
    const roleSelect = h(
      "select",
      { id: "admin-new-role" },
      ...roles.map((role) => h("option", { value: role.name, selected: role.name === "viewer" }, role.name)),
    );
    const create = h(
      "form",
      {
        onsubmit: (event) => {
          event.preventDefault();
          this.run(event.submitter, () =>
            post(
              "/auth/users/create",
              null,
              form({ user: $("admin-new-user").value, passwd: $("admin-new-passwd").value, roles: roleSelect.value }),
            ),
          );
        },
      },
      h("label", { for: "admin-new-user" }, "New user"),
      h("input", { id: "admin-new-user", required: true, autocomplete: "off", autocapitalize: "none" }),
      h("label", { for: "admin-new-passwd" }, "Password"),
      h("input", { id: "admin-new-passwd", type: "password", required: true, autocomplete: "new-password" }),
      h("label", { for: "admin-new-role" }, "Role"),
      roleSelect,
      h("div", { class: "row" }, h("button", { type: "submit" }, "Create user")),
    );
    return [h("h3", {}, "Users"), table(["User", "Roles", "State", ""], rows), create];
  }

  roles(roles) {
    const rows = roles.map((role) => [
      role.name,
      role.permissions.join(", "),
      role.builtin
        ? "built-in"
        : h(
            "button",
            {
              type: "button",
              "aria-label": `Remove role ${role.name}`,
              onclick: (e) => this.run(e.target, () => post("/auth/roles/remove", { name: role.name })),
            },
            "Remove",
          ),
    ]);
    const create = h(
      "form",
      {
        onsubmit: (event) => {
          event.preventDefault();
          const params = { name: $("admin-role-name").value, permissions: checked("admin-role") };
          this.run(event.submitter, () => post("/auth/roles/create", params));
        },
      },
      h("label", { for: "admin-role-name" }, "New role"),
      h("input", { id: "admin-role-name", required: true, autocomplete: "off" }),
      permissionBoxes("admin-role"),
      h("div", { class: "row" }, h("button", { type: "submit" }, "Create role")),
    );
    return [h("h3", {}, "Roles"), table(["Role", "Permissions", ""], rows), create];
  }

  keys(keys) {
    const rows = keys.map((key) => [
      h("span", { title: key.id }, key.name || key.id),
      key.owner,
      `${key.permissions.join(", ")}${key.read_only ? " (read only)" : ""}`,
      key.expired ? "expired" : when(key.expires),
      h(
        "button",
        {
          type: "button",
          "aria-label": `Remove key ${key.name || key.id}`,
          onclick: (e) => this.run(e.target, () => post("/auth/keys/remove", { id: key.id })),
        },
        "Remove",
      ),
    ]);
    const secret = h("p", { id: "admin-key-secret", class: "secret", role: "status", hidden: true });
    const create = h(
      "form",
      {
        onsubmit: (event) => {
          event.preventDefault();
          const days = Number($("admin-key-days").value);
          const params = {
            name: $("admin-key-name").value,
            permissions: checked("admin-key"),
            read_only: $("admin-key-ro").checked,
            expire: days > 0 ? days * 86400 : null,
          };
          this.run(event.submitter, async () => {
            const made = await post("/auth/keys/create", params);
            // Shown once: the daemon keeps only its hash.
            this.secret = `${made.key.id}:${made.secret}`;
          });
        },
      },
      h("label", { for: "admin-key-name" }, "New API key: name"),
      h("input", { id: "admin-key-name", required: true, autocomplete: "off" }),
      permissionBoxes("admin-key"),
      h("label", {}, h("input", { type: "checkbox", id: "admin-key-ro" }), " read only"),
      h("label", { for: "admin-key-days" }, "Expires after (days, 0 = never)"),
      h("input", { id: "admin-key-days", type: "number", min: 0, value: 90 }),
      h("div", { class: "row" }, h("button", { type: "submit" }, "Create key")),
    );
    if (this.secret) {
      secret.hidden = false;
      secret.textContent = `Copy it now, it is never shown again: ${this.secret}`;
      this.secret = null;
    }
    return [h("h3", {}, "API keys"), table(["Key", "Owner", "Permissions", "Expires", ""], rows), secret, create];
  }

  sessions(sessions) {
    const rows = sessions.map((s) => [
      s.user,
      `${s.via}${s.current ? " (this one)" : ""}`,
      s.remote || "–",
      when(s.last_seen),
      s.current
        ? ""
        : h(
            "button",
            {
              type: "button",
              "aria-label": `End session ${s.id} of ${s.user}`,
              onclick: (e) => this.run(e.target, () => post("/auth/sessions/remove", { id: s.id })),
            },
            "End",
          ),
    ]);
    return [h("h3", {}, "Sessions"), table(["User", "Via", "From", "Last seen", ""], rows)];
  }
}

// citywatch investigator console: the little JavaScript the pages need (no framework, no
// third-party code). Forms marked data-console are sent with fetch() carrying the session's
// CSRF header; the HTML the service answers replaces the form's target (or, with an
// X-Redirect header, the browser goes there). Written for this project; same licence.
"use strict";

(function () {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  document.cookie = "citywatch_tz=" + encodeURIComponent(zone) + "; path=/; SameSite=Strict";

  function offsetText() {
    const minutes = -new Date().getTimezoneOffset();
    const sign = minutes >= 0 ? "+" : "-";
    const abs = Math.abs(minutes);
    const pad = (n) => String(n).padStart(2, "0");
    return "UTC" + sign + pad(Math.floor(abs / 60)) + ":" + pad(abs % 60);
  }

  function prepare(root) {
    root.querySelectorAll("input[name=tz]").forEach((el) => { el.value = zone; });
    root.querySelectorAll("video[data-start]").forEach((v) => { if (v.readyState >= 1) { startAt(v); } });
    root.querySelectorAll("[data-tz-label]").forEach((el) => {
      el.textContent = zone + " (" + offsetText() + ")";
    });
  }

  function csrf() {
    const meta = document.querySelector("meta[name=csrf-token]");
    return meta ? meta.content : "";
  }

  function formData(form, submitter) {
    const data = new FormData(form);
    if (submitter && submitter.name) { data.set(submitter.name, submitter.value); }
    return data;
  }

  async function send(form, submitter) {
    const target = document.querySelector(form.dataset.target || "#result") || form;
    const button = form.querySelector("button[type=submit], button:not([type])");
    const busy = form.dataset.busy || "Working…";
    form.setAttribute("aria-busy", "true");
    if (button) { button.disabled = true; }
    const status = form.querySelector("[data-status]");
    if (status) { status.textContent = busy; }
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: formData(form, submitter),
        headers: { "X-CSRF-Token": csrf(), "X-Console": "1" },
        credentials: "same-origin",
      });
      const next = response.headers.get("X-Redirect");
      if (next) { window.location.assign(next); return; }
      const html = await response.text();
      target.innerHTML = html;
      prepare(target);
      if (status) { status.textContent = response.ok ? "" : "Not done: see the message."; }
      const focus = target.querySelector("[data-focus]");
      if (focus) { focus.focus(); }
    } catch (err) {
      target.textContent = "The service could not be reached (" + err + "). Try again.";
      if (status) { status.textContent = ""; }
    } finally {
      form.removeAttribute("aria-busy");
      if (button) { button.disabled = false; }
    }
  }

  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-console")) { return; }
    ev.preventDefault();
    send(form, ev.submitter || null);
  });

  // parts of a page that refresh themselves (the alert queue), unless the user is busy in them
  function poll(el) {
    const every = Math.max(2, Number(el.dataset.pollS || "5")) * 1000;
    setInterval(async () => {
      const busy = el.contains(document.activeElement) ||
        [...el.querySelectorAll("input")].some((i) => i.type !== "hidden" && i.value);
      if (busy || document.hidden) { return; }
      try {
        const response = await fetch(el.dataset.poll, { headers: { "X-Console": "1" }, credentials: "same-origin" });
        if (response.ok) { el.innerHTML = await response.text(); prepare(el); }
      } catch (err) { /* the next round tries again */ }
    }, every);
  }
  document.querySelectorAll("[data-poll]").forEach(poll);

  // a face picked from a photo with several faces: search again with it
  document.addEventListener("click", (ev) => {
    const pick = ev.target.closest("[data-face]");
    if (!pick) { return; }
    const form = document.querySelector("#face-form");
    form.querySelector("input[name=face]").value = pick.dataset.face;
    form.requestSubmit();
  });

  // a sighting clicked: its footage plays in the panel the link names (without script, or
  // opened in a new tab, the link is a page of its own)
  async function play(link) {
    const target = document.querySelector(link.dataset.target || "#player-panel");
    if (!target) { window.location.assign(link.href); return; }
    target.setAttribute("aria-busy", "true");
    target.textContent = "Preparing the footage…";
    try {
      const response = await fetch(link.href, { headers: { "X-Console": "1" }, credentials: "same-origin" });
      target.innerHTML = await response.text();
      prepare(target);
      const focus = target.querySelector("[data-focus]");
      if (focus) { focus.focus(); }
    } catch (err) {
      target.textContent = "The service could not be reached (" + err + "). Try again.";
    } finally {
      target.removeAttribute("aria-busy");
    }
  }

  document.addEventListener("click", (ev) => {
    const link = ev.target.closest("a[data-play]");
    if (!link || ev.button !== 0 || ev.ctrlKey || ev.metaKey || ev.shiftKey) { return; }
    ev.preventDefault();
    play(link);
  });

  // a player starts a few seconds before the sighting (its data-start, seconds), then plays
  function startAt(video) {
    if (video.dataset.started) { return; }
    video.dataset.started = "1";
    video.addEventListener("seeked", () => { video.play().catch(() => {}); }, { once: true });
    video.currentTime = Math.min(Number(video.dataset.start) || 0, video.duration || 0);
  }
  document.addEventListener("loadedmetadata", (ev) => {
    if (ev.target instanceof HTMLVideoElement && ev.target.dataset.start) { startAt(ev.target); }
  }, true);

  // drag and drop a photo onto the drop zone, or pick it; show what was chosen
  function showChosen(input) {
    const zoneEl = input.closest("[data-drop]");
    const label = zoneEl.querySelector("[data-chosen]");
    const face = document.querySelector("#face-form input[name=face]");
    if (face) { face.value = ""; }
    const file = input.files && input.files[0];
    label.textContent = file ? file.name + " (" + Math.round(file.size / 1024) + " kB)" : "";
    const img = zoneEl.querySelector("img");
    if (img && file) { img.src = URL.createObjectURL(file); img.hidden = false; }
  }

  document.addEventListener("change", (ev) => {
    if (ev.target.matches("[data-drop] input[type=file]")) { showChosen(ev.target); }
  });
  document.addEventListener("dragover", (ev) => {
    const dropZone = ev.target.closest("[data-drop]");
    if (dropZone) { ev.preventDefault(); dropZone.classList.add("over"); }
  });
  document.addEventListener("dragleave", (ev) => {
    const dropZone = ev.target.closest("[data-drop]");
    if (dropZone) { dropZone.classList.remove("over"); }
  });
  document.addEventListener("drop", (ev) => {
    const dropZone = ev.target.closest("[data-drop]");
    if (!dropZone) { return; }
    ev.preventDefault();
    dropZone.classList.remove("over");
    const input = dropZone.querySelector("input[type=file]");
    input.files = ev.dataTransfer.files;
    showChosen(input);
  });

  prepare(document);
})();

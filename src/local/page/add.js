// watchpost technician's page: "Add a camera". Probes the URL and credentials as `watchpost
// camera probe` does (the same diagnosis, the same words) and saves the camera as `watchpost
// camera add` does. Plain script; the request helpers are page.js's (window.watchpostPage).
"use strict";

(function () {
  if (document.body.dataset.page !== "add") return;
  const { postJson } = window.watchpostPage;
  const $ = (id) => document.getElementById(id);
  const buttons = [$("probe"), $("save")];

  function fields() {
    return {
      url: $("url").value.trim(),
      user: $("camera-user").value.trim(),
      password: $("password").value,
    };
  }

  function busy(what) {
    buttons.forEach((b) => (b.disabled = !!what));
    $("probe-state").hidden = !what;
    $("probe-state").textContent = what || "";
  }

  function verdict(kind, message, good) {
    $("probe-kind").textContent = kind;
    $("probe-kind").className = good ? "good" : "bad";
    $("probe-message").textContent = message;
  }

  function showProbe(result) {
    $("probe-result").hidden = false;
    const table = $("probe-facts");
    table.replaceChildren();
    const image = $("snapshot");
    image.hidden = true;
    image.removeAttribute("src");
    $("picture-note").hidden = true;
    if (!result.ok) {
      verdict(result.error.kind, result.error.message, false);
      return;
    }
    verdict("works", result.url, true);
    for (const [label, text] of result.facts) {
      const row = table.insertRow();
      row.insertCell().textContent = label;
      row.insertCell().textContent = text;
    }
    if (result.picture) {
      image.src = result.picture;
      image.hidden = false;
    }
    if (result.picture_note) {
      $("picture-note").textContent = result.picture_note;
      $("picture-note").hidden = false;
    }
  }

  async function probe() {
    busy("probing… (a camera that does not answer takes up to 30 s)");
    try {
      showProbe(await postJson("/api/cameras/probe", fields()));
    } catch (e) {
      $("probe-result").hidden = false;
      $("probe-facts").replaceChildren();
      $("snapshot").hidden = true;
      verdict("not probed", e.message, false);
    } finally {
      busy(null);
    }
  }

  async function save() {
    const result = $("save-result");
    result.className = "";
    result.textContent = "saving…";
    busy("saving…");
    try {
      const saved = await postJson("/api/cameras", Object.assign({ name: $("name").value.trim() }, fields()));
      result.className = "good";
      const live = saved.live.length ? "; applied live: " + saved.live.join(", ") : "";
      const later = saved.at_restart.length ? "; at the next restart: " + saved.at_restart.join(", ") : "";
      result.textContent = saved.done + live + later + ". ";
      const link = document.createElement("a");
      link.id = "camera-link";
      link.href = saved.view;
      link.textContent = "Open " + saved.camera + "'s view";
      result.append(link);
    } catch (e) {
      result.className = "bad";
      result.textContent = "not saved: " + e.message;
    } finally {
      busy(null);
    }
  }

  $("probe").addEventListener("click", probe);
  $("save").addEventListener("click", save);
  $("camera-form").addEventListener("submit", (event) => event.preventDefault());
})();
